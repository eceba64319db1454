/**
 * The three ways to carry a turn: SSE over fetch (sseTurn), WebSocket (wsTurn) and n8n's
 * NDJSON chunks (ndjsonTurn), each ending in the same handle() events; RUNNERS names them.
 */

// SSE over fetch, so the token travels in a header. No first byte in time = a buffering middlebox.
function sseTurn(turn) {
  return ensureSession().then(function () {
    var ctrl = new AbortController();
    turn.ctrl = ctrl;
    var timedOut = false;
    var timer = setTimeout(function () { timedOut = true; ctrl.abort(); }, FIRST_BYTE_MS);
    return req('/chat/message', {
      method: 'POST',
      headers: Object.assign(authHeaders(!turn.files), { 'Accept': 'text/event-stream' }),
      body: turnBody(turn),
      signal: ctrl.signal
    }).then(function (res) {
      if (!res.ok) { clearTimeout(timer); return httpError(res).then(function (e) { throw e; }); }
      if ((res.headers.get('Content-Type') || '').indexOf('text/event-stream') < 0 || !res.body) {
        clearTimeout(timer);
        throw new QPCError('network', { fallback: true });
      }
      return pump(res, turn, sseParser(turn), function () { clearTimeout(timer); });
    }).then(function () {
      clearTimeout(timer);
      if (!turn.done) throw streamBroken(turn);
    }, function (e) {
      clearTimeout(timer);
      if (e instanceof QPCError) throw e;
      if (turn.gen !== gen) throw new QPCError('aborted');
      if (timedOut && !turn.mid) throw new QPCError('network', { fallback: true, buffered: true });
      throw streamBroken(turn);
    });
  });
}
function streamBroken(turn) {
  // With a message id the answer is resumable; without one the turn never began here.
  return turn.mid ? new QPCError('network', { drop: true }) : new QPCError('network', { fallback: true });
}

function wsTurn(turn) {
  return ensureSession().then(function () {
    return new Promise(function (resolve, reject) {
      var url = PROXY.replace(/^http/, 'ws') + '/api/v1/chat/ws';
      var ws, opened = false, settled = false;
      try { ws = new WebSocket(url); } catch (e) { reject(new QPCError('network', { fallback: true })); return; }
      turn.ws = ws;
      var timer = setTimeout(function () { if (!opened) finish(new QPCError('network', { fallback: true })); }, FIRST_BYTE_MS);
      function finish(err) {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        try { ws.close(1000); } catch (e) { /* closing already */ }
        if (err) reject(err); else resolve();
      }
      ws.onopen = function () {
        opened = true;
        ws.send(JSON.stringify({ type: 'auth', token: S.session && S.session.token, fingerprint: fingerprint() }));
        ws.send(JSON.stringify({ type: 'message', message: turn.message, metadata: METADATA, honeypot: honeypot.value }));
      };
      ws.onmessage = function (e) {
        if (turn.gen !== gen) { finish(new QPCError('aborted')); return; }
        var f = safeJSON(e.data);
        if (!f || typeof f.type !== 'string') return;
        clearTimeout(timer);
        if (f.type === 'error' && !turn.mid) { // refused before the turn began: same codes as HTTP
          finish(refusal(f.code, f, f.retry_after));
          return;
        }
        handle(turn, f.type, f, typeof f.id === 'string' ? f.id : null);
        if (turn.done) finish(null);
      };
      ws.onclose = function (e) {
        if (settled) return;
        if (e.code === 4401) finish(new QPCError('unauthorized'));
        else if (e.code === 4403) finish(new QPCError('blocked'));
        else if (e.code === 4429) finish(new QPCError('rate_limited'));
        else finish(opened ? streamBroken(turn) : new QPCError('network', { fallback: true }));
      };
      ws.onerror = function () { /* onclose follows and decides */ };
    });
  });
}

// n8n's own chunk format over a plain streamed POST: the last resort.
function ndjsonTurn(turn) {
  return ensureSession().then(function () {
    var ctrl = new AbortController();
    turn.ctrl = ctrl;
    return req('/chat/stream', {
      method: 'POST',
      headers: Object.assign(authHeaders(!turn.files), { 'Accept': 'application/x-ndjson, text/plain' }),
      body: turnBody(turn),
      signal: ctrl.signal
    }).then(function (res) {
      if (!res.ok) return httpError(res).then(function (e) { throw e; });
      if (!res.body) throw new QPCError('network');
      return pump(res, turn, lineSplitter(function (line) {
        var c = safeJSON(line);
        if (!c || typeof c !== 'object') return;
        var md = c.metadata || {};
        if (c.type === 'begin' && !turn.mid) handle(turn, 'start', { message_id: md.message_id }, null);
        else if (c.type === 'item') handle(turn, 'delta', { text: c.content }, null);
        else if (c.type === 'end') handle(turn, 'end', { message_id: md.message_id }, null);
        else if (c.type === 'error') handle(turn, 'error', { code: md.code, message: c.content, reason: md.reason, retry_after: md.retry_after }, null);
      }), null);
    }).then(function () {
      if (!turn.done) throw streamBroken(turn);
    }, function (e) {
      if (e instanceof QPCError) throw e;
      if (turn.gen !== gen) throw new QPCError('aborted');
      throw streamBroken(turn);
    });
  });
}
var RUNNERS = { sse: sseTurn, ws: wsTurn, ndjson: ndjsonTurn };
