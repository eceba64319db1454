/**
 * The DOM: icons and buttons, the shadow host (styles adopted or, where unsupported, a
 * <style>), the site-following colour scheme, and every element of the launcher and panel.
 * Uses: opt, MODE, LANG, t, TITLE, SUBTITLE, FOOTER, PLACEHOLDER, CSS, el, safeHref, markdown;
 * isOpen (panel.js) and stopTurn (render.js) are read only when the visitor acts.
 */

/* ---------------------------------------------------------------- DOM */
var ICONS = {
  chat: 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z',
  close: 'M6 6l12 12M18 6L6 18',
  clip: 'M21 11l-8.5 8.5a5 5 0 0 1-7-7L14 4a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L15 7',
  reset: 'M4 12a8 8 0 1 0 2.3-5.7M4 4v5h5',
  send: 'M4 12l16-8-6 16-2.5-6.5z',
  stop: 'M7 7h10v10H7z',
  copy: 'M9 9h11v11H9zM5 15H4V4h11v1'
};
function icon(name) {
  var ns = 'http://www.w3.org/2000/svg';
  var svg = D.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '2');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  var p = D.createElementNS(ns, 'path');
  p.setAttribute('d', ICONS[name]);
  svg.appendChild(p);
  return svg;
}
function button(cls, label, iconName) {
  var b = el('button', cls);
  b.type = 'button';
  b.setAttribute('aria-label', label);
  b.title = label;
  b.appendChild(icon(iconName));
  return b;
}

var host = el('div');
host.id = 'quartproxy-chat';
host.setAttribute('data-quartproxy', VERSION);
var shadow = host.attachShadow({ mode: 'open' });
// Constructed sheets are not inline <style> for CSP purposes; fall back where unsupported.
try {
  var sheet = new CSSStyleSheet();
  sheet.replaceSync(CSS);
  shadow.adoptedStyleSheets = [sheet];
} catch (e) {
  shadow.appendChild(el('style', null, CSS));
}
var theme = String(opt('theme', 'auto'));
var root = el('div', 'root');
root.setAttribute('data-theme', theme === 'light' || theme === 'dark' ? theme : 'auto');
// Theme `auto` follows the site, not the OS: the page's own background decides; a page without
// one follows its `color-scheme` (and the OS only where the page allows both schemes).
function luminance(rgb) {
  var c = rgb.map(function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}
function background(node) {
  if (!node) return null;
  var m = /rgba?\(([^)]*)\)/.exec(getComputedStyle(node).backgroundColor || '');
  if (!m) return null;
  var p = m[1].split(/[\s,\/]+/).filter(Boolean).map(parseFloat);
  return p.length < 3 || (p.length > 3 && p[3] < 0.5) ? null : p.slice(0, 3);
}
function siteScheme() {
  var bg = background(D.body) || background(D.documentElement);
  if (bg) return luminance(bg) < 0.179 ? 'dark' : 'light'; // darker than mid grey
  var cs = String(getComputedStyle(D.documentElement).colorScheme || '');
  var meta = D.querySelector('meta[name=color-scheme]');
  if (!/dark|light/.test(cs) && meta) cs = meta.content || '';
  if (/dark/.test(cs) && (!/light/.test(cs) || (W.matchMedia && W.matchMedia('(prefers-color-scheme: dark)').matches))) return 'dark';
  return 'light';
}
function applyScheme() {
  var scheme = theme === 'light' || theme === 'dark' ? theme : siteScheme();
  if (root.getAttribute('data-scheme') !== scheme) root.setAttribute('data-scheme', scheme);
  var hs = getComputedStyle(host);
  var own = hs.getPropertyValue('--qpc-accent').trim() && !hs.getPropertyValue('--qpc-dark-accent').trim();
  if (own) root.setAttribute('data-site-accent', ''); else root.removeAttribute('data-site-accent');
}
if (theme !== 'light' && theme !== 'dark') {
  try { W.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyScheme); } catch (e) { /* old engine */ }
  try {
    var queued = false; // at most once a frame, however often the site toggles classes
    var watch = new MutationObserver(function () {
      if (queued) return;
      queued = true;
      (W.requestAnimationFrame || setTimeout)(function () { queued = false; applyScheme(); });
    }); // a site's own dark-mode switch
    watch.observe(D.documentElement, { attributes: true, attributeFilter: ['class', 'style', 'data-theme', 'data-bs-theme', 'data-color-scheme'] });
    D.addEventListener('DOMContentLoaded', function () {
      if (D.body) watch.observe(D.body, { attributes: true, attributeFilter: ['class', 'style', 'data-theme'] });
    });
    if (D.body) watch.observe(D.body, { attributes: true, attributeFilter: ['class', 'style', 'data-theme'] });
  } catch (e) { /* old engine */ }
}
root.setAttribute('data-mode', MODE);
root.setAttribute('data-position', opt('position', 'right') === 'left' ? 'left' : 'right');
root.lang = LANG;

