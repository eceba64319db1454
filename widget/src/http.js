/**
 * Requests to the proxy: QPCError and refusal() (the proxy's error codes), req() (no
 * cookies, no cache), httpError(), and the session token: ensureSession(), forgetSession().
 */

/* ---------------------------------------------------------------- HTTP */
function QPCError(code, extra) {
  this.code = code;
  for (var k in extra || {}) this[k] = extra[k];
}
// The server's own explanation travels with the code: `message` (its sentence) and, for
// refusals it can say more about (spam rules), `reason`; messageFor() picks the visitor's words.
function refusal(code, src, retry, extra) {
  var e = new QPCError(String(code || 'upstream_error'), extra);
  e.retry = typeof retry === 'number' && isFinite(retry) ? retry : null;
  if (src && typeof src.message === 'string') e.said = src.message.slice(0, 500);
  if (src && typeof src.reason === 'string') e.reason = src.reason;
  return e;
}
function authHeaders(json) {
  var h = { 'Authorization': 'Bearer ' + (S.session && S.session.token), 'X-Chat-Fingerprint': fingerprint() };
  if (json) h['Content-Type'] = 'application/json';
  return h;
}
function req(path, init) {
  init.credentials = 'omit';
  init.cache = 'no-store';
  if (SITE) init.headers = Object.assign({}, init.headers, { 'X-Chat-Site': SITE });
  init.mode = 'cors';
  return fetch(API + path, init).catch(function (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new QPCError(navigator.onLine === false ? 'offline' : 'network', { fallback: true });
  });
}
// Non-2xx: the proxy's JSON error if there is one; otherwise something in between answered.
function httpError(res) {
  return res.text().then(function (raw) {
    var body = null;
    try { body = JSON.parse(raw); } catch (e) { /* not ours */ }
    var err = (body && body.error) || {};
    var code = err.code;
    var retry = body && typeof body.retry_after === 'number' ? body.retry_after : parseInt(res.headers.get('Retry-After') || '', 10);
    retry = isFinite(retry) ? retry : null;
    if (!code) return new QPCError(res.status === 429 ? 'rate_limited' : 'network', { status: res.status, retry: retry, fallback: res.status !== 429 });
    return refusal(code, err, retry, { status: res.status });
  }, function () { return new QPCError('network', { status: res.status, fallback: true }); });
}
// Whose session this is: the user token's `sub`, read (not verified: the proxy verifies) only
// to tell when the signed-in user changed. null: anonymous, or a token that is not a JWT.
function userOf(token) {
  if (!token) return null;
  try {
    var part = String(token).split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    var sub = JSON.parse(decodeURIComponent(escape(W.atob(part)))).sub;
    return typeof sub === 'string' && sub ? sub : null;
  } catch (e) { return null; }
}
var sessionPromise = null;
function ensureSession() {
  var s = S.session;
  if (s && s.token && !(s.exp && Date.parse(s.exp) - Date.now() < 30000)) return Promise.resolve(s);
  if (sessionPromise) return sessionPromise;
  var g = gen;
  sessionPromise = req('/session/create', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(USER_TOKEN ? { fingerprint: fingerprint(), metadata: METADATA, user_token: USER_TOKEN } : { fingerprint: fingerprint(), metadata: METADATA })
  }).then(function (res) {
    if (!res.ok) return httpError(res).then(function (e) { throw e; });
    return res.json().then(function (b) {
      if (!b || typeof b.token !== 'string') throw new QPCError('internal');
      var fresh = { token: b.token, sid: b.session_id, exp: b.expires_at, u: userOf(USER_TOKEN) };
      if (g === gen) {
        S.session = fresh;
        store('session', fresh);
        emit('session', { sessionId: fresh.sid });
      }
      return fresh;
    });
  });
  sessionPromise.then(clearSP, clearSP);
  return sessionPromise;
}
function clearSP() { sessionPromise = null; }
function forgetSession() {
  S.session = null;
  store('session', null);
}
