/**
 * The page-facing hooks: emit() calls QuartProxyChat.on() listeners and dispatches a
 * `quartproxychat:<name>` DOM event. HOOKS is filled by main.js.
 */

/* ------------------------------------------------------------ events */
var HOOKS = {};
function emit(name, detail) {
  (HOOKS[name] || []).slice().forEach(function (fn) {
    try { fn(detail); } catch (e) { if (W.console) W.console.error(e); }
  });
  try { W.dispatchEvent(new CustomEvent('quartproxychat:' + name, { detail: detail })); } catch (e) { /* old engine */ }
}
