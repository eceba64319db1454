/**
 * When a link fails: resume() picks an answer up where it broke (Last-Event-ID), runTurn()
 * walks the transport order, falls back on a buffering or blocked network, and remembers a
 * fallback for an hour.
 */

function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
function online() {
  if (navigator.onLine !== false) return Promise.resolve();
  return new Promise(function (r) { W.addEventListener('online', function on() { W.removeEventListener('online', on); r(); }); });
}
// Picks the answer up where the link broke: the proxy replays what came after Last-Event-ID.
function resume(turn, quiet) {
  var attempt = 0;
  var shown = null;
  turn.resuming = true;
  function again() {
    if (turn.gen !== gen) return Promise.reject(new QPCError('aborted'));
    if (turn.stopped) return Promise.reject(new QPCError('stopped'));
    if (attempt >= 8) return Promise.reject(new QPCError('lost'));
    var delay = attempt ? Math.min(250 * Math.pow(2, attempt), 5000) : 150;
    attempt++;
    return online().then(function () { return wait(delay); }).then(function () {
      if (turn.gen !== gen) throw new QPCError('aborted');
      if (!turn.exact) { turn.seq = 0; turn.text = ''; } // no ids seen: replay everything
      var ctrl = new AbortController();
      turn.ctrl = ctrl;
      return req('/chat/message/' + encodeURIComponent(turn.mid), {
        method: 'GET',
        headers: Object.assign(authHeaders(false), { 'Last-Event-ID': turn.mid + ':' + turn.seq, 'Accept': 'text/event-stream' }),
        signal: ctrl.signal
      }).then(function (res) {
        if (res.status === 404) throw new QPCError('lost');
        if (!res.ok) return httpError(res).then(function (e) { e.retryable = e.status >= 500 || e.code === 'network'; throw e; });
        return pump(res, turn, sseParser(turn), unshow); // reconnected: the notice goes
      }).then(function () {
        if (!turn.done) return again();
      }, function (e) {
        if (turn.gen !== gen) throw new QPCError('aborted');
        if (e instanceof QPCError && !e.fallback && !e.retryable) throw e;
        return again();
      });
    });
  }
  function unshow() {
    if (shown) status(null); // reconnected (or gave up): the connection line goes
    shown = null;
    turn.resuming = false;
  }
  return wait(0).then(function () {
    if (!quiet) { shown = true; status(navigator.onLine === false ? 'offline' : 'reconnecting', t(navigator.onLine === false ? 'offline' : 'reconnecting')); }
    return again();
  }).then(function (v) { unshow(); return v; }, function (e) { unshow(); throw e; });
}

// A fallback is remembered for an hour: the middlebox that forced it is a property of the network.
function remembered() {
  var p = load('transport', null);
  return p && p.until > Date.now() ? p.k : null;
}
function preferred() {
  var i = TRANSPORTS.indexOf(remembered());
  return i > 0 ? TRANSPORTS.slice(i) : TRANSPORTS;
}
function runTurn(turn, retried) {
  var order = preferred();
  if (turn.files) { // the WebSocket carries text only: files go over HTTP
    order = order.filter(function (k) { return k !== 'ws'; });
    if (!order.length) order = ['sse'];
  }
  var busyTries = 0;
  function attempt(i) {
    var kind = order[i];
    return RUNNERS[kind](turn).then(function () {
      if (kind === TRANSPORTS[0]) { if (remembered()) store('transport', null); }
      else if (remembered() !== kind) store('transport', { k: kind, until: Date.now() + 3600000 });
    }, function (e) {
      if (turn.gen !== gen) throw new QPCError('aborted');
      if (turn.stopped) throw new QPCError('stopped');
      if ((e.code === 'unauthorized' || e.code === 'session_mismatch') && !retried) {
        forgetSession(); // expired, revoked or bound to another fingerprint: start over once
        return runTurn(turn, true);
      }
      if (e.drop) return resume(turn);
      // A buffering middlebox hid a turn the proxy did accept; it is busy until that one ends.
      if (e.code === 'busy' && turn.buffered && busyTries < 8) {
        return wait(Math.min(1000 * Math.pow(2, busyTries++), 8000)).then(function () { return attempt(i); });
      }
      if (e.fallback && i + 1 < order.length && navigator.onLine !== false) {
        if (e.buffered) turn.buffered = true;
        if (W.console) W.console.info('[quartproxy] ' + kind + ' unavailable, trying ' + order[i + 1]);
        return attempt(i + 1);
      }
      throw e;
    });
  }
  return attempt(0);
}
