/**
 * Opening and closing the panel (remembered per tab in sessionStorage), the reset
 * confirmation, Escape, Enter to send, the character counter and submit().
 */

/* ---------------------------------------------------------- open/close */
// Open/closed survives reloads and navigation within this tab, not across visits.
function rememberOpen(on) {
  if (MODE !== 'bubble') return; // always open: nothing to remember (and nothing is written)
  try { W.sessionStorage.setItem(KEY + ':open', on ? '1' : '0'); } catch (e) { /* no storage */ }
}
var isOpen = false;
var synced = false;
function openPanel(focus) {
  if (!isOpen) {
    isOpen = true;
    panel.hidden = false;
    root.classList.add('is-open');
    launcher.setAttribute('aria-expanded', 'true');
    setUnread(0);
    rememberOpen(true);
    applyScheme();
    scroll(true);
    emit('open', {});
    if (!synced) { synced = true; afterFirstOpen(); }
  }
  if (focus !== false) input.focus();
}
function closePanel(focus) {
  if (!isOpen || MODE !== 'bubble') return;
  var hadFocus = shadow.activeElement && panel.contains(shadow.activeElement);
  isOpen = false;
  panel.hidden = true;
  root.classList.remove('is-open');
  launcher.setAttribute('aria-expanded', 'false');
  setUnread(unread);
  rememberOpen(false);
  if (focus !== false || hadFocus) launcher.focus();
  emit('close', {});
}
launcher.addEventListener('click', function () { if (isOpen) closePanel(); else openPanel(); });
closeBtn.addEventListener('click', function () { closePanel(); });
function askReset(on) {
  confirmBar.hidden = !on;
  resetBtn.setAttribute('aria-expanded', on ? 'true' : 'false');
  if (on) keepBtn.focus(); // the safe choice has focus: Enter alone deletes nothing
}
resetBtn.setAttribute('aria-expanded', 'false');
resetBtn.addEventListener('click', function () { askReset(confirmBar.hidden); });
keepBtn.addEventListener('click', function () { askReset(false); resetBtn.focus(); });
wipeBtn.addEventListener('click', function () { askReset(false); reset(); input.focus(); });
panel.addEventListener('keydown', function (e) {
  if (e.key !== 'Escape' || e.isComposing) return;
  e.preventDefault();
  if (!confirmBar.hidden) { askReset(false); resetBtn.focus(); } else closePanel();
});
input.addEventListener('keydown', function (e) {
  if (e.key === 'Enter' && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey && !e.isComposing && e.keyCode !== 229) {
    e.preventDefault();
    submit();
  }
});
input.addEventListener('input', function () { autosize(); count(); });
// Shown from 90 % of the limit; over it, the box is marked invalid and the visitor told once.
var wasOver = false;
function count() {
  var n = input.value.trim().length, over = n > MAX_CHARS;
  counter.hidden = n < MAX_CHARS * 0.9;
  counter.className = over ? 'counter over' : 'counter';
  counter.textContent = over ? t('tooLongBy', { n: fmt(n), max: fmt(MAX_CHARS) }) : t('counter', { n: fmt(n), max: fmt(MAX_CHARS) });
  input.setAttribute('aria-invalid', over ? 'true' : 'false');
  if (over && !wasOver) announce(counter.textContent);
  wasOver = over;
}
function fmt(n) {
  try { return n.toLocaleString(LANG); } catch (e) { return String(n); }
}
form.addEventListener('submit', function (e) { e.preventDefault(); submit(); });
function submit() {
  var text = input.value.trim();
  if (!text) return;
  if (busy) { notice(t('busy')); return; }
  if (send(text)) { input.value = ''; autosize(); count(); }
}
