/**
 * A site's widget defaults (GET /api/v1/sites/{id}/widget, docs/sites.md): with data-site,
 * the language, title, greeting, theme and accent the sites file gives, for what the page
 * leaves unset.
 * Asked once at boot; a failure changes nothing (the built-in texts stay).
 */

/* ---------------------------------------------------------------- site defaults */
// The site's language, when the page names none (data-lang): it replaces the one taken from
// the browser, and every text already on screen is set again in it.
function applySiteLanguage(tag) {
  var l = String(tag || '').toLowerCase().split('-')[0];
  if (opt('lang', '') || !I18N[l] || l === LANG) return;
  useLanguage(l);
  root.lang = l;
  if (!opt('title', '')) h2.textContent = TITLE = t('title');
  if (opt('welcome', undefined) === undefined) WELCOME = t('welcome');
  if (!opt('placeholder', '')) input.placeholder = PLACEHOLDER = t('placeholder');
  [[resetBtn, 'reset'], [closeBtn, 'close'], [sendBtn, 'send'], [stopBtn, 'stop'],
    [ATTACH.length ? attachBtn : null, 'attach']].forEach(function (b) {
    if (b[0]) { b[0].setAttribute('aria-label', t(b[1])); b[0].title = t(b[1]); }
  });
  confirmText.textContent = t('confirmReset');
  keepBtn.textContent = t('confirmNo');
  wipeBtn.textContent = t('confirmYes');
  log.setAttribute('aria-label', t('log'));
  label.textContent = t('input');
  setUnread(unread);
  if (!busy) renderAll();
}
function applySiteDefaults(d) {
  if (!d || typeof d !== 'object') return;
  applySiteLanguage(d.language);
  if (typeof d.title === 'string' && d.title && !opt('title', '')) {
    TITLE = d.title;
    h2.textContent = TITLE;
  }
  if (typeof d.greeting === 'string' && d.greeting && opt('welcome', undefined) === undefined) {
    WELCOME = d.greeting;
    if (!busy) renderAll();
  }
  if ((d.theme === 'light' || d.theme === 'dark') && opt('theme', undefined) === undefined) {
    theme = d.theme;
    root.setAttribute('data-theme', theme);
  }
  if (typeof d.accent === 'string' && /^#[0-9a-fA-F]{6}$/.test(d.accent) &&
      !getComputedStyle(host).getPropertyValue('--qpc-accent').trim()) {
    host.style.setProperty('--qpc-accent', d.accent);
  }
  applyScheme();
  emit('site', { site: SITE });
}
if (SITE) {
  req('/sites/' + encodeURIComponent(SITE) + '/widget', { method: 'GET' })
    .then(function (res) { return res.ok ? res.json() : null; })
    .then(applySiteDefaults)
    .catch(function () { /* the built-in defaults stay */ });
}
