/**
 * The safe Markdown renderer: text in, DOM nodes out, never HTML. el() and safeHref() are
 * shared with the view. The inline scanner is linear (issue 13); tests/unit/test_widget_markdown.py
 * checks it against the regex it replaced on the built static/widget.js, cut out from this
 * file's `safe markdown (DOM)` section comment to the `CSS` one of styles.js: keep both.
 */

/* ------------------------------------------------- safe markdown (DOM) */
function el(tag, cls, text) {
  var n = D.createElement(tag);
  if (cls) n.className = cls;
  if (text !== undefined && text !== null) n.textContent = text;
  return n;
}
function safeHref(raw) {
  try {
    var u = new URL(raw); // absolute only: relative and protocol-relative URLs throw
    if (u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'mailto:') return u.href;
  } catch (e) { /* not a URL */ }
  return null;
}
function link(parent, href, label) {
  var a = el('a', null, null);
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  inline(label, a, 1, true);
  parent.appendChild(a);
}
// Inline syntax: code spans, **bold**, __bold__, *italic*, _italic_, [links](url), bare
// URLs, \escapes. The earliest construct wins (at one index, in that order); every piece of
// text ends up in a text node. Found by one left-to-right scan in which each closing
// delimiter is looked up with a forward-only cursor, so a text costs O(length): the one
// regex this replaces (lazy `[\s\S]*?` bodies) rescanned to the end from every opener, and
// `a_a_a_…` (20k characters) hung the page (issue 13). tests/unit/test_widget_markdown.py
// checks it against that regex on random texts.
var LINK_TAIL = /\]\(\s*<?([^\s<>()]+(?:\([^\s<>()]*\))?)>?(?:\s+"[^"\n]*")?\s*\)/y;
var BARE_URL = /(?:https?:\/\/|mailto:)[^\s<>"]*[^\s<>".,:;!?'")\]]/y;
var ESCAPABLE = '\\`*_[]()#+-.!>~|';
function solid(c) { return c !== '' && !/\s/.test(c); }
function wordy(c) { return /\w/.test(c); }
// The first index >= p where test(index) holds, else -1. Asked with p never decreasing, so
// each index of the text is tested at most once over all the questions.
function cursor(text, test) {
  var next = -1, upto = 0;
  return function (p) {
    if (next >= p) return next;
    if (upto < p) upto = p;
    while (upto < text.length) { if (test(upto++)) return (next = upto - 1); }
    next = -1;
    return -1;
  };
}
// Where each closing delimiter may stand (j: its index; ch(k): the character at k, '' outside).
var CLOSERS = {
  bold2: function (ch) { return function (j) { return ch(j) === '*' && ch(j + 1) === '*' && solid(ch(j - 1)); }; },
  under2: function (ch) {
    return function (j) { return ch(j) === '_' && ch(j + 1) === '_' && solid(ch(j - 1)) && !wordy(ch(j + 2)); };
  },
  star1: function (ch) {
    return function (j) { return ch(j) === '*' && solid(ch(j - 1)) && ch(j - 1) !== '*' && ch(j + 1) !== '*'; };
  },
  under1: function (ch) { return function (j) { return ch(j) === '_' && solid(ch(j - 1)) && !wordy(ch(j + 1)); }; },
  runEnd: function (ch) { return function (j) { return ch(j) !== '`'; }; },
  bracket: function (ch) { return function (j) { return ch(j) === ']' || ch(j) === '\n'; }; }
};
function inlineScanner(text) {
  var n = text.length;
  function ch(k) { return text.charAt(k); }
  // made on first use: most texts have few kinds of delimiter, and every emphasis opens one
  // inline() of its own
  var shut = {};
  function closer(kind) {
    return shut[kind] || (shut[kind] = cursor(text, CLOSERS[kind](ch)));
  }
  var runs = null, runAt = {}, tailAt = -1, tail = null;
  function match(i, end, group, value) {
    var m = [];
    m.index = i;
    m[0] = text.slice(i, end);
    m[group] = value;
    return m;
  }
  // the first maximal run of exactly k backticks starting at or after `from` (from grows per k)
  function closingRun(k, from) {
    if (!runs) {
      runs = {};
      for (var p = 0; p < n;) {
        if (ch(p) !== '`') { p++; continue; }
        var q = p;
        while (q < n && ch(q) === '`') q++;
        (runs[q - p] = runs[q - p] || []).push(p);
        p = q;
      }
    }
    var list = runs[k] || [], x = runAt[k] || 0;
    while (x < list.length && list[x] < from) x++;
    runAt[k] = x;
    return x < list.length ? list[x] : -1;
  }
  function code(i) {
    var e = closer('runEnd')(i), k;
    if (e < 0) return null; // backticks to the end: no content
    k = e - i;
    var j = closingRun(k, e + 1);
    if (j < 0) return null;
    var m = match(i, j + k, 2, text.slice(e, j));
    m[1] = text.slice(i, e);
    return m;
  }
  function emphasis(i, width, group, kind) {
    var j = closer(kind)(i + width + 1);
    return j < 0 ? null : match(i, j + width, group, text.slice(i + width, j));
  }
  function linkAt(i) {
    var q = closer('bracket')(i + 1);
    if (q <= i + 1 || ch(q) !== ']') return null;
    if (tailAt !== q) { // the part after `]` is the same for every `[` before it
      LINK_TAIL.lastIndex = q;
      tail = LINK_TAIL.exec(text);
      tailAt = q;
    }
    if (!tail) return null;
    var m = match(i, q + tail[0].length, 7, text.slice(i + 1, q));
    m[8] = tail[1];
    return m;
  }
  function at(i) {
    var c = ch(i), c1 = ch(i + 1), m = null;
    if (c === '`') return code(i);
    if (c === '*') {
      if (c1 === '*' && solid(ch(i + 2))) m = emphasis(i, 2, 3, 'bold2');
      if (!m && solid(c1) && c1 !== '*') m = emphasis(i, 1, 5, 'star1');
      return m;
    }
    if (c === '_') {
      if (c1 === '_' && solid(ch(i + 2))) m = emphasis(i, 2, 4, 'under2');
      if (!m && solid(c1)) m = emphasis(i, 1, 6, 'under1');
      return m;
    }
    if (c === '[') return linkAt(i);
    if (c === 'h' || c === 'm') {
      BARE_URL.lastIndex = i;
      var u = BARE_URL.exec(text);
      return u ? match(i, i + u[0].length, 9, u[0]) : null;
    }
    if (c === '\\' && c1 !== '' && ESCAPABLE.indexOf(c1) >= 0) return match(i, i + 2, 10, c1);
    return null;
  }
  // The earliest construct at or after `pos`. "_" only opens emphasis at a word start (so
  // snake_case stays as it is); the text before `pos` counts as a start.
  return function (pos) {
    for (var i = pos; i < n; i++) {
      var m = at(i);
      if (m && !(m[6] !== undefined && i > pos && wordy(ch(i - 1)))) return m;
    }
    return null;
  };
}
function inline(text, parent, depth, inLink) {
  var find = inlineScanner(text), pos = 0;
  while (pos < text.length) {
    var m = find(pos);
    if (!m) { parent.appendChild(D.createTextNode(text.slice(pos))); return; }
    if (m.index > pos) parent.appendChild(D.createTextNode(text.slice(pos, m.index)));
    if (m[2] !== undefined) {
      parent.appendChild(el('code', null, m[2].replace(/^ (.*) $/, '$1')));
    } else if ((m[3] || m[4]) !== undefined && depth < 4) {
      var b = el('strong'); inline(m[3] !== undefined ? m[3] : m[4], b, depth + 1, inLink); parent.appendChild(b);
    } else if ((m[5] || m[6]) !== undefined && depth < 4) {
      var i = el('em'); inline(m[5] !== undefined ? m[5] : m[6], i, depth + 1, inLink); parent.appendChild(i);
    } else if (m[7] !== undefined) {
      var href = safeHref(m[8]);
      if (href && !inLink) link(parent, href, m[7]);
      else inline(m[7], parent, depth + 1, inLink); // unsafe target: keep the label, drop the link
    } else if (m[9] !== undefined) {
      var h = inLink ? null : safeHref(m[9]);
      if (h) link(parent, h, m[9]); else parent.appendChild(D.createTextNode(m[9]));
    } else if (m[10] !== undefined) {
      parent.appendChild(D.createTextNode(m[10]));
    } else {
      parent.appendChild(D.createTextNode(m[0]));
    }
    pos = m.index + m[0].length;
  }
}
var RE_FENCE = /^\s{0,3}(```|~~~)/, RE_UL = /^\s{0,3}[-*+]\s+/, RE_OL = /^\s{0,3}(\d{1,9})[.)]\s+/;
var RE_HEAD = /^\s{0,3}#{1,6}\s+/, RE_QUOTE = /^\s{0,3}>\s?/, RE_RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
function markdown(src, parent) {
  var lines = String(src).replace(/\r\n?/g, '\n').split('\n');
  var i = 0;
  function paragraphish(cls) {
    var p = el('p', cls);
    var first = true;
    while (i < lines.length && lines[i].trim() && !RE_FENCE.test(lines[i]) && !RE_UL.test(lines[i]) &&
           !RE_OL.test(lines[i]) && !RE_RULE.test(lines[i]) && (first || !RE_HEAD.test(lines[i]))) {
      if (!first) p.appendChild(el('br'));
      inline(lines[i].replace(RE_QUOTE, '').trim(), p, 0);
      first = false;
      i++;
      if (cls) break; // a heading is one line
    }
    parent.appendChild(p);
  }
  while (i < lines.length) {
    var line = lines[i];
    if (!line.trim()) { i++; continue; }
    var fence = RE_FENCE.exec(line);
    if (fence) {
      var body = [];
      i++;
      while (i < lines.length && lines[i].trim().indexOf(fence[1]) !== 0) body.push(lines[i++]);
      i++;
      var pre = el('pre');
      pre.appendChild(el('code', null, body.join('\n')));
      parent.appendChild(pre);
    } else if (RE_UL.test(line) || RE_OL.test(line)) {
      var ordered = !RE_UL.test(line);
      var re = ordered ? RE_OL : RE_UL;
      var list = el(ordered ? 'ol' : 'ul');
      if (ordered) {
        var start = parseInt(RE_OL.exec(line)[1], 10);
        if (start !== 1) list.start = start;
      }
      var item = null;
      while (i < lines.length && lines[i].trim()) {
        if (re.test(lines[i])) {
          item = el('li');
          list.appendChild(item);
          inline(lines[i].replace(re, ''), item, 0);
        } else if (/^\s+/.test(lines[i]) && item && !RE_UL.test(lines[i]) && !RE_OL.test(lines[i])) {
          item.appendChild(el('br'));
          inline(lines[i].trim(), item, 0);
        } else break;
        i++;
      }
      parent.appendChild(list);
    } else if (RE_RULE.test(line)) {
      parent.appendChild(el('hr'));
      i++;
    } else if (RE_HEAD.test(line)) {
      lines[i] = line.replace(RE_HEAD, '');
      paragraphish('h');
    } else {
      paragraphish('');
    }
  }
}
