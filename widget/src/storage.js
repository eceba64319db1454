/**
 * What the widget keeps in the browser, and only after the visitor used the chat:
 * load()/store() (localStorage or sessionStorage, falling back to memory), the state S
 * (session, log, pending answer) and the per-browser install id behind fingerprint().
 * Uses: opt, KEY (config.js).
 */

/* ------------------------------------------------------------ storage */
// localStorage can throw (sandboxed frames, blocked storage): fall back to memory.
// Nothing is written before the visitor uses the chat (docs/widget-behaviour.md, Privacy):
// page views only read; the first write follows opening the panel or sending.
var MEM = {};
var STORE = (function () {
  try { return W[opt('storage', 'local') === 'session' ? 'sessionStorage' : 'localStorage'] || null; } catch (e) { return null; }
})();
function load(name, dflt) {
  try {
    var raw = Object.prototype.hasOwnProperty.call(MEM, name) ? MEM[name] : STORE ? STORE.getItem(KEY + ':' + name) : null;
    return raw ? JSON.parse(raw) : dflt;
  } catch (e) { return dflt; }
}
function store(name, value) {
  var raw = value === null ? null : JSON.stringify(value);
  try {
    if (!STORE) { MEM[name] = raw; return; }
    if (raw === null) STORE.removeItem(KEY + ':' + name);
    else STORE.setItem(KEY + ':' + name, raw);
    delete MEM[name];
  } catch (e) { MEM[name] = raw; } // quota or blocked storage: keep this page working
}
var MAX_KEPT = 200;
// session: {token, sid, exp}; log: [{r: 'user'|'assistant', t, id?}]; pending: {mid, seq, exact, text}
var S = { session: load('session', null), log: load('log', []), pending: load('pending', null) };
if (!Array.isArray(S.log)) S.log = [];
// Kept for another user (or for an anonymous visitor, or the other way round): not shown.
if (S.session && (S.session.u || null) !== userOf(USER_TOKEN)) {
  S = { session: null, log: [], pending: null };
  store('session', null); store('log', null); store('pending', null);
}
function saveLog() {
  if (S.log.length > MAX_KEPT) S.log = S.log.slice(-MAX_KEPT);
  store('log', S.log);
}

/* -------------------------------------------------------- fingerprint */
// Stable and coarse: a random per-browser id kept in this site's storage plus a few
// low-entropy properties, hashed. No canvas, audio, font or WebGL probing.
function hash53(str, seed) {
  var h1 = 0xdeadbeef ^ seed, h2 = 0x41c6ce57 ^ seed;
  for (var i = 0; i < str.length; i++) {
    var c = str.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16);
}
function randomId() {
  var a = new Uint8Array(16);
  (W.crypto || W.msCrypto).getRandomValues(a);
  return Array.prototype.map.call(a, function (b) { return (b + 256).toString(16).slice(1); }).join('');
}
// Made on first use (a session is created only when the visitor sends or resumes), so a page
// view that never touches the chat writes no id.
var FP = null;
function fingerprint() {
  if (FP) return FP;
  var install = load('install', null);
  if (typeof install !== 'string' || install.length !== 32) {
    install = randomId();
    store('install', install);
  }
  var tz = '';
  try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { /* old engine */ }
  var n = navigator;
  var src = [install, n.userAgent, (n.languages || []).join(','), tz, n.platform || '',
    n.hardwareConcurrency || 0, n.maxTouchPoints || 0].join('|');
  FP = 'qpc1.' + hash53(src, 1) + hash53(src, 2) + hash53(src, 3);
  return FP;
}
