/**
 * One turn (a question and its answer) and the one event model for every transport:
 * handle() takes start / delta / end / error; the pending answer is saved for a reload; the
 * streaming answer is painted block by block (stableEnd, streamingTail) and announced a
 * sentence at a time (plain). busy, gen and current are the widget's turn state.
 */

/* --------------------------------------------------------------- turns */
var busy = false;
var gen = 0; // bumped by reset(): late callbacks of an abandoned turn see a stale gen
var current = null;
var cooldownUntil = 0, cooldownTimer = null;

function newTurn(text) {
  return { gen: gen, text: '', mid: null, seq: -1, exact: false, done: false, error: null,
    bubble: null, announced: 0, message: text, ctrl: null, reader: null, queued: false };
}
// One event model for SSE, WebSocket and NDJSON: start / delta / end / error.
function handle(turn, type, data, id) {
  if (turn.gen !== gen || turn.done || turn.stopped) return;
  data = data || {};
  if (id) {
    var k = id.lastIndexOf(':');
    if (!turn.mid && k > 0) turn.mid = id.slice(0, k);
    var seq = parseInt(id.slice(k + 1), 10);
    if (isFinite(seq)) {
      if (seq <= turn.seq) return; // replayed after a resume: already shown
      turn.seq = seq;
      turn.exact = true;
    }
  } else if (type === 'delta') {
    turn.seq++;
  }
  if (type === 'start') {
    if (data.message_id) turn.mid = String(data.message_id);
    if (turn.seq < 0) turn.seq = 0;
    savePending(turn);
  } else if (type === 'delta') {
    if (typeof data.text !== 'string' || !data.text) return;
    turn.text += data.text;
    typing(false);
    queueRender(turn);
  } else if (type === 'end') {
    // The final text is authoritative: it repairs anything a broken link may have cost.
    if (typeof data.text === 'string' && data.text !== turn.text) turn.text = data.text;
    turn.done = true;
  } else if (type === 'error') {
    turn.error = refusal(data.code, data, data.retry_after, { afterStart: !!turn.mid });
    turn.done = true;
  }
}
var savePendingTimer = null;
function savePending(turn) {
  if (!turn.mid) return;
  clearTimeout(savePendingTimer);
  savePendingTimer = null;
  S.pending = { mid: turn.mid, seq: turn.exact ? turn.seq : 0, exact: turn.exact, text: turn.text, q: turn.message };
  store('pending', S.pending);
}
function queueRender(turn) {
  if (turn.queued) return;
  turn.queued = true;
  Promise.resolve().then(function () {
    turn.queued = false;
    if (turn.gen !== gen) return;
    paint(turn);
    if (!savePendingTimer) savePendingTimer = setTimeout(function () { savePending(turn); }, 250);
  });
}
// While an answer streams, the blocks before its last blank line (outside a code fence) are
// final: they are rendered once, and each delta re-renders only the tail after them.
function stableEnd(text, from) {
  var re = /[^\n]*\n/g, m, fence = null, end = from;
  re.lastIndex = from;
  while ((m = re.exec(text))) {
    var line = m[0].slice(0, -1), f = RE_FENCE.exec(line);
    if (fence) { if (line.trim().indexOf(fence) === 0) fence = null; } else if (f) fence = f[1];
    else if (!line.trim()) end = re.lastIndex;
  }
  return end;
}
// The tail as shown mid-stream: a `**` or code span still waiting for its closing half is
// closed for display (or dropped when nothing follows it yet), so no raw marker flashes.
function streamingTail(tail) {
  var nl = tail.lastIndexOf('\n') + 1, head = tail.slice(0, nl), line = tail.slice(nl);
  if (RE_FENCE.test(line) || /^\s{0,3}(```|~~~)/m.test(head)) return tail;
  var ticks = (line.match(/`/g) || []).length;
  if (ticks % 2) line = /`\s*$/.test(line) ? line.replace(/`+\s*$/, '') : line.replace(/(\s*)$/, '`$1');
  var bare = line.replace(/`[^`]*`/g, '');
  if ((bare.match(/\*\*/g) || []).length % 2) {
    line = /\*\*\s*$/.test(line) ? line.replace(/\*\*\s*$/, '') : line.replace(/(\s*)$/, '**$1');
  }
  return head + line;
}
function paint(turn) {
  if (!turn.text) return;
  if (!turn.bubble) {
    turn.bubble = bubble('assistant', '');
    turn.bubble.setAttribute('aria-busy', 'true');
    log.appendChild(turn.bubble);
  }
  var body = turn.bubble.querySelector('.body');
  if (turn.cut === undefined) { // a bubble shown before (reload): start from scratch
    while (body.firstChild) body.removeChild(body.firstChild);
    turn.cut = 0;
    turn.tail = [];
  }
  turn.tail.forEach(function (n) { if (n.parentNode) n.parentNode.removeChild(n); });
  var end = stableEnd(turn.text, turn.cut);
  if (end > turn.cut) { markdown(turn.text.slice(turn.cut, end), body); turn.cut = end; }
  var frag = D.createDocumentFragment();
  markdown(streamingTail(turn.text.slice(turn.cut)), frag);
  turn.tail = Array.prototype.slice.call(frag.childNodes);
  body.appendChild(frag);
  scroll();
  // Polite announcements, a finished sentence at a time.
  var re = /[.!?…:](\s)|\n/g, last = -1, m;
  re.lastIndex = turn.announced;
  while ((m = re.exec(turn.text))) last = m.index + m[0].length;
  if (last > turn.announced) {
    var said = plain(turn.text.slice(turn.announced, last));
    turn.announced = last;
    if (said) announce(said);
  }
}
// What a screen reader is told: the text as rendered (so `snake_case` keeps its underscores),
// blocks separated by a space, markers of a sentence cut mid-emphasis dropped.
function plain(s) {
  var d = el('div');
  markdown(s, d);
  Array.prototype.forEach.call(d.querySelectorAll('p,li,pre,br,hr'), function (n) {
    n.parentNode.insertBefore(D.createTextNode(' '), n.nextSibling);
  });
  return d.textContent.replace(/\*\*|`+/g, '').replace(/\s+/g, ' ').trim();
}
