/**
 * The conversation across reloads and tabs: resumePending() (an answer cut by a reload),
 * syncHistory() (the proxy's history wins when it knows more), reset() (and the proxy's copy
 * erased), other tabs' changes, online/offline.
 */

// A reload in the middle of an answer: show what we had and continue from there.
function resumePending() {
  var p = S.pending;
  if (!p || !p.mid || busy || !S.session) return Promise.resolve();
  busy = true;
  sendDisabled(true);
  var turn = newTurn(p.q || '');
  turn.mid = p.mid;
  turn.exact = !!p.exact;
  turn.seq = p.exact ? p.seq : 0;
  turn.text = p.exact ? (p.text || '') : '';
  turn.bubble = pendingBubble;
  pendingBubble = null;
  current = turn;
  sendDisabled(true);
  if (!turn.bubble) typing(true);
  return resume(turn, true).then(function () {
    if (turn.error) throw turn.error;
    finishAnswer(turn);
  }).catch(function (e) {
    if (turn.gen !== gen) return;
    if (turn.text) finishAnswer(turn, e);
    if (e.code !== 'lost') notice(messageFor(e));
  }).then(function () {
    if (turn.gen !== gen) return;
    typing(false);
    status(null);
    busy = false;
    current = null;
    sendDisabled(cooldownUntil > Date.now());
    S.pending = null;
    store('pending', null);
  });
}
// The proxy's history wins when it knows at least as much as this browser does.
function syncHistory() {
  var s = S.session;
  // A signed visitor's conversation may exist on another device: ask for it on open.
  if (!s && USER_TOKEN && !busy) return ensureSession().then(function () { return S.session ? syncHistory() : null; }, noop);
  if (!s || !s.sid || busy) return Promise.resolve();
  var g = gen;
  return req('/chat/history/' + encodeURIComponent(s.sid), { method: 'GET', headers: authHeaders(false) })
    .then(function (res) {
      if (res.status === 401) { forgetSession(); return null; }
      return res.ok ? res.json() : null;
    })
    .then(function (b) {
      if (!b || !Array.isArray(b.messages) || g !== gen || busy) return;
      var msgs = b.messages.filter(function (m) {
        return m && (m.role === 'user' || m.role === 'assistant') && typeof m.text === 'string';
      }).map(function (m, i) {
        var mine = S.log[i]; // a cut answer stays marked as cut
        var at = Date.parse(m.created_at || '') || (mine && mine.t === m.text ? mine.at : undefined);
        return { r: m.role, t: m.text, id: m.message_id || undefined, x: mine && mine.x && mine.t === m.text ? mine.x : undefined, at: at };
      });
      if (msgs.length && msgs.length >= S.log.length) {
        var same = msgs.length === S.log.length && msgs.every(function (m, i) { return m.t === S.log[i].t && m.r === S.log[i].r; });
        S.log = msgs;
        saveLog();
        if (!same) renderAll();
      }
    })
    .catch(noop);
}
function afterFirstOpen() {
  resumePending().then(syncHistory);
}

// The signed-in user changed (setUserToken): drop what this browser shows and keeps of the
// previous one, without erasing their conversation on the proxy (they may come back).
function switchUser(token) {
  var before = userOf(USER_TOKEN);
  USER_TOKEN = typeof token === 'string' && token ? token : null;
  if (userOf(USER_TOKEN) === before && (S.session || !USER_TOKEN)) return;
  gen++;
  if (current) {
    try { if (current.ctrl) current.ctrl.abort(); } catch (e) { /* gone */ }
    try { if (current.ws) current.ws.close(1000); } catch (e) { /* gone */ }
  }
  current = null;
  busy = false;
  typing(false);
  S.log = [];
  S.pending = null;
  S.session = null;
  pendingBubble = null;
  store('log', null);
  store('pending', null);
  store('session', null);
  renderAll();
  if (isOpen) syncHistory();
}

function reset() {
  var old = S.session;
  gen++;
  if (current) {
    try { if (current.ctrl) current.ctrl.abort(); } catch (e) { /* gone */ }
    try { if (current.ws) current.ws.close(1000); } catch (e) { /* gone */ }
  }
  current = null;
  busy = false;
  typing(false);
  sendDisabled(cooldownUntil > Date.now());
  S.log = [];
  S.pending = null;
  S.session = null;
  pendingBubble = null;
  store('log', null);
  store('pending', null);
  store('session', null);
  renderAll();
  announce(t('fresh'));
  if (old && old.token) {
    // Best effort: the proxy erases the session, its history and buffers.
    fetch(API + '/session', {
      method: 'DELETE', keepalive: true, credentials: 'omit', mode: 'cors',
      headers: { 'Authorization': 'Bearer ' + old.token, 'X-Chat-Fingerprint': fingerprint() }
    }).catch(noop);
  }
  emit('reset', {});
}

// Another tab of the same site chatted: follow its transcript when idle.
W.addEventListener('storage', function (e) {
  if (!e.key || e.key.indexOf(KEY + ':') !== 0 || busy) return;
  if (e.key === KEY + ':log' || e.key === KEY + ':session') {
    var other = load('session', null);
    if (other && (other.u || null) !== userOf(USER_TOKEN)) return; // another user's tab
    S.log = load('log', []);
    S.session = other;
    if (!Array.isArray(S.log)) S.log = [];
    renderAll();
  }
});
W.addEventListener('offline', function () { if (isOpen) status('offline', t('offline')); });
W.addEventListener('online', function () {
  if (statusKind !== 'offline') return;
  if (current && current.resuming) status('reconnecting', t('reconnecting')); else status(null);
});
