/**
 * The options: window.QuartProxyChatConfig, then data-* attributes, then defaults; the
 * proxy's address (PROXY, API), the limits (FIRST_BYTE_MS, MAX_CHARS), the transport order
 * (TRANSPORTS), METADATA and the storage key prefix (KEY). W and D are window and document.
 * Ends the script early when the widget is already on the page or the proxy is unknown.
 */

var W = window, D = document;
if (W.QuartProxyChat && W.QuartProxyChat.version) return; // embedded twice: keep the first

var VERSION = '1.0.0';
var SCRIPT = D.currentScript || (function () {
  var all = D.querySelectorAll('script[src*="/widget."]'); // widget.js or widget.<digest>.js
  return all[all.length - 1];
})();
var DS = (SCRIPT && SCRIPT.dataset) || {};
var PRE = W.QuartProxyChatConfig || {};

// Options: window.QuartProxyChatConfig wins over data-* attributes, which win over defaults.
function opt(name, dflt) {
  if (PRE[name] !== undefined && PRE[name] !== null) return PRE[name];
  if (DS[name] !== undefined) return DS[name];
  return dflt;
}
function optBool(name) {
  var v = opt(name, false);
  return v === true || v === '' || v === 'true' || v === '1';
}
function optJSON(name) {
  var v = opt(name, null);
  if (typeof v === 'string') {
    try { v = JSON.parse(v); } catch (e) { v = null; }
  }
  return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
}

var PROXY = (function () {
  var raw = opt('proxy', '') || (SCRIPT && SCRIPT.src) || '';
  try {
    var u = new URL(raw, D.baseURI);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return '';
    // data-proxy may carry a path prefix (a proxy mounted under /chat); a script src may not.
    return opt('proxy', '') ? (u.origin + u.pathname).replace(/\/+$/, '') : u.origin;
  } catch (e) { return ''; }
})();
if (!PROXY) {
  if (W.console) W.console.error('[quartproxy] cannot tell the proxy address: set data-proxy');
  return;
}
var API = PROXY + '/api/v1';
var FIRST_BYTE_MS = Math.max(500, parseInt(opt('firstByteTimeout', 8000), 10) || 8000);
var MAX_CHARS = parseInt(opt('maxChars', 4000), 10) || 4000;
var TRANSPORTS = String(opt('transports', 'sse,ws,ndjson')).split(/[\s,]+/).filter(function (t) {
  return t === 'sse' || t === 'ws' || t === 'ndjson';
});
if (!TRANSPORTS.length) TRANSPORTS = ['sse', 'ws', 'ndjson'];
var METADATA = optJSON('metadata');
// A signed visitor (docs/identity.md): the site's backend signs it; setUserToken() replaces it.
var USER_TOKEN = typeof opt('userToken', '') === 'string' && opt('userToken', '') ? opt('userToken', '') : null;
// data-site: the site id of a gateway serving several (docs/sites.md); sent as X-Chat-Site
var SITE = /^[a-z0-9][a-z0-9_-]{0,31}$/.test(String(opt('site', ''))) ? String(opt('site', '')) : '';
var KEY = 'quartproxy-chat:' + PROXY;
