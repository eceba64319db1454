/**
 * Sending a message and ending its answer: messageFor() (error code to the visitor's words),
 * the rate-limit cooldown, send() and finishAnswer().
 */

// Words the visitor can act on, in their language. The server's own sentence is English: it is
// shown as is where the widget has nothing more precise to say and the visitor reads English.
var REASONS = { automated: 'blocked', duplicate: 'spamDuplicate', links: 'spamLinks', pattern: 'spamPattern', char_flood: 'spamFlood',
  file_too_large: 'fileTooBig', too_many_files: 'tooManyFiles', total_too_large: 'filesTooBig', type_not_allowed: 'fileType', type_mismatch: 'fileMismatch' };
function messageFor(e) {
  var english = LANG === 'en';
  var own = english && e.said ? e.said : null;
  switch (e.code) {
    case 'rate_limited': return e.retry ? t('rate', { s: Math.ceil(e.retry) }) : t('rateSoon');
    case 'busy': return t('busy');
    case 'offline': return t('offline');
    case 'network': return navigator.onLine === false ? t('offline') : t('network');
    case 'blocked':
      if (REASONS[e.reason]) return t(REASONS[e.reason]);
      return own || t('blocked');
    case 'forbidden': case 'origin_not_allowed': return t('notHere');
    case 'payload_too_large': case 'unsupported_media_type':
      if (REASONS[e.reason]) return t(REASONS[e.reason], { name: '', max: bytes(e.reason === 'file_too_large' ? ATTACH_BYTES : ATTACH_TOTAL), n: ATTACH_FILES });
      return e.code === 'payload_too_large' ? t('tooLong') : own || t('invalid');
    case 'bad_request': return own || t('invalid');
    case 'unauthorized': case 'session_mismatch': return t('sessionLost');
    case 'shutting_down': return t('restarting');
    case 'store_unavailable': return t('storeDown', { s: Math.ceil(e.retry || 5) });
    case 'upstream_timeout': return t('timeout');
    case 'upstream_unavailable': case 'upstream_error': return t('upstream');
    case 'lost': case 'not_found': return t('lost');
    default: return own || t('generic');
  }
}
function cooldown(seconds) {
  cooldownUntil = Date.now() + seconds * 1000;
  sendDisabled(true);
  clearTimeout(cooldownTimer);
  cooldownTimer = setTimeout(function () { cooldownUntil = 0; if (!busy) sendDisabled(false); }, seconds * 1000);
}

// Returns false when the message was not accepted for sending (the caller keeps the text).
function send(text) {
  text = String(text || '').trim();
  if (!text || busy) return false;
  if (text.length > MAX_CHARS) { notice(t('tooLongBy', { n: fmt(text.length), max: fmt(MAX_CHARS) })); return false; }
  if (cooldownUntil > Date.now()) {
    notice(t('rate', { s: Math.ceil((cooldownUntil - Date.now()) / 1000) }));
    return false;
  }
  if (navigator.onLine === false) { status('offline', t('offline')); return false; }
  var files = takeFiles();
  busy = true;
  sendDisabled(true);
  Array.prototype.forEach.call(log.querySelectorAll('[data-notice]'), function (n) { n.parentNode.removeChild(n); });
  var userEntry = { r: 'user', t: text, at: Date.now() };
  if (files.length) userEntry.f = files.map(function (f) { return f.name; });
  S.log.push(userEntry);
  saveLog();
  Array.prototype.forEach.call(log.querySelectorAll('.starters'), function (n) { n.parentNode.removeChild(n); });
  var userBubble = log.appendChild(bubble('user', text, userEntry.at));
  fileLine(userBubble, userEntry.f);
  scroll(true);
  emit('message', { text: text });
  var turn = newTurn(text);
  if (files.length) turn.files = files;
  current = turn;
  typing(true);
  sendDisabled(true); // shows Stop now that there is a turn
  runTurn(turn, false).then(function () {
    if (turn.stopped) throw new QPCError('stopped');
    if (turn.error) throw turn.error;
    finishAnswer(turn);
  }).catch(function (e) {
    if (turn.gen !== gen) return;
    if (!(e instanceof QPCError)) { if (W.console) W.console.error(e); e = new QPCError('internal'); }
    if (turn.stopped) e = new QPCError('stopped');
    if (turn.text) finishAnswer(turn, e); // keep what arrived, marked as cut (or stopped)
    else if (turn.bubble) turn.bubble.parentNode.removeChild(turn.bubble);
    if (e.code === 'stopped') return; // the visitor's own doing: no error to explain
    if (!turn.mid && !turn.text) {
      // Never reached the assistant: take the message back so it can be sent again.
      var at = S.log.lastIndexOf(userEntry);
      if (at >= 0) { S.log.splice(at, 1); saveLog(); }
      if (userBubble.parentNode) userBubble.parentNode.removeChild(userBubble);
      if (!input.value) { input.value = text; autosize(); count(); }
      if (files.length && !pending.length) { pending = files; drawChips(); } // and its files
    }
    if (e.code === 'rate_limited') cooldown(e.retry || 5);
    notice(messageFor(e));
    emit('error', { code: e.code, message: messageFor(e), retryAfter: e.retry || null });
  }).then(function () {
    if (turn.gen !== gen) return;
    typing(false);
    status(null); // the answer has ended: no connection banner outlives it
    busy = false;
    current = null;
    sendDisabled(cooldownUntil > Date.now());
    S.pending = null;
    store('pending', null);
    clearTimeout(savePendingTimer);
    savePendingTimer = null;
  });
  return true;
}
function finishAnswer(turn, err) {
  clearTimeout(savePendingTimer);
  savePendingTimer = null;
  typing(false);
  if (!turn.bubble && turn.text) {
    turn.bubble = log.appendChild(bubble('assistant', turn.text));
  } else if (turn.bubble) {
    setBubbleText(turn.bubble, turn.text);
  }
  if (turn.bubble) turn.bubble.removeAttribute('aria-busy');
  if (err && turn.bubble) markIncomplete(turn.bubble, turn.message, err.code === 'stopped');
  var at = Date.now();
  if (turn.bubble && turn.text) { stamp(turn.bubble, at); tools(turn.bubble, turn.text); }
  if (turn.text.length > turn.announced) {
    var rest = plain(turn.text.slice(turn.announced));
    turn.announced = turn.text.length;
    if (rest) announce(rest);
  }
  scroll();
  if (turn.text && !isOpen) { setUnread(unread + 1); announce(t('unread'), true); }
  if (turn.text) {
    S.log.push({ r: 'assistant', t: turn.text, id: turn.mid || undefined, x: err ? (err.code === 'stopped' ? 2 : 1) : undefined, at: at });
    saveLog();
    emit('response', { text: turn.text, messageId: turn.mid, incomplete: !!err });
  }
}
