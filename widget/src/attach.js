/**
 * Files attached to a message (docs/attachments.md). Off unless the site sets data-attach
 * to the types the gateway accepts (its ATTACH_ALLOWED_TYPES), e.g. "image/png,image/jpeg".
 * The paperclip, a drop onto the panel or pasted images add files; chips show each with a
 * remove button; the limits (data-attach-max-files, -max-bytes, -max-total-bytes: keep them
 * equal to the gateway's) are checked here, in the words the gateway's refusals get in
 * messageFor(). A message with files goes as multipart over SSE (NDJSON as its fallback),
 * never the WebSocket: runTurn() leaves it out.
 */
var ATTACH = String(opt('attach', '')).split(/[\s,]+/).filter(Boolean);
var ATTACH_FILES = parseInt(opt('attachMaxFiles', 3), 10) || 3;
var ATTACH_BYTES = parseInt(opt('attachMaxBytes', 10485760), 10) || 10485760;
var ATTACH_TOTAL = parseInt(opt('attachMaxTotalBytes', 15728640), 10) || 15728640;
var pending = [];
var chips = el('div', 'chips');
if (ATTACH.length) {
  var picker = el('input', 'hp');
  picker.type = 'file';
  picker.multiple = true;
  picker.accept = ATTACH.join(',');
  picker.tabIndex = -1;
  picker.setAttribute('aria-hidden', 'true');
  var attachBtn = button('clip', t('attach'), 'clip');
  form.insertBefore(attachBtn, input);
  form.appendChild(picker);
  panel.insertBefore(chips, form);
  attachBtn.addEventListener('click', function () { picker.click(); });
  picker.addEventListener('change', function () { addFiles(picker.files); picker.value = ''; });
  panel.addEventListener('dragover', function (e) { if (dragged(e)) e.preventDefault(); });
  panel.addEventListener('drop', function (e) {
    if (dragged(e)) { e.preventDefault(); addFiles(e.dataTransfer.files); }
  });
  input.addEventListener('paste', function (e) {
    var f = e.clipboardData && e.clipboardData.files;
    if (f && f.length) { e.preventDefault(); addFiles(f); }
  });
}
function dragged(e) {
  return !!e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types || [], 'Files') >= 0;
}
function bytes(n) {
  return n < 1024 ? n + ' B' : n < 1048576 ? Math.ceil(n / 1024) + ' KB' : (n / 1048576).toFixed(1) + ' MB';
}
function addFiles(list) {
  for (var i = 0; i < list.length; i++) {
    var f = list[i], total = f.size, why = null;
    pending.forEach(function (p) { total += p.size; });
    if (ATTACH.indexOf(f.type === 'image/jpg' ? 'image/jpeg' : f.type) < 0) why = 'fileType';
    else if (f.size > ATTACH_BYTES) why = 'fileTooBig';
    else if (pending.length >= ATTACH_FILES) why = 'tooManyFiles';
    else if (total > ATTACH_TOTAL) why = 'filesTooBig';
    if (why) notice(t(why, { name: f.name, max: bytes(why === 'fileTooBig' ? ATTACH_BYTES : ATTACH_TOTAL), n: ATTACH_FILES }));
    else pending.push(f);
  }
  drawChips();
}
function drawChips() {
  while (chips.firstChild) chips.removeChild(chips.firstChild);
  pending.forEach(function (f, i) {
    var c = chips.appendChild(el('span', 'chip', f.name + ' (' + bytes(f.size) + ')'));
    var x = c.appendChild(button('unclip', t('unclip', { name: f.name }), 'close'));
    x.addEventListener('click', function () { pending.splice(i, 1); drawChips(); input.focus(); });
  });
}
// Takes the chips' files for the message being sent (given back if it never left).
function takeFiles() {
  var f = pending;
  pending = [];
  drawChips();
  return f;
}
// The body of a turn: JSON, or FormData (its own Content-Type) when it carries files.
function turnBody(turn) {
  var fields = { message: turn.message, metadata: METADATA, honeypot: honeypot.value };
  if (!turn.files || !turn.files.length) return JSON.stringify(fields);
  var fd = new FormData();
  fd.append('message', fields.message);
  fd.append('metadata', JSON.stringify(METADATA));
  fd.append('honeypot', fields.honeypot);
  turn.files.forEach(function (f) { fd.append('files', f, f.name); });
  return fd;
}
// The file names under a visitor's bubble (kept in the log: names only).
function fileLine(b, names) {
  if (names && names.length) b.querySelector('.body').appendChild(el('div', 'files', '📎 ' + names.join(', ')));
}
