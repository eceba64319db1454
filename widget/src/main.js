/**
 * Boot: the public window.QuartProxyChat API, the first render and mount() (inline target,
 * fullscreen, or a bubble on <html>), reopening a panel that was open in this tab.
 */

/* ---------------------------------------------------------------- boot */
W.QuartProxyChat = {
  version: VERSION,
  open: function () { openPanel(true); },
  close: function () { closePanel(false); },
  toggle: function () { if (isOpen) closePanel(false); else openPanel(true); },
  isOpen: function () { return isOpen; },
  reset: reset,
  setUserToken: switchUser,
  send: function (text) { openPanel(false); return send(text); },
  on: function (name, fn) { (HOOKS[name] = HOOKS[name] || []).push(fn); return this; },
  off: function (name, fn) { HOOKS[name] = (HOOKS[name] || []).filter(function (f) { return f !== fn; }); return this; }
};
renderAll();
function mount() {
  // A child of <html>, not of <body>: a transform (or filter) on the site's <body> would make
  // it the containing block of the widget's position:fixed parts and carry them off screen.
  var target = MODE === 'inline' ? D.querySelector(String(opt('target', '') || '#quartproxy-chat-inline')) : null;
  if (MODE === 'inline' && !target) {
    if (W.console) W.console.error('[quartproxy] data-mode="inline" needs data-target: an element of the page');
    MODE = 'bubble';
    root.setAttribute('data-mode', MODE);
  }
  if (MODE !== 'bubble') {
    host.setAttribute('data-mode', MODE);
    panel.setAttribute('role', 'region');
  }
  (target || D.documentElement).appendChild(host);
  applyScheme();
  if (MODE !== 'bubble') openPanel(false);
  var wasOpen = false;
  try { wasOpen = W.sessionStorage.getItem(KEY + ':open') === '1'; } catch (e) { /* no storage */ }
  if (optBool('open') || wasOpen) openPanel(false);
  emit('ready', { version: VERSION });
}
if (D.body) mount(); else D.addEventListener('DOMContentLoaded', mount);
