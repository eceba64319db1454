/**
 * What the log shows: message bubbles with timestamps, the welcome and starters, notices,
 * the one connection-status line, the cut-answer mark with its retry, the typing dots, the
 * Send/Stop button state, the copy button and the live-region announcements.
 */

/* ---------------------------------------------------------- rendering */
var nearBottom = true;
log.addEventListener('scroll', function () {
  nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
});
function scroll(force) {
  if (force || nearBottom) log.scrollTop = log.scrollHeight;
}
function bubble(role, text, at) {
  var b = el('div', 'msg ' + (role === 'user' ? 'user' : 'bot'));
  b.appendChild(el('span', 'sr', role === 'user' ? t('you') + ' ' : t('bot') + ' '));
  var body = el('div', 'body');
  if (role === 'user') body.textContent = text; else markdown(text, body);
  b.appendChild(body);
  if (at) stamp(b, at);
  return b;
}
function stamp(b, at) {
  var d = new Date(at);
  if (!STAMPS || isNaN(d.getTime())) return;
  var tm = el('time', 'at');
  tm.dateTime = d.toISOString();
  try { tm.textContent = d.toLocaleTimeString(LANG, { hour: '2-digit', minute: '2-digit' }); } catch (e) { tm.textContent = d.toISOString().slice(11, 16); }
  tm.title = d.toLocaleString(LANG);
  b.appendChild(tm);
}
function setBubbleText(b, text) {
  var body = b.querySelector('.body');
  var fresh = el('div', 'body');
  markdown(text, fresh);
  b.replaceChild(fresh, body);
}
function renderAll() {
  while (log.firstChild) log.removeChild(log.firstChild);
  if (WELCOME) log.appendChild(bubble('assistant', WELCOME)).classList.add('welcome');
  if (!S.log.length && STARTERS.length) {
    var st = log.appendChild(el('div', 'starters'));
    STARTERS.forEach(function (q) {
      var b = st.appendChild(el('button', 'act', q));
      b.type = 'button';
      b.addEventListener('click', function () { if (!busy) send(q); });
    });
  }
  S.log.forEach(function (m, i) {
    var b = log.appendChild(bubble(m.r, m.t, m.at));
    fileLine(b, m.f);
    if (m.x) markIncomplete(b, S.log[i - 1] && S.log[i - 1].r === 'user' ? S.log[i - 1].t : null, m.x === 2);
    if (m.r === 'assistant') tools(b, m.t);
  });
  if (S.pending && S.pending.text) {
    pendingBubble = log.appendChild(bubble('assistant', S.pending.text));
  }
  scroll(true);
}
var pendingBubble = null;
var announceSeq = 0;
function announce(text, always) {
  if (!isOpen && !always) return; // a closed chat is not read out; `unread` says it once
  var n = el('div', null, text);
  n.setAttribute('data-n', String(++announceSeq));
  live.appendChild(n);
  while (live.childNodes.length > 3) live.removeChild(live.firstChild);
}
function notice(text) {
  var n = el('div', 'msg notice', text);
  n.setAttribute('data-notice', '');
  log.appendChild(n);
  scroll(true);
  announce(text);
  return n;
}
// Connection states (offline, reconnecting) share one line that is replaced, never stacked,
// and goes when the connection is back or the answer has ended.
var statusEl = null, statusKind = '';
function status(kind, text) {
  if (!kind) {
    if (statusEl && statusEl.parentNode) statusEl.parentNode.removeChild(statusEl);
    statusEl = null;
    statusKind = '';
    return;
  }
  if (!statusEl) {
    statusEl = el('div', 'msg notice status');
    statusEl.setAttribute('data-notice', '');
  }
  if (statusKind !== kind) { statusEl.textContent = text; announce(text); }
  statusKind = kind;
  if (statusEl.parentNode !== log || log.lastChild !== statusEl) log.appendChild(statusEl);
  scroll(true);
}
// An answer cut by the server (restart, upstream error) or by a link that never came back:
// kept, marked as cut, with a way to ask again.
function markIncomplete(b, question, stopped) {
  b.classList.add('incomplete');
  var cut = el('div', 'cut');
  cut.appendChild(el('i', null, stopped ? '\u25A0' : '\u26A0\uFE0E')).setAttribute('aria-hidden', 'true');
  cut.appendChild(el('span', null, t(stopped ? 'stopped' : 'incomplete')));
  if (question) {
    var again = el('button', 'act', t('retry'));
    again.type = 'button';
    again.addEventListener('click', function () {
      if (busy) { notice(t('busy')); return; }
      if (send(question)) cut.removeChild(again);
    });
    cut.appendChild(again);
  }
  b.appendChild(cut);
}
var typingEl = null;
function typing(on) {
  if (on && !typingEl) {
    typingEl = el('div', 'msg bot typing');
    typingEl.setAttribute('role', 'img');
    typingEl.setAttribute('aria-label', t('typing'));
    for (var i = 0; i < 3; i++) typingEl.appendChild(el('i'));
    log.appendChild(typingEl);
    log.setAttribute('aria-busy', 'true');
    scroll(true);
  } else if (!on && typingEl) {
    typingEl.parentNode.removeChild(typingEl);
    typingEl = null;
    log.removeAttribute('aria-busy');
  }
}
// aria-disabled, not disabled: a disabled button would drop keyboard focus mid-conversation.
function sendDisabled(on) {
  sendBtn.setAttribute('aria-disabled', on ? 'true' : 'false');
  var streaming = busy && !!current;
  if (stopBtn.hidden === streaming) {
    var refocus = shadow.activeElement === (streaming ? sendBtn : stopBtn);
    stopBtn.hidden = !streaming;
    if (refocus) (streaming ? stopBtn : input).focus();
  }
}
function stopTurn() {
  var turn = current;
  if (!turn || turn.stopped) return;
  turn.stopped = true;
  try { if (turn.ctrl) turn.ctrl.abort(); } catch (e) { /* gone */ }
  try { if (turn.ws) turn.ws.close(1000); } catch (e) { /* gone */ }
}
// Copy an answer (plain Markdown source, as the assistant wrote it).
function tools(b, text) {
  var row = el('div', 'tools');
  var copy = button('icon copy', t('copy'), 'copy');
  if (b.lastChild && b.lastChild.nodeName === 'TIME') row.appendChild(b.lastChild); // one line
  copy.addEventListener('click', function () {
    var done = function () { announce(t('copied')); copy.setAttribute('data-copied', ''); };
    var fallback = function () {
      var area = el('textarea');
      area.value = text;
      shadow.appendChild(area);
      area.select();
      try { D.execCommand('copy'); done(); } catch (e) { /* nothing to do */ }
      shadow.removeChild(area);
      copy.focus();
    };
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(done, fallback);
    else fallback();
  });
  row.appendChild(copy);
  b.appendChild(row);
}
function autosize() {
  input.style.height = 'auto';
  input.style.height = Math.min(input.scrollHeight + 2, 140) + 'px';
}
