// The widget's inline Markdown as it was before issue 13 (one regex with lazy bodies:
// quadratic, and worse on `a_a_a_..._`), kept as the oracle the linear scanner is checked
// against by tests/unit/test_widget_markdown.py. Not served, not used by the widget.
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
  // One pass over the earliest match; every piece of text ends up in a text node.
  var INLINE = new RegExp([
    '(`+)([^`]|[^`][\\s\\S]*?[^`])\\1(?!`)', // 1,2 code
    '\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*', // 3 bold
    '__(?=\\S)([\\s\\S]*?\\S)__(?!\\w)', // 4 bold
    '\\*(?=[^\\s*])([\\s\\S]*?[^\\s*])\\*(?!\\*)', // 5 italic
    '_(?=\\S)([\\s\\S]*?\\S)_(?!\\w)', // 6 italic
    '\\[([^\\]\\n]+)\\]\\(\\s*<?([^\\s<>()]+(?:\\([^\\s<>()]*\\))?)>?(?:\\s+"[^"\\n]*")?\\s*\\)', // 7,8 link
    '((?:https?:\\/\\/|mailto:)[^\\s<>"]*[^\\s<>".,:;!?\'")\\]])', // 9 bare URL
    '\\\\([\\\\`*_\\[\\]()#+\\-.!>~|])' // 10 escape
  ].join('|'));
  function inline(text, parent, depth, inLink) {
    while (text) {
      var m = INLINE.exec(text);
      // "_" only opens emphasis at a word start (so snake_case stays as it is)
      while (m && m[6] !== undefined && m.index > 0 && /\w/.test(text.charAt(m.index - 1))) {
        var rest = INLINE.exec(text.slice(m.index + 1));
        if (rest) rest.index += m.index + 1;
        m = rest;
      }
      if (!m) { parent.appendChild(D.createTextNode(text)); return; }
      if (m.index) parent.appendChild(D.createTextNode(text.slice(0, m.index)));
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
      text = text.slice(m.index + m[0].length);
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

