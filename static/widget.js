/*! quartproxy chat widget | MIT | talks only to the proxy it was loaded from (or data-proxy) */
(function () {
  'use strict';
  var W = window, D = document;
  if (W.QuartProxyChat && W.QuartProxyChat.version) return; // embedded twice: keep the first

  var VERSION = '1.0.0';
  var SCRIPT = D.currentScript || (function () {
    var all = D.querySelectorAll('script[src*="widget.js"]');
    return all[all.length - 1];
  })();
  var DS = (SCRIPT && SCRIPT.dataset) || {};
  var PRE = W.QuartProxyChatConfig || {};

  // Options: window.QuartProxyChatConfig wins over data-* attributes, which win over defaults.
  function opt(name, dflt) {
    if (PRE[name] !== undefined && PRE[name] !== null) return PRE[name];
    if (DS[name] !== undefined) return DS[name];
    return dflt;
  }
  function optBool(name) {
    var v = opt(name, false);
    return v === true || v === '' || v === 'true' || v === '1';
  }
  function optJSON(name) {
    var v = opt(name, null);
    if (typeof v === 'string') {
      try { v = JSON.parse(v); } catch (e) { v = null; }
    }
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
  }

  var PROXY = (function () {
    var raw = opt('proxy', '') || (SCRIPT && SCRIPT.src) || '';
    try {
      var u = new URL(raw, D.baseURI);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') return '';
      // data-proxy may carry a path prefix (a proxy mounted under /chat); a script src may not.
      return opt('proxy', '') ? (u.origin + u.pathname).replace(/\/+$/, '') : u.origin;
    } catch (e) { return ''; }
  })();
  if (!PROXY) {
    if (W.console) W.console.error('[quartproxy] cannot tell the proxy address: set data-proxy');
    return;
  }
  var API = PROXY + '/api/v1';
  var FIRST_BYTE_MS = Math.max(500, parseInt(opt('firstByteTimeout', 8000), 10) || 8000);
  var MAX_CHARS = parseInt(opt('maxChars', 4000), 10) || 4000;
  var TRANSPORTS = String(opt('transports', 'sse,ws,ndjson')).split(/[\s,]+/).filter(function (t) {
    return t === 'sse' || t === 'ws' || t === 'ndjson';
  });
  if (!TRANSPORTS.length) TRANSPORTS = ['sse', 'ws', 'ndjson'];
  var METADATA = optJSON('metadata');
  var KEY = 'quartproxy-chat:' + PROXY;

  /* ---------------------------------------------------------------- i18n */
  var I18N = {
    en: {
      title: 'Chat with us', open: 'Open chat', close: 'Close chat', reset: 'New conversation',
      placeholder: 'Write a message…', send: 'Send', input: 'Message', log: 'Conversation',
      you: 'You said:', bot: 'Assistant said:', typing: 'The assistant is typing',
      welcome: 'Hi! How can I help you today?',
      rate: 'You are sending messages too quickly. Please wait {s} seconds, then try again.',
      rateSoon: 'You are sending messages too quickly. Please wait a moment, then try again.',
      busy: 'Please wait until the current answer has finished.',
      offline: 'You seem to be offline. Check your connection, then try again.',
      network: 'The chat service cannot be reached right now. Please try again in a moment.',
      upstream: 'The assistant is not available right now. Please try again in a moment.',
      timeout: 'The assistant took too long to answer. Please try again.',
      blocked: 'This chat is not available here.',
      tooLong: 'Your message is too long. Please shorten it.',
      invalid: 'This message could not be sent. Please rephrase it.',
      lost: 'The connection was lost before the answer finished. Please ask again.',
      generic: 'Something went wrong. Please try again.',
      reconnecting: 'Connection lost. Reconnecting…',
      fresh: 'New conversation started.'
    },
    de: {
      title: 'Chatten Sie mit uns', open: 'Chat öffnen', close: 'Chat schließen',
      reset: 'Neues Gespräch', placeholder: 'Nachricht schreiben…', send: 'Senden',
      input: 'Nachricht', log: 'Gesprächsverlauf', you: 'Sie schrieben:',
      bot: 'Der Assistent schrieb:', typing: 'Der Assistent schreibt',
      welcome: 'Hallo! Wie kann ich Ihnen helfen?',
      rate: 'Sie senden zu schnell. Bitte warten Sie {s} Sekunden und versuchen Sie es dann erneut.',
      rateSoon: 'Sie senden zu schnell. Bitte warten Sie einen Moment.',
      busy: 'Bitte warten Sie, bis die aktuelle Antwort fertig ist.',
      offline: 'Sie scheinen offline zu sein. Bitte prüfen Sie Ihre Verbindung.',
      network: 'Der Chat-Dienst ist gerade nicht erreichbar. Bitte versuchen Sie es gleich noch einmal.',
      upstream: 'Der Assistent ist gerade nicht verfügbar. Bitte versuchen Sie es gleich noch einmal.',
      timeout: 'Der Assistent hat zu lange gebraucht. Bitte versuchen Sie es erneut.',
      blocked: 'Dieser Chat ist hier nicht verfügbar.',
      tooLong: 'Ihre Nachricht ist zu lang. Bitte kürzen Sie sie.',
      invalid: 'Diese Nachricht konnte nicht gesendet werden. Bitte formulieren Sie sie um.',
      lost: 'Die Verbindung brach vor dem Ende der Antwort ab. Bitte fragen Sie erneut.',
      generic: 'Etwas ist schiefgegangen. Bitte versuchen Sie es erneut.',
      reconnecting: 'Verbindung verloren. Verbinde neu…',
      fresh: 'Neues Gespräch begonnen.'
    },
    fr: {
      title: 'Discutez avec nous', open: 'Ouvrir le chat', close: 'Fermer le chat',
      reset: 'Nouvelle conversation', placeholder: 'Écrivez un message…', send: 'Envoyer',
      input: 'Message', log: 'Conversation', you: 'Vous avez écrit :',
      bot: 'L’assistant a écrit :', typing: 'L’assistant écrit',
      welcome: 'Bonjour ! Comment puis-je vous aider ?',
      rate: 'Vous envoyez des messages trop vite. Patientez {s} secondes, puis réessayez.',
      rateSoon: 'Vous envoyez des messages trop vite. Patientez un instant, puis réessayez.',
      busy: 'Veuillez attendre la fin de la réponse en cours.',
      offline: 'Vous semblez hors ligne. Vérifiez votre connexion, puis réessayez.',
      network: 'Le service de chat est injoignable pour le moment. Réessayez dans un instant.',
      upstream: 'L’assistant n’est pas disponible pour le moment. Réessayez dans un instant.',
      timeout: 'L’assistant a mis trop de temps à répondre. Veuillez réessayer.',
      blocked: 'Ce chat n’est pas disponible ici.',
      tooLong: 'Votre message est trop long. Veuillez le raccourcir.',
      invalid: 'Ce message n’a pas pu être envoyé. Veuillez le reformuler.',
      lost: 'La connexion a été perdue avant la fin de la réponse. Veuillez reposer la question.',
      generic: 'Une erreur est survenue. Veuillez réessayer.',
      reconnecting: 'Connexion perdue. Reconnexion…',
      fresh: 'Nouvelle conversation commencée.'
    },
    es: {
      title: 'Hable con nosotros', open: 'Abrir el chat', close: 'Cerrar el chat',
      reset: 'Nueva conversación', placeholder: 'Escriba un mensaje…', send: 'Enviar',
      input: 'Mensaje', log: 'Conversación', you: 'Usted escribió:',
      bot: 'El asistente escribió:', typing: 'El asistente está escribiendo',
      welcome: '¡Hola! ¿En qué puedo ayudarle?',
      rate: 'Está enviando mensajes demasiado rápido. Espere {s} segundos y vuelva a intentarlo.',
      rateSoon: 'Está enviando mensajes demasiado rápido. Espere un momento y vuelva a intentarlo.',
      busy: 'Espere a que termine la respuesta actual.',
      offline: 'Parece que no tiene conexión. Compruébela y vuelva a intentarlo.',
      network: 'El servicio de chat no responde ahora mismo. Inténtelo de nuevo en un momento.',
      upstream: 'El asistente no está disponible ahora mismo. Inténtelo de nuevo en un momento.',
      timeout: 'El asistente tardó demasiado en responder. Inténtelo de nuevo.',
      blocked: 'Este chat no está disponible aquí.',
      tooLong: 'Su mensaje es demasiado largo. Acórtelo, por favor.',
      invalid: 'No se pudo enviar este mensaje. Reformúlelo, por favor.',
      lost: 'Se perdió la conexión antes de terminar la respuesta. Pregunte de nuevo, por favor.',
      generic: 'Algo salió mal. Inténtelo de nuevo.',
      reconnecting: 'Conexión perdida. Reconectando…',
      fresh: 'Nueva conversación iniciada.'
    }
  };
  var LANG = (function () {
    var wanted = [opt('lang', '')].concat(navigator.languages || [navigator.language || 'en']);
    for (var i = 0; i < wanted.length; i++) {
      var l = String(wanted[i] || '').toLowerCase().split('-')[0];
      if (I18N[l]) return l;
    }
    return 'en';
  })();
  var STR = {};
  [I18N.en, I18N[LANG], optJSON('strings')].forEach(function (src) {
    for (var k in src) if (Object.prototype.hasOwnProperty.call(src, k)) STR[k] = String(src[k]);
  });
  function t(key, vars) {
    return (STR[key] || I18N.en[key] || key).replace(/\{(\w+)\}/g, function (m, v) {
      return vars && vars[v] !== undefined ? String(vars[v]) : m;
    });
  }
  var TITLE = String(opt('title', '') || t('title'));
  var WELCOME = String(opt('welcome', t('welcome')));
  var PLACEHOLDER = String(opt('placeholder', '') || t('placeholder'));

  /* ------------------------------------------------------------ storage */
  // localStorage can throw (sandboxed frames, blocked storage): fall back to memory.
  var MEM = {};
  var STORE = (function () {
    var kind = opt('storage', 'local') === 'session' ? 'sessionStorage' : 'localStorage';
    try {
      var s = W[kind];
      s.setItem(KEY + ':probe', '1');
      s.removeItem(KEY + ':probe');
      return s;
    } catch (e) {
      return null;
    }
  })();
  function load(name, dflt) {
    try {
      var raw = STORE ? STORE.getItem(KEY + ':' + name) : MEM[name];
      return raw ? JSON.parse(raw) : dflt;
    } catch (e) { return dflt; }
  }
  function store(name, value) {
    var raw = value === null ? null : JSON.stringify(value);
    try {
      if (!STORE) { MEM[name] = raw; return; }
      if (raw === null) STORE.removeItem(KEY + ':' + name);
      else STORE.setItem(KEY + ':' + name, raw);
    } catch (e) { MEM[name] = raw; } // quota: keep this page working
  }
  var MAX_KEPT = 200;
  // session: {token, sid, exp}; log: [{r: 'user'|'assistant', t, id?}]; pending: {mid, seq, exact, text}
  var S = { session: load('session', null), log: load('log', []), pending: load('pending', null) };
  if (!Array.isArray(S.log)) S.log = [];
  function saveLog() {
    if (S.log.length > MAX_KEPT) S.log = S.log.slice(-MAX_KEPT);
    store('log', S.log);
  }

  /* -------------------------------------------------------- fingerprint */
  // Stable and coarse: a random per-browser id kept in this site's storage plus a few
  // low-entropy properties, hashed. No canvas, audio, font or WebGL probing.
  function hash53(str, seed) {
    var h1 = 0xdeadbeef ^ seed, h2 = 0x41c6ce57 ^ seed;
    for (var i = 0; i < str.length; i++) {
      var c = str.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16);
  }
  function randomId() {
    var a = new Uint8Array(16);
    (W.crypto || W.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return (b + 256).toString(16).slice(1); }).join('');
  }
  var FINGERPRINT = (function () {
    var install = load('install', null);
    if (typeof install !== 'string' || install.length !== 32) {
      install = randomId();
      store('install', install);
    }
    var tz = '';
    try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { /* old engine */ }
    var n = navigator;
    var src = [install, n.userAgent, (n.languages || []).join(','), tz, n.platform || '',
      n.hardwareConcurrency || 0, n.maxTouchPoints || 0].join('|');
    return 'qpc1.' + hash53(src, 1) + hash53(src, 2) + hash53(src, 3);
  })();

  /* ------------------------------------------------------------ events */
  var HOOKS = {};
  function emit(name, detail) {
    (HOOKS[name] || []).slice().forEach(function (fn) {
      try { fn(detail); } catch (e) { if (W.console) W.console.error(e); }
    });
    try { W.dispatchEvent(new CustomEvent('quartproxychat:' + name, { detail: detail })); } catch (e) { /* old engine */ }
  }

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

  /* ---------------------------------------------------------------- CSS */
  var DARK = '--_accent:var(--qpc-dark-accent,#93c5fd);--_on-accent:var(--qpc-dark-on-accent,#0b1220);' +
    '--_bg:var(--qpc-dark-bg,#111827);--_fg:var(--qpc-dark-fg,#f3f4f6);--_muted:var(--qpc-dark-muted,#cbd5e1);' +
    '--_bot-bg:var(--qpc-dark-bot-bg,#1f2937);--_bot-fg:var(--qpc-dark-bot-fg,#f3f4f6);' +
    '--_link:var(--qpc-dark-link,#93c5fd);--_border:var(--qpc-dark-border,#4b5563);' +
    '--_focus:var(--qpc-dark-focus,#fbbf24);--_notice-bg:#3b2a07;--_notice-fg:#fde68a;' +
    '--_code-bg:rgba(255,255,255,.08);color-scheme:dark;';
  var CSS = [
    ':host{all:initial}',
    '[hidden]{display:none!important}',
    '.root{--_accent:var(--qpc-accent,#1d4ed8);--_on-accent:var(--qpc-on-accent,#fff);',
    '--_bg:var(--qpc-bg,#fff);--_fg:var(--qpc-fg,#111827);--_muted:var(--qpc-muted,#4b5563);',
    '--_bot-bg:var(--qpc-bot-bg,#f3f4f6);--_bot-fg:var(--qpc-bot-fg,#111827);--_link:var(--qpc-link,#1d4ed8);',
    '--_border:var(--qpc-border,#d1d5db);--_focus:var(--qpc-focus,#b45309);--_notice-bg:#fef3c7;',
    '--_notice-fg:#78350f;--_code-bg:rgba(0,0,0,.06);--_radius:var(--qpc-radius,14px);color-scheme:light;',
    'font:15px/1.45 var(--qpc-font,system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif);',
    'color:var(--_fg);-webkit-text-size-adjust:100%}',
    '.root[data-theme=dark]{' + DARK + '}',
    '@media (prefers-color-scheme:dark){.root[data-theme=auto]{' + DARK + '}}',
    '*,*::before,*::after{box-sizing:border-box}',
    'button,textarea{font:inherit;color:inherit}',
    ':focus{outline:none}',
    ':focus-visible{outline:3px solid var(--_focus);outline-offset:2px}',
    '.launcher{position:fixed;bottom:20px;right:20px;z-index:var(--qpc-z,2147483000);width:56px;height:56px;',
    'border-radius:50%;border:2px solid var(--_bg);background:var(--_accent);color:var(--_on-accent);cursor:pointer;',
    'display:flex;align-items:center;justify-content:center;box-shadow:0 4px 14px rgba(0,0,0,.28);',
    'transition:transform .15s ease}',
    '.launcher:hover{transform:scale(1.06)}',
    '.launcher svg{width:26px;height:26px}.launcher svg+svg,.root.is-open .launcher svg:first-child{display:none}',
    '.root.is-open .launcher svg+svg{display:block}',
    '.root[data-position=left] .launcher{right:auto;left:20px}',
    '.root[data-position=left] .panel{right:auto;left:20px}',
    '.panel{position:fixed;bottom:88px;right:20px;z-index:var(--qpc-z,2147483000);width:min(380px,calc(100vw - 24px));',
    'height:min(620px,calc(100vh - 110px));display:flex;flex-direction:column;background:var(--_bg);',
    'color:var(--_fg);border:1px solid var(--_border);border-radius:var(--_radius);overflow:hidden;',
    'box-shadow:0 12px 40px rgba(0,0,0,.25);animation:qpc-in .18s ease-out}',
    '@keyframes qpc-in{from{opacity:0;transform:translateY(12px)}to{opacity:1;transform:none}}',
    '@media (max-width:480px){.panel{inset:0;width:100%;height:100%;border-radius:0;border:0}',
    '.root.is-open .launcher{display:none}}',
    'header{display:flex;align-items:center;gap:4px;padding:10px 8px 10px 16px;background:var(--_accent);color:var(--_on-accent)}',
    'h2{flex:1;margin:0;font-size:16px;font-weight:600;line-height:1.3;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}',
    '.icon{width:40px;height:40px;border:0;border-radius:8px;background:transparent;color:inherit;cursor:pointer;',
    'display:flex;align-items:center;justify-content:center}',
    '.icon:hover{background:rgba(127,127,127,.22)}',
    'header :focus-visible{outline-color:var(--_on-accent);outline-offset:-3px}',
    '.icon svg{width:20px;height:20px}',
    '.log{flex:1;overflow-y:auto;padding:16px;display:flex;flex-direction:column;gap:10px;overscroll-behavior:contain}',
    '.log:focus-visible{outline-offset:-3px}',
    '.msg{max-width:86%;padding:9px 13px;border-radius:var(--_radius);border:1px solid transparent;',
    'overflow-wrap:anywhere;word-break:break-word}',
    '.user{align-self:flex-end;background:var(--_accent);color:var(--_on-accent);white-space:pre-wrap;border-bottom-right-radius:4px}',
    '.bot{align-self:flex-start;background:var(--_bot-bg);color:var(--_bot-fg);border-bottom-left-radius:4px}',
    '.body>:first-child{margin-top:0}.body>:last-child{margin-bottom:0}',
    '.bot p,.bot ul,.bot ol,.bot pre{margin:0 0 .6em}.bot ul,.bot ol{padding-left:1.3em}',
    '.bot p.h{font-weight:700}.bot hr{border:0;border-top:1px solid var(--_border)}',
    '.bot a{color:var(--_link);text-decoration:underline;text-underline-offset:2px}',
    '.bot code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--_code-bg);',
    'padding:.1em .3em;border-radius:4px}',
    '.bot pre{overflow-x:auto;background:var(--_code-bg);padding:8px 10px;border-radius:8px}',
    '.bot pre code{background:none;padding:0;white-space:pre}',
    '.notice{align-self:stretch;max-width:none;background:var(--_notice-bg);color:var(--_notice-fg);font-size:14px}',
    '.typing{display:flex;gap:5px;align-items:center;min-height:38px}',
    '.typing i{width:7px;height:7px;border-radius:50%;background:var(--_muted);animation:qpc-dot 1.2s infinite ease-in-out}',
    '.typing i:nth-child(2){animation-delay:.15s}.typing i:nth-child(3){animation-delay:.3s}',
    '@keyframes qpc-dot{0%,80%,100%{opacity:.35;transform:none}40%{opacity:1;transform:translateY(-3px)}}',
    'form{display:flex;gap:8px;align-items:flex-end;padding:10px 12px 12px;border-top:1px solid var(--_border)}',
    'textarea{flex:1;resize:none;min-height:42px;max-height:140px;padding:9px 12px;border:1px solid var(--_muted);',
    'border-radius:10px;background:var(--_bg);line-height:1.4}',
    'textarea::placeholder{color:var(--_muted);opacity:1}',
    '.send{width:42px;height:42px;flex:none;border:0;border-radius:10px;background:var(--_accent);color:var(--_on-accent);',
    'cursor:pointer;display:flex;align-items:center;justify-content:center}',
    '.send[aria-disabled=true]{opacity:.55;cursor:not-allowed}.send svg{width:20px;height:20px}',
    '.sr,.hp{position:absolute!important;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;',
    'clip:rect(0 0 0 0);clip-path:inset(50%);white-space:nowrap;border:0}',
    '@media (prefers-reduced-motion:reduce){*,*::before,*::after{animation:none!important;transition:none!important}',
    '.typing i:nth-child(2){opacity:.65}.typing i:nth-child(3){opacity:1}}',
    '@media (forced-colors:active){.launcher,.send,header{border:1px solid CanvasText}.typing i{background:CanvasText}}'
  ].join('\n');

  /* ---------------------------------------------------------------- DOM */
  var ICONS = {
    chat: 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z',
    close: 'M6 6l12 12M18 6L6 18',
    reset: 'M4 12a8 8 0 1 0 2.3-5.7M4 4v5h5',
    send: 'M4 12l16-8-6 16-2.5-6.5z'
  };
  function icon(name) {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = D.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    svg.setAttribute('fill', 'none');
    svg.setAttribute('stroke', 'currentColor');
    svg.setAttribute('stroke-width', '2');
    svg.setAttribute('stroke-linecap', 'round');
    svg.setAttribute('stroke-linejoin', 'round');
    var p = D.createElementNS(ns, 'path');
    p.setAttribute('d', ICONS[name]);
    svg.appendChild(p);
    return svg;
  }
  function button(cls, label, iconName) {
    var b = el('button', cls);
    b.type = 'button';
    b.setAttribute('aria-label', label);
    b.title = label;
    b.appendChild(icon(iconName));
    return b;
  }

  var host = el('div');
  host.id = 'quartproxy-chat';
  host.setAttribute('data-quartproxy', VERSION);
  var shadow = host.attachShadow({ mode: 'open' });
  // Constructed sheets are not inline <style> for CSP purposes; fall back where unsupported.
  try {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    shadow.adoptedStyleSheets = [sheet];
  } catch (e) {
    shadow.appendChild(el('style', null, CSS));
  }
  var theme = String(opt('theme', 'auto'));
  var root = el('div', 'root');
  root.setAttribute('data-theme', theme === 'light' || theme === 'dark' ? theme : 'auto');
  root.setAttribute('data-position', opt('position', 'right') === 'left' ? 'left' : 'right');
  root.lang = LANG;

  var launcher = button('launcher', t('open'), 'chat');
  launcher.appendChild(icon('close'));
  launcher.setAttribute('aria-expanded', 'false');
  launcher.setAttribute('aria-controls', 'qpc-panel');

  var panel = el('section', 'panel');
  panel.id = 'qpc-panel';
  panel.setAttribute('role', 'dialog');
  panel.setAttribute('aria-labelledby', 'qpc-title');
  panel.hidden = true;
  var header = el('header');
  var h2 = el('h2', null, TITLE);
  h2.id = 'qpc-title';
  var resetBtn = button('icon reset', t('reset'), 'reset');
  var closeBtn = button('icon close', t('close'), 'close');
  header.appendChild(h2);
  header.appendChild(resetBtn);
  header.appendChild(closeBtn);

  var log = el('div', 'log');
  log.setAttribute('role', 'log');
  log.setAttribute('aria-live', 'off'); // answers are announced once, in sentences, by `live`
  log.setAttribute('aria-label', t('log'));
  log.tabIndex = 0; // scrollable region reachable by keyboard
  var live = el('div', 'sr');
  live.setAttribute('aria-live', 'polite');
  live.setAttribute('role', 'status');

  var form = el('form');
  form.noValidate = true;
  var label = el('label', 'sr', t('input'));
  label.htmlFor = 'qpc-input';
  var input = el('textarea');
  input.id = 'qpc-input';
  input.rows = 1;
  input.maxLength = MAX_CHARS;
  input.placeholder = PLACEHOLDER;
  input.setAttribute('enterkeyhint', 'send');
  input.autocomplete = 'off';
  // Honeypot for the proxy's bot check: invisible, unreachable by keyboard, hidden from AT.
  var honeypot = el('input', 'hp');
  honeypot.type = 'text';
  honeypot.name = 'homepage';
  honeypot.tabIndex = -1;
  honeypot.autocomplete = 'off';
  honeypot.setAttribute('aria-hidden', 'true');
  var sendBtn = button('send', t('send'), 'send');
  sendBtn.type = 'submit';
  form.appendChild(label);
  form.appendChild(input);
  form.appendChild(honeypot);
  form.appendChild(sendBtn);

  panel.appendChild(header);
  panel.appendChild(log);
  panel.appendChild(live);
  panel.appendChild(form);
  root.appendChild(panel);
  root.appendChild(launcher);
  shadow.appendChild(root);

  /* ---------------------------------------------------------- rendering */
  var nearBottom = true;
  log.addEventListener('scroll', function () {
    nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  });
  function scroll(force) {
    if (force || nearBottom) log.scrollTop = log.scrollHeight;
  }
  function bubble(role, text) {
    var b = el('div', 'msg ' + (role === 'user' ? 'user' : 'bot'));
    b.appendChild(el('span', 'sr', role === 'user' ? t('you') + ' ' : t('bot') + ' '));
    var body = el('div', 'body');
    if (role === 'user') body.textContent = text; else markdown(text, body);
    b.appendChild(body);
    return b;
  }
  function setBubbleText(b, text) {
    var body = b.querySelector('.body');
    var fresh = el('div', 'body');
    markdown(text, fresh);
    b.replaceChild(fresh, body);
  }
  function renderAll() {
    while (log.firstChild) log.removeChild(log.firstChild);
    if (WELCOME) log.appendChild(bubble('assistant', WELCOME)).classList.add('welcome');
    S.log.forEach(function (m) { log.appendChild(bubble(m.r, m.t)); });
    if (S.pending && S.pending.text) {
      pendingBubble = log.appendChild(bubble('assistant', S.pending.text));
    }
    scroll(true);
  }
  var pendingBubble = null;
  var announceSeq = 0;
  function announce(text) {
    var n = el('div', null, text);
    n.setAttribute('data-n', String(++announceSeq));
    live.appendChild(n);
    while (live.childNodes.length > 3) live.removeChild(live.firstChild);
  }
  function notice(text) {
    var n = el('div', 'msg notice', text);
    n.setAttribute('data-notice', '');
    log.appendChild(n);
    scroll(true);
    announce(text);
    return n;
  }
  var typingEl = null;
  function typing(on) {
    if (on && !typingEl) {
      typingEl = el('div', 'msg bot typing');
      typingEl.setAttribute('role', 'img');
      typingEl.setAttribute('aria-label', t('typing'));
      for (var i = 0; i < 3; i++) typingEl.appendChild(el('i'));
      log.appendChild(typingEl);
      log.setAttribute('aria-busy', 'true');
      scroll(true);
    } else if (!on && typingEl) {
      typingEl.parentNode.removeChild(typingEl);
      typingEl = null;
      log.removeAttribute('aria-busy');
    }
  }
  // aria-disabled, not disabled: a disabled button would drop keyboard focus mid-conversation.
  function sendDisabled(on) {
    sendBtn.setAttribute('aria-disabled', on ? 'true' : 'false');
  }
  function autosize() {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 140) + 'px';
  }

  /* ---------------------------------------------------------- open/close */
  // Open/closed survives reloads and navigation within this tab, not across visits.
  function rememberOpen(on) {
    try { W.sessionStorage.setItem(KEY + ':open', on ? '1' : '0'); } catch (e) { /* no storage */ }
  }
  var isOpen = false;
  var synced = false;
  function openPanel(focus) {
    if (!isOpen) {
      isOpen = true;
      panel.hidden = false;
      root.classList.add('is-open');
      launcher.setAttribute('aria-expanded', 'true');
      launcher.setAttribute('aria-label', t('close'));
      launcher.title = t('close');
      rememberOpen(true);
      scroll(true);
      emit('open', {});
      if (!synced) { synced = true; afterFirstOpen(); }
    }
    if (focus !== false) input.focus();
  }
  function closePanel(focus) {
    if (!isOpen) return;
    var hadFocus = shadow.activeElement && panel.contains(shadow.activeElement);
    isOpen = false;
    panel.hidden = true;
    root.classList.remove('is-open');
    launcher.setAttribute('aria-expanded', 'false');
    launcher.setAttribute('aria-label', t('open'));
    launcher.title = t('open');
    rememberOpen(false);
    if (focus !== false || hadFocus) launcher.focus();
    emit('close', {});
  }
  launcher.addEventListener('click', function () { if (isOpen) closePanel(); else openPanel(); });
  closeBtn.addEventListener('click', function () { closePanel(); });
  resetBtn.addEventListener('click', function () { reset(); input.focus(); });
  panel.addEventListener('keydown', function (e) {
    if (e.key === 'Escape' && !e.isComposing) { e.preventDefault(); closePanel(); }
  });
  input.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submit();
    }
  });
  input.addEventListener('input', autosize);
  form.addEventListener('submit', function (e) { e.preventDefault(); submit(); });
  function submit() {
    var text = input.value.trim();
    if (!text) return;
    if (busy) { notice(t('busy')); return; }
    if (send(text)) { input.value = ''; autosize(); }
  }

  /* ---------------------------------------------------------------- HTTP */
  function QPCError(code, extra) {
    this.code = code;
    for (var k in extra || {}) this[k] = extra[k];
  }
  function authHeaders(json) {
    var h = { 'Authorization': 'Bearer ' + (S.session && S.session.token), 'X-Chat-Fingerprint': FINGERPRINT };
    if (json) h['Content-Type'] = 'application/json';
    return h;
  }
  function req(path, init) {
    init.credentials = 'omit';
    init.cache = 'no-store';
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
      var code = body && body.error && body.error.code;
      var retry = body && typeof body.retry_after === 'number' ? body.retry_after : parseInt(res.headers.get('Retry-After') || '', 10);
      if (!code) return new QPCError(res.status === 429 ? 'rate_limited' : 'network', { status: res.status, fallback: res.status !== 429 });
      return new QPCError(code, { status: res.status, retry: isFinite(retry) ? retry : null });
    }, function () { return new QPCError('network', { status: res.status, fallback: true }); });
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
      body: JSON.stringify({ fingerprint: FINGERPRINT, metadata: METADATA })
    }).then(function (res) {
      if (!res.ok) return httpError(res).then(function (e) { throw e; });
      return res.json().then(function (b) {
        if (!b || typeof b.token !== 'string') throw new QPCError('internal');
        var fresh = { token: b.token, sid: b.session_id, exp: b.expires_at };
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
    if (turn.gen !== gen || turn.done) return;
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
      turn.error = new QPCError(String(data.code || 'upstream_error'), { retry: data.retry_after || null, afterStart: !!turn.mid });
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
  function paint(turn) {
    if (!turn.text) return;
    if (!turn.bubble) {
      turn.bubble = bubble('assistant', '');
      turn.bubble.setAttribute('aria-busy', 'true');
      log.appendChild(turn.bubble);
    }
    setBubbleText(turn.bubble, turn.text);
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
  function plain(s) {
    return s.replace(/```[^\n]*\n?/g, '').replace(/[*_`#>]+/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').trim();
  }

  // SSE over fetch, so the token travels in a header. No first byte in time = a buffering middlebox.
  function sseTurn(turn) {
    return ensureSession().then(function () {
      var ctrl = new AbortController();
      turn.ctrl = ctrl;
      var timedOut = false;
      var timer = setTimeout(function () { timedOut = true; ctrl.abort(); }, FIRST_BYTE_MS);
      return req('/chat/message', {
        method: 'POST',
        headers: Object.assign(authHeaders(true), { 'Accept': 'text/event-stream' }),
        body: JSON.stringify({ message: turn.message, metadata: METADATA, honeypot: honeypot.value }),
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
          ws.send(JSON.stringify({ type: 'auth', token: S.session && S.session.token, fingerprint: FINGERPRINT }));
          ws.send(JSON.stringify({ type: 'message', message: turn.message, metadata: METADATA, honeypot: honeypot.value }));
        };
        ws.onmessage = function (e) {
          if (turn.gen !== gen) { finish(new QPCError('aborted')); return; }
          var f = safeJSON(e.data);
          if (!f || typeof f.type !== 'string') return;
          clearTimeout(timer);
          if (f.type === 'error' && !turn.mid) { // refused before the turn began: same codes as HTTP
            finish(new QPCError(String(f.code || 'upstream_error'), { retry: typeof f.retry_after === 'number' ? f.retry_after : null }));
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
        headers: Object.assign(authHeaders(true), { 'Accept': 'application/x-ndjson, text/plain' }),
        body: JSON.stringify({ message: turn.message, metadata: METADATA, honeypot: honeypot.value }),
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
          else if (c.type === 'error') handle(turn, 'error', { code: md.code, message: c.content }, null);
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

  function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function online() {
    if (navigator.onLine !== false) return Promise.resolve();
    return new Promise(function (r) { W.addEventListener('online', function on() { W.removeEventListener('online', on); r(); }); });
  }
  // Picks the answer up where the link broke: the proxy replays what came after Last-Event-ID.
  function resume(turn, quiet) {
    var attempt = 0;
    var shown = null;
    function again() {
      if (turn.gen !== gen) return Promise.reject(new QPCError('aborted'));
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
      if (shown && shown.parentNode) shown.parentNode.removeChild(shown);
      shown = null;
    }
    return wait(0).then(function () {
      if (!quiet) shown = notice(t('reconnecting'));
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
    var busyTries = 0;
    function attempt(i) {
      var kind = order[i];
      return RUNNERS[kind](turn).then(function () {
        if (kind === TRANSPORTS[0]) { if (remembered()) store('transport', null); }
        else if (remembered() !== kind) store('transport', { k: kind, until: Date.now() + 3600000 });
      }, function (e) {
        if (turn.gen !== gen) throw new QPCError('aborted');
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

  function messageFor(e) {
    switch (e.code) {
      case 'rate_limited': return e.retry ? t('rate', { s: Math.ceil(e.retry) }) : t('rateSoon');
      case 'busy': return t('busy');
      case 'offline': return t('offline');
      case 'network': return navigator.onLine === false ? t('offline') : t('network');
      case 'blocked': case 'forbidden': case 'origin_not_allowed': return t('blocked');
      case 'payload_too_large': return t('tooLong');
      case 'bad_request': case 'unsupported_media_type': return t('invalid');
      case 'upstream_timeout': return t('timeout');
      case 'upstream_unavailable': case 'upstream_error': return t('upstream');
      case 'lost': case 'not_found': return t('lost');
      default: return t('generic');
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
    if (text.length > MAX_CHARS) { notice(t('tooLong')); return false; }
    if (cooldownUntil > Date.now()) {
      notice(t('rate', { s: Math.ceil((cooldownUntil - Date.now()) / 1000) }));
      return false;
    }
    if (navigator.onLine === false) { notice(t('offline')); return false; }
    busy = true;
    sendDisabled(true);
    Array.prototype.forEach.call(log.querySelectorAll('[data-notice]'), function (n) { n.parentNode.removeChild(n); });
    var userEntry = { r: 'user', t: text };
    S.log.push(userEntry);
    saveLog();
    var userBubble = log.appendChild(bubble('user', text));
    scroll(true);
    emit('message', { text: text });
    var turn = newTurn(text);
    current = turn;
    typing(true);
    runTurn(turn, false).then(function () {
      if (turn.error) throw turn.error;
      finishAnswer(turn);
    }).catch(function (e) {
      if (turn.gen !== gen) return;
      if (!(e instanceof QPCError)) { if (W.console) W.console.error(e); e = new QPCError('internal'); }
      if (turn.text) finishAnswer(turn); // keep what arrived
      else if (turn.bubble) turn.bubble.parentNode.removeChild(turn.bubble);
      if (!turn.mid && !turn.text) {
        // Never reached the assistant: take the message back so it can be sent again.
        var at = S.log.lastIndexOf(userEntry);
        if (at >= 0) { S.log.splice(at, 1); saveLog(); }
        if (userBubble.parentNode) userBubble.parentNode.removeChild(userBubble);
        if (!input.value) { input.value = text; autosize(); }
      }
      if (e.code === 'rate_limited') cooldown(e.retry || 5);
      notice(messageFor(e));
      emit('error', { code: e.code, message: messageFor(e), retryAfter: e.retry || null });
    }).then(function () {
      if (turn.gen !== gen) return;
      typing(false);
      busy = false;
      current = null;
      if (cooldownUntil <= Date.now()) sendDisabled(false);
      S.pending = null;
      store('pending', null);
      clearTimeout(savePendingTimer);
      savePendingTimer = null;
    });
    return true;
  }
  function finishAnswer(turn) {
    clearTimeout(savePendingTimer);
    savePendingTimer = null;
    typing(false);
    if (!turn.bubble && turn.text) {
      turn.bubble = log.appendChild(bubble('assistant', turn.text));
    } else if (turn.bubble) {
      setBubbleText(turn.bubble, turn.text);
    }
    if (turn.bubble) turn.bubble.removeAttribute('aria-busy');
    if (turn.text.length > turn.announced) {
      var rest = plain(turn.text.slice(turn.announced));
      turn.announced = turn.text.length;
      if (rest) announce(rest);
    }
    scroll();
    if (turn.text) {
      S.log.push({ r: 'assistant', t: turn.text, id: turn.mid || undefined });
      saveLog();
      emit('response', { text: turn.text, messageId: turn.mid });
    }
  }

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
    if (!turn.bubble) typing(true);
    return resume(turn, true).then(function () {
      if (turn.error) throw turn.error;
      finishAnswer(turn);
    }).catch(function (e) {
      if (turn.gen !== gen) return;
      if (turn.text) finishAnswer(turn);
      if (e.code !== 'lost') notice(messageFor(e));
    }).then(function () {
      if (turn.gen !== gen) return;
      typing(false);
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
        }).map(function (m) { return { r: m.role, t: m.text, id: m.message_id || undefined }; });
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
        headers: { 'Authorization': 'Bearer ' + old.token, 'X-Chat-Fingerprint': FINGERPRINT }
      }).catch(noop);
    }
    emit('reset', {});
  }

  // Another tab of the same site chatted: follow its transcript when idle.
  W.addEventListener('storage', function (e) {
    if (!e.key || e.key.indexOf(KEY + ':') !== 0 || busy) return;
    if (e.key === KEY + ':log' || e.key === KEY + ':session') {
      S.log = load('log', []);
      S.session = load('session', null);
      if (!Array.isArray(S.log)) S.log = [];
      renderAll();
    }
  });
  W.addEventListener('offline', function () { if (isOpen) notice(t('offline')); });

  /* ---------------------------------------------------------------- boot */
  W.QuartProxyChat = {
    version: VERSION,
    open: function () { openPanel(true); },
    close: function () { closePanel(false); },
    toggle: function () { if (isOpen) closePanel(false); else openPanel(true); },
    isOpen: function () { return isOpen; },
    reset: reset,
    send: function (text) { openPanel(false); return send(text); },
    on: function (name, fn) { (HOOKS[name] = HOOKS[name] || []).push(fn); return this; },
    off: function (name, fn) { HOOKS[name] = (HOOKS[name] || []).filter(function (f) { return f !== fn; }); return this; }
  };
  renderAll();
  function mount() {
    (D.body || D.documentElement).appendChild(host);
    var wasOpen = false;
    try { wasOpen = W.sessionStorage.getItem(KEY + ':open') === '1'; } catch (e) { /* no storage */ }
    if (optBool('open') || wasOpen) openPanel(false);
    emit('ready', { version: VERSION });
  }
  if (D.body) mount(); else D.addEventListener('DOMContentLoaded', mount);

})();