var launcher = button('launcher', t('open'), 'chat');
launcher.appendChild(icon('close'));
launcher.setAttribute('aria-expanded', 'false');
launcher.setAttribute('aria-controls', 'qpc-panel');
var badge = el('span', 'badge');
badge.setAttribute('aria-hidden', 'true'); // the launcher's label says it
badge.hidden = true;
launcher.appendChild(badge);
var unread = 0;
// An answer that ends while the panel is closed: a count on the launcher, its label and one
// announcement (the live region lives outside the panel so it is heard while closed).
function setUnread(n) {
  unread = n;
  badge.hidden = !n;
  badge.textContent = n > 9 ? '9+' : String(n);
  var label = isOpen ? t('close') : n ? t('open') + ' – ' + t('unread') : t('open');
  launcher.setAttribute('aria-label', label);
  launcher.title = label;
}

var panel = el('section', 'panel');
panel.id = 'qpc-panel';
panel.setAttribute('role', 'dialog');
panel.setAttribute('aria-labelledby', 'qpc-title');
panel.hidden = true;
var header = el('header');
var h2 = el('h2', null, TITLE);
h2.id = 'qpc-title';
var resetBtn = button('icon reset', t('reset'), 'reset');
var closeBtn = button('icon close', t('close'), 'close');
// "New conversation" sits at the other end of the header from "Close", and asks first.
var titles = el('div', 'titles');
titles.appendChild(h2);
if (SUBTITLE) titles.appendChild(el('p', 'sub', SUBTITLE));
header.appendChild(resetBtn);
var AVATAR = opt('avatar', '') ? safeHref(String(opt('avatar', ''))) : null; // http(s) only
if (AVATAR && /^https?:/.test(AVATAR)) {
  var img = el('img', 'avatar');
  img.src = AVATAR;
  img.alt = ''; // decorative: the title names the chat
  img.referrerPolicy = 'no-referrer';
  img.loading = 'lazy'; // fetched when the panel first shows, not on every page view
  img.addEventListener('error', function () { img.hidden = true; });
  header.appendChild(img);
}
header.appendChild(titles);
header.appendChild(closeBtn);
var confirmBar = el('div', 'confirm');
confirmBar.setAttribute('role', 'group');
confirmBar.setAttribute('aria-labelledby', 'qpc-confirm');
confirmBar.hidden = true;
var confirmText = el('p', null, t('confirmReset'));
confirmText.id = 'qpc-confirm';
var keepBtn = el('button', 'act', t('confirmNo'));
var wipeBtn = el('button', 'act yes', t('confirmYes'));
keepBtn.type = wipeBtn.type = 'button';
keepBtn.id = 'qpc-keep';
wipeBtn.id = 'qpc-wipe';
confirmBar.appendChild(confirmText);
confirmBar.appendChild(keepBtn);
confirmBar.appendChild(wipeBtn);

var log = el('div', 'log');
log.setAttribute('role', 'log');
log.setAttribute('aria-live', 'off'); // answers are announced once, in sentences, by `live`
log.setAttribute('aria-label', t('log'));
log.tabIndex = 0; // scrollable region reachable by keyboard
var live = el('div', 'sr');
live.setAttribute('aria-live', 'polite');
live.setAttribute('role', 'status');

var form = el('form');
form.noValidate = true;
var label = el('label', 'sr', t('input'));
label.htmlFor = 'qpc-input';
var input = el('textarea');
input.id = 'qpc-input';
input.rows = 1;
// No maxLength: it would cut pasted text silently. The counter below warns instead.
input.setAttribute('aria-describedby', 'qpc-counter');
var counter = el('div', 'counter');
counter.id = 'qpc-counter';
counter.hidden = true;
input.placeholder = PLACEHOLDER;
input.setAttribute('enterkeyhint', 'send');
input.autocomplete = 'off';
// Honeypot for the proxy's bot check: invisible, unreachable by keyboard, hidden from AT.
var honeypot = el('input', 'hp');
honeypot.type = 'text';
honeypot.name = 'homepage';
honeypot.tabIndex = -1;
honeypot.autocomplete = 'off';
honeypot.setAttribute('aria-hidden', 'true');
var sendBtn = button('send', t('send'), 'send');
sendBtn.type = 'submit';
form.appendChild(label);
form.appendChild(input);
form.appendChild(honeypot);
form.appendChild(sendBtn);
// While an answer streams: Stop ends it here (the gateway still finishes n8n's run and keeps
// the whole answer in the history: a webhook run cannot be cancelled from outside).
var stopBtn = button('halt', t('stop'), 'stop');
stopBtn.hidden = true;
form.insertBefore(stopBtn, sendBtn);
stopBtn.addEventListener('click', function () { stopTurn(); });

panel.appendChild(header);
panel.appendChild(confirmBar);
panel.appendChild(log);
panel.appendChild(counter);
panel.appendChild(form);
if (FOOTER) { var foot = el('div', 'foot'); markdown(FOOTER, foot); panel.appendChild(foot); }
root.appendChild(panel);
root.appendChild(launcher);
root.appendChild(live);
shadow.appendChild(root);
