/**
 * Reading a streamed body: lineSplitter() (any of CR, LF, CRLF), pump() over a fetch
 * reader, sseParser() (events, ids, comments as heartbeats) and safeJSON().
 */

/* -------------------------------------------------- stream consumption */
function lineSplitter(onLine) {
  var buf = '';
  return function (chunk, flush) {
    buf += chunk;
    var re = /\r\n|\r|\n/g, start = 0, m;
    while ((m = re.exec(buf))) {
      if (m[0] === '\r' && m.index === buf.length - 1 && !flush) break; // maybe half of \r\n
      onLine(buf.slice(start, m.index));
      start = re.lastIndex;
    }
    buf = buf.slice(start);
    if (flush && buf) { onLine(buf); buf = ''; }
  };
}
// Reads a fetch body, calling onText per decoded chunk; `firstByte` fires once.
function pump(res, turn, onText, firstByte) {
  var reader = res.body.getReader();
  var dec = new TextDecoder();
  turn.reader = reader;
  function step() {
    return reader.read().then(function (r) {
      if (r.done) { onText(dec.decode(), true); return; }
      if (firstByte) { firstByte(); firstByte = null; }
      onText(dec.decode(r.value, { stream: true }), false);
      if (turn.done || turn.gen !== gen) { reader.cancel().catch(noop); return; }
      return step();
    });
  }
  return step();
}
function noop() {}
function sseParser(turn) {
  var ev = { data: [], type: '', id: null };
  return lineSplitter(function (line) {
    if (line === '') {
      if (ev.data.length) handle(turn, ev.type || 'message', safeJSON(ev.data.join('\n')), ev.id);
      ev = { data: [], type: '', id: null };
      return;
    }
    if (line.charAt(0) === ':') return; // heartbeat comment
    var c = line.indexOf(':');
    var field = c < 0 ? line : line.slice(0, c);
    var value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
    if (field === 'data') ev.data.push(value);
    else if (field === 'event') ev.type = value;
    else if (field === 'id' && value.indexOf('\0') < 0) ev.id = value;
  });
}
function safeJSON(s) {
  try { return JSON.parse(s); } catch (e) { return null; }
}
