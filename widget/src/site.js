/**
 * A site's widget defaults (GET /api/v1/sites/{id}/widget, docs/sites.md): with data-site,
 * the title, greeting, theme and accent the sites file gives, for what the page leaves unset.
 * Asked once at boot; a failure changes nothing (the built-in texts stay).
 */

/* ---------------------------------------------------------------- site defaults */
function applySiteDefaults(d) {
  if (!d || typeof d !== 'object') return;
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
