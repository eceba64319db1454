/*! quartproxy chat widget | MIT | talks only to the proxy it was loaded from (or data-proxy) */
(function () {
  'use strict';
  var W = window, D = document;
  if (W.QuartProxyChat && W.QuartProxyChat.version) return; // embedded twice: keep the first

  var VERSION = '1.0.0';
  var SCRIPT = D.currentScript || (function () {
    var all = D.querySelectorAll('script[src*="/widget."]'); // widget.js or widget.<digest>.js
    return all[all.length - 1];
  })();
  var DS = (SCRIPT && SCRIPT.dataset) || {};
  var PRE = W.QuartProxyChatConfig || {};

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
  var USER_TOKEN = typeof opt('userToken', '') === 'string' && opt('userToken', '') ? opt('userToken', '') : null;
  var SITE = /^[a-z0-9][a-z0-9_-]{0,31}$/.test(String(opt('site', ''))) ? String(opt('site', '')) : '';
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
      blocked: 'Your message was not sent because it looked automated. Please wait a moment, then type it again.',
      notHere: 'This chat is not available on this page.',
      spamDuplicate: 'You have sent this same message several times. Please wait a little before repeating it, or say it differently.',
      spamLinks: 'Your message contains too many links. Please send it with fewer links.',
      spamPattern: 'Your message contains words that are not allowed here. Please rephrase it.',
      spamFlood: 'Your message repeats the same characters too much. Please rephrase it.',
      restarting: 'The chat service is restarting. Please try again in a few seconds.',
      storeDown: 'The chat service is briefly unavailable. Please try again in {s} seconds.',
      sessionLost: 'Your chat session could not be confirmed. Please start a new conversation, then try again.',
      tooLongBy: 'Your message is too long: {n} characters, the limit is {max}. Please shorten it.',
      counter: '{n} of {max} characters',
      incomplete: 'This answer was cut off before it finished.',
      retry: 'Try again',
      confirmReset: 'Start a new conversation? The messages above will be deleted.',
      confirmYes: 'Delete and start over', confirmNo: 'Keep this conversation',
      unread: 'New answer from the assistant',
      copy: 'Copy answer', copied: 'Answer copied.', stop: 'Stop the answer', stopped: 'You stopped this answer.',
      tooLong: 'Your message is too long. Please shorten it.',
      attach: 'Attach a file', unclip: 'Remove {name}', fileType: 'This type of file cannot be sent here.',
      fileTooBig: 'A file is too large: the limit is {max} per file.', tooManyFiles: 'At most {n} files per message.',
      filesTooBig: 'The files are too large together: the limit is {max}.', fileMismatch: 'A file’s content does not match its type. Please send another file.',
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
      blocked: 'Ihre Nachricht wurde nicht gesendet, weil sie automatisiert wirkte. Bitte warten Sie kurz und tippen Sie sie erneut.',
      notHere: 'Dieser Chat ist auf dieser Seite nicht verfügbar.',
      spamDuplicate: 'Sie haben diese Nachricht mehrmals gesendet. Bitte warten Sie etwas, bevor Sie sie wiederholen, oder formulieren Sie sie anders.',
      spamLinks: 'Ihre Nachricht enthält zu viele Links. Bitte senden Sie sie mit weniger Links.',
      spamPattern: 'Ihre Nachricht enthält Wörter, die hier nicht erlaubt sind. Bitte formulieren Sie sie um.',
      spamFlood: 'Ihre Nachricht wiederholt dieselben Zeichen zu oft. Bitte formulieren Sie sie um.',
      restarting: 'Der Chat-Dienst startet neu. Bitte versuchen Sie es in ein paar Sekunden erneut.',
      storeDown: 'Der Chat-Dienst ist kurz nicht verfügbar. Bitte versuchen Sie es in {s} Sekunden erneut.',
      sessionLost: 'Ihre Chat-Sitzung konnte nicht bestätigt werden. Bitte beginnen Sie ein neues Gespräch.',
      tooLongBy: 'Ihre Nachricht hat {n} Zeichen; erlaubt sind {max}. Bitte kürzen Sie sie.',
      counter: '{n} von {max} Zeichen',
      incomplete: 'Diese Antwort wurde vor dem Ende abgeschnitten.',
      retry: 'Erneut versuchen',
      confirmReset: 'Neues Gespräch beginnen? Die bisherigen Nachrichten werden gelöscht.',
      confirmYes: 'Löschen und neu beginnen', confirmNo: 'Gespräch behalten',
      unread: 'Neue Antwort des Assistenten',
      copy: 'Antwort kopieren', copied: 'Antwort kopiert.', stop: 'Antwort anhalten', stopped: 'Sie haben diese Antwort angehalten.',
      tooLong: 'Ihre Nachricht ist zu lang. Bitte kürzen Sie sie.',
      attach: 'Datei anhängen', unclip: '{name} entfernen', fileType: 'Diese Art von Datei kann hier nicht gesendet werden.',
      fileTooBig: 'Eine Datei ist zu groß: höchstens {max} pro Datei.', tooManyFiles: 'Höchstens {n} Dateien pro Nachricht.',
      filesTooBig: 'Die Dateien sind zusammen zu groß: höchstens {max}.', fileMismatch: 'Der Inhalt einer Datei passt nicht zu ihrem Typ. Bitte senden Sie eine andere Datei.',
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
      blocked: 'Votre message n’a pas été envoyé car il semblait automatisé. Patientez un instant, puis retapez-le.',
      notHere: 'Ce chat n’est pas disponible sur cette page.',
      spamDuplicate: 'Vous avez envoyé ce même message plusieurs fois. Patientez un peu avant de le répéter, ou formulez-le autrement.',
      spamLinks: 'Votre message contient trop de liens. Envoyez-le avec moins de liens.',
      spamPattern: 'Votre message contient des mots qui ne sont pas autorisés ici. Veuillez le reformuler.',
      spamFlood: 'Votre message répète trop les mêmes caractères. Veuillez le reformuler.',
      restarting: 'Le service de chat redémarre. Réessayez dans quelques secondes.',
      storeDown: 'Le service de chat est brièvement indisponible. Réessayez dans {s} secondes.',
      sessionLost: 'Votre session de chat n’a pas pu être confirmée. Commencez une nouvelle conversation.',
      tooLongBy: 'Votre message compte {n} caractères ; la limite est de {max}. Veuillez le raccourcir.',
      counter: '{n} sur {max} caractères',
      incomplete: 'Cette réponse a été coupée avant la fin.',
      retry: 'Réessayer',
      confirmReset: 'Commencer une nouvelle conversation ? Les messages ci-dessus seront supprimés.',
      confirmYes: 'Supprimer et recommencer', confirmNo: 'Garder la conversation',
      unread: 'Nouvelle réponse de l’assistant',
      copy: 'Copier la réponse', copied: 'Réponse copiée.', stop: 'Arrêter la réponse', stopped: 'Vous avez arrêté cette réponse.',
      tooLong: 'Votre message est trop long. Veuillez le raccourcir.',
      attach: 'Joindre un fichier', unclip: 'Retirer {name}', fileType: 'Ce type de fichier ne peut pas être envoyé ici.',
      fileTooBig: 'Un fichier est trop volumineux : {max} au maximum par fichier.', tooManyFiles: 'Au plus {n} fichiers par message.',
      filesTooBig: 'Les fichiers sont trop volumineux ensemble : {max} au maximum.', fileMismatch: 'Le contenu d’un fichier ne correspond pas à son type. Veuillez envoyer un autre fichier.',
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
      blocked: 'Su mensaje no se envió porque parecía automático. Espere un momento y vuelva a escribirlo.',
      notHere: 'Este chat no está disponible en esta página.',
      spamDuplicate: 'Ha enviado este mismo mensaje varias veces. Espere un poco antes de repetirlo o dígalo de otra forma.',
      spamLinks: 'Su mensaje contiene demasiados enlaces. Envíelo con menos enlaces.',
      spamPattern: 'Su mensaje contiene palabras que no se permiten aquí. Reformúlelo, por favor.',
      spamFlood: 'Su mensaje repite demasiado los mismos caracteres. Reformúlelo, por favor.',
      restarting: 'El servicio de chat se está reiniciando. Inténtelo de nuevo en unos segundos.',
      storeDown: 'El servicio de chat no está disponible por un momento. Inténtelo de nuevo en {s} segundos.',
      sessionLost: 'No se pudo confirmar su sesión de chat. Empiece una conversación nueva.',
      tooLongBy: 'Su mensaje tiene {n} caracteres; el límite es {max}. Acórtelo, por favor.',
      counter: '{n} de {max} caracteres',
      incomplete: 'Esta respuesta se cortó antes de terminar.',
      retry: 'Reintentar',
      confirmReset: '¿Empezar una conversación nueva? Se borrarán los mensajes anteriores.',
      confirmYes: 'Borrar y empezar de nuevo', confirmNo: 'Mantener la conversación',
      unread: 'Nueva respuesta del asistente',
      copy: 'Copiar la respuesta', copied: 'Respuesta copiada.', stop: 'Detener la respuesta', stopped: 'Ha detenido esta respuesta.',
      tooLong: 'Su mensaje es demasiado largo. Acórtelo, por favor.',
      attach: 'Adjuntar un archivo', unclip: 'Quitar {name}', fileType: 'Este tipo de archivo no se puede enviar aquí.',
      fileTooBig: 'Un archivo es demasiado grande: {max} como máximo por archivo.', tooManyFiles: 'Como máximo {n} archivos por mensaje.',
      filesTooBig: 'Los archivos juntos son demasiado grandes: {max} como máximo.', fileMismatch: 'El contenido de un archivo no coincide con su tipo. Envíe otro archivo, por favor.',
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
  function useLanguage(l) {
    LANG = l;
    STR = {};
    [I18N.en, I18N[LANG], optJSON('strings')].forEach(function (src) {
      for (var k in src) if (Object.prototype.hasOwnProperty.call(src, k)) STR[k] = String(src[k]);
    });
  }
  useLanguage(LANG);
  function t(key, vars) {
    return (STR[key] || I18N.en[key] || key).replace(/\{(\w+)\}/g, function (m, v) {
      return vars && vars[v] !== undefined ? String(vars[v]) : m;
    });
  }
  var TITLE = String(opt('title', '') || t('title'));
  var WELCOME = String(opt('welcome', t('welcome')));
  var PLACEHOLDER = String(opt('placeholder', '') || t('placeholder'));
  var SUBTITLE = String(opt('subtitle', '') || '');
  var FOOTER = String(opt('footer', '') || ''); // Markdown: links allowed, rendered safely
  var STAMPS = opt('timestamps', true) !== false && String(opt('timestamps', '')) !== 'false';
  var STARTERS = (function () {
    var v = opt('starters', []);
    if (typeof v === 'string') {
      try { v = JSON.parse(v); } catch (e) { v = v.split('|'); }
    }
    return (Array.isArray(v) ? v : []).map(function (x) { return String(x).trim().slice(0, 200); })
      .filter(Boolean).slice(0, 6);
  })();
  var MODE = (function () {
    var m = String(opt('mode', 'bubble'));
    return m === 'inline' || m === 'fullscreen' ? m : 'bubble';
  })();

  /* ------------------------------------------------------------ storage */
  var MEM = {};
  var STORE = (function () {
    try { return W[opt('storage', 'local') === 'session' ? 'sessionStorage' : 'localStorage'] || null; } catch (e) { return null; }
  })();
  function load(name, dflt) {
    try {
      var raw = Object.prototype.hasOwnProperty.call(MEM, name) ? MEM[name] : STORE ? STORE.getItem(KEY + ':' + name) : null;
      return raw ? JSON.parse(raw) : dflt;
    } catch (e) { return dflt; }
  }
  function store(name, value) {
    var raw = value === null ? null : JSON.stringify(value);
    try {
      if (!STORE) { MEM[name] = raw; return; }
      if (raw === null) STORE.removeItem(KEY + ':' + name);
      else STORE.setItem(KEY + ':' + name, raw);
      delete MEM[name];
    } catch (e) { MEM[name] = raw; } // quota or blocked storage: keep this page working
  }
  var MAX_KEPT = 200;
  var S = { session: load('session', null), log: load('log', []), pending: load('pending', null) };
  if (!Array.isArray(S.log)) S.log = [];
  if (S.session && (S.session.u || null) !== userOf(USER_TOKEN)) {
    S = { session: null, log: [], pending: null };
    store('session', null); store('log', null); store('pending', null);
  }
  function saveLog() {
    if (S.log.length > MAX_KEPT) S.log = S.log.slice(-MAX_KEPT);
    store('log', S.log);
  }

  /* -------------------------------------------------------- fingerprint */
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
  var FP = null;
  function fingerprint() {
    if (FP) return FP;
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
    FP = 'qpc1.' + hash53(src, 1) + hash53(src, 2) + hash53(src, 3);
    return FP;
  }

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
  var LINK_TAIL = /\]\(\s*<?([^\s<>()]+(?:\([^\s<>()]*\))?)>?(?:\s+"[^"\n]*")?\s*\)/y;
  var BARE_URL = /(?:https?:\/\/|mailto:)[^\s<>"]*[^\s<>".,:;!?'")\]]/y;
  var ESCAPABLE = '\\`*_[]()#+-.!>~|';
  function solid(c) { return c !== '' && !/\s/.test(c); }
  function wordy(c) { return /\w/.test(c); }
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
    ':host{all:initial!important}',
    '[hidden]{display:none!important}',
    '.root{--_accent:var(--qpc-accent,#1d4ed8);--_on-accent:var(--qpc-on-accent,#fff);',
    '--_bg:var(--qpc-bg,#fff);--_fg:var(--qpc-fg,#111827);--_muted:var(--qpc-muted,#4b5563);',
    '--_bot-bg:var(--qpc-bot-bg,#f3f4f6);--_bot-fg:var(--qpc-bot-fg,#111827);--_link:var(--qpc-link,#1d4ed8);',
    '--_border:var(--qpc-border,#d1d5db);--_focus:var(--qpc-focus,#b45309);--_notice-bg:#fef3c7;',
    '--_notice-fg:#78350f;--_code-bg:rgba(0,0,0,.06);--_radius:var(--qpc-radius,14px);color-scheme:light;',
    'font:15px/1.45 var(--qpc-font,system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif);',
    'color:var(--_fg);-webkit-text-size-adjust:100%;letter-spacing:normal;word-spacing:normal;text-transform:none;',
    'text-shadow:none;text-indent:0;text-align:start;font-style:normal;font-variant:normal;white-space:normal;',
    'cursor:auto;visibility:visible;tab-size:4;hyphens:manual}',
    '.root[data-scheme=dark]{' + DARK + '}',
    '.root[data-scheme=dark][data-site-accent]{--_accent:var(--qpc-accent);--_on-accent:var(--qpc-on-accent,#fff)}',
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
    '.badge{position:absolute;top:-5px;right:-5px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;',
    'background:#b91c1c;color:#fff;font:700 12px/18px system-ui,sans-serif;text-align:center;border:2px solid #fff}',
    '.root[data-position=left] .launcher{right:auto;left:20px}',
    '.root[data-position=left] .panel{right:auto;left:20px}',
    '.panel{position:fixed;bottom:88px;right:20px;z-index:var(--qpc-z,2147483000);width:min(380px,calc(100vw - 24px));',
    'height:min(620px,calc(100vh - 110px));display:flex;flex-direction:column;background:var(--_bg);',
    'color:var(--_fg);border:1px solid var(--_border);border-radius:var(--_radius);overflow:hidden;',
    'box-shadow:0 12px 40px rgba(0,0,0,.25);animation:qpc-in .18s ease-out}',
    '@keyframes qpc-in{from{opacity:0;transform:translateY(12px)}to{opacity:1;transform:none}}',
    '@media (max-width:480px),(max-height:500px){.panel{inset:0;width:100%;height:100%;border-radius:0;border:0}',
    '.root.is-open .launcher{display:none}}',
    'header{display:flex;align-items:center;gap:4px;padding:10px 8px 10px 16px;background:var(--_accent);color:var(--_on-accent)}',
    '.avatar{width:32px;height:32px;border-radius:50%;object-fit:cover;flex:none;background:var(--_bg)}',
    '.titles{flex:1;min-width:0}.sub{margin:0;font-size:13px;opacity:.9;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}',
    '.foot{padding:0 14px 10px;font-size:12px;color:var(--_muted)}.foot p{margin:0}.foot a{color:var(--_link)}',
    '.at{display:block;margin-top:4px;font-size:11px;opacity:.75;text-align:end}',
    '.root[data-mode=inline] .panel,.root[data-mode=fullscreen] .panel{animation:none}',
    '.root[data-mode=inline] .panel{position:relative;inset:auto;width:100%;height:100%;min-height:360px;z-index:auto;box-shadow:none}',
    '.root[data-mode=fullscreen] .panel{inset:0;width:100%;height:100%;border-radius:0;border:0}',
    '.root[data-mode=inline]{height:100%}:host([data-mode=inline]){display:block!important;height:100%!important}',
    '.root:not([data-mode=bubble]) .launcher,.root:not([data-mode=bubble]) header .close{display:none}',
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
    '.incomplete{border-color:var(--_notice-fg);border-style:dashed}',
    '.tools{display:flex;justify-content:flex-end;align-items:center;gap:2px;margin:2px -8px -6px 0}.tools .at{margin:0}',
    '.tools .icon{width:30px;height:30px;color:var(--_muted)}.tools .icon svg{width:16px;height:16px}',
    '.tools .icon[data-copied]{color:var(--_fg)}',
    '.starters{display:flex;flex-wrap:wrap;gap:6px;align-self:flex-start;max-width:100%}',
    '.cut{display:flex;flex-wrap:wrap;align-items:center;gap:8px;margin-top:8px;font-size:13px;color:var(--_muted)}',
    '.cut>span{flex:1 1 0;min-width:10em}.cut>i{font-style:normal;color:var(--_fg)}',
    '.act{font-size:14px;padding:6px 12px;border-radius:8px;cursor:pointer;border:1px solid var(--_accent);',
    'background:var(--_bg);color:var(--_link)}',
    '.act.yes{background:var(--_accent);color:var(--_on-accent)}',
    '.confirm{padding:10px 14px;border-bottom:1px solid var(--_border);background:var(--_notice-bg);color:var(--_notice-fg);',
    'font-size:14px;display:flex;flex-wrap:wrap;gap:8px;align-items:center}.confirm p{margin:0;flex-basis:100%}',
    '.counter{padding:0 14px 2px;font-size:12px;color:var(--_muted);text-align:end}',
    '.counter.over{color:var(--_fg);font-weight:600}',
    'textarea[aria-invalid=true]{border-color:#b91c1c;outline:1px solid #b91c1c}',
    '.typing{display:flex;gap:5px;align-items:center;min-height:38px}',
    '.typing i{width:7px;height:7px;border-radius:50%;background:var(--_muted);animation:qpc-dot 1.2s infinite ease-in-out}',
    '.typing i:nth-child(2){animation-delay:.15s}.typing i:nth-child(3){animation-delay:.3s}',
    '@keyframes qpc-dot{0%,80%,100%{opacity:.35;transform:none}40%{opacity:1;transform:translateY(-3px)}}',
    'form{display:flex;gap:8px;align-items:flex-end;padding:10px 12px 12px;border-top:1px solid var(--_border)}',
    'textarea{flex:1;resize:none;min-height:42px;max-height:140px;padding:9px 12px;border:1px solid var(--_muted);',
    'border-radius:10px;background:var(--_bg);line-height:1.4}',
    'textarea::placeholder{color:var(--_muted);opacity:1}',
    '.send,.halt{width:42px;height:42px;flex:none;border:0;border-radius:10px;background:var(--_accent);color:var(--_on-accent);',
    'cursor:pointer;display:flex;align-items:center;justify-content:center}',
    '.send[aria-disabled=true]{opacity:.55;cursor:not-allowed}.send svg,.halt svg{width:20px;height:20px}',
    '.halt:not([hidden])+.send{display:none}',
    '.clip{width:34px;height:42px;flex:none;border:0;background:none;color:var(--_muted);cursor:pointer}.clip svg{width:20px}',
    '.chips{display:flex;flex-wrap:wrap;gap:6px;padding:0 12px}.chips:empty{display:none}',
    '.chip{display:flex;align-items:center;gap:4px;font-size:13px;padding:2px 4px 2px 10px;border:1px solid var(--_border);border-radius:14px}',
    '.unclip{border:0;background:none;color:inherit;cursor:pointer;width:24px;height:24px}.unclip svg{width:14px}',
    '.files{font-size:13px;opacity:.85;margin-top:4px}',
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
    clip: 'M21 11l-8.5 8.5a5 5 0 0 1-7-7L14 4a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L15 7',
    reset: 'M4 12a8 8 0 1 0 2.3-5.7M4 4v5h5',
    send: 'M4 12l16-8-6 16-2.5-6.5z',
    stop: 'M7 7h10v10H7z',
    copy: 'M9 9h11v11H9zM5 15H4V4h11v1'
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
  function luminance(rgb) {
    var c = rgb.map(function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }
  function background(node) {
    if (!node) return null;
    var m = /rgba?\(([^)]*)\)/.exec(getComputedStyle(node).backgroundColor || '');
    if (!m) return null;
    var p = m[1].split(/[\s,\/]+/).filter(Boolean).map(parseFloat);
    return p.length < 3 || (p.length > 3 && p[3] < 0.5) ? null : p.slice(0, 3);
  }
  function siteScheme() {
    var bg = background(D.body) || background(D.documentElement);
    if (bg) return luminance(bg) < 0.179 ? 'dark' : 'light'; // darker than mid grey
    var cs = String(getComputedStyle(D.documentElement).colorScheme || '');
    var meta = D.querySelector('meta[name=color-scheme]');
    if (!/dark|light/.test(cs) && meta) cs = meta.content || '';
    if (/dark/.test(cs) && (!/light/.test(cs) || (W.matchMedia && W.matchMedia('(prefers-color-scheme: dark)').matches))) return 'dark';
    return 'light';
  }
  function applyScheme() {
    var scheme = theme === 'light' || theme === 'dark' ? theme : siteScheme();
    if (root.getAttribute('data-scheme') !== scheme) root.setAttribute('data-scheme', scheme);
    var hs = getComputedStyle(host);
    var own = hs.getPropertyValue('--qpc-accent').trim() && !hs.getPropertyValue('--qpc-dark-accent').trim();
    if (own) root.setAttribute('data-site-accent', ''); else root.removeAttribute('data-site-accent');
  }
  if (theme !== 'light' && theme !== 'dark') {
    try { W.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyScheme); } catch (e) { /* old engine */ }
    try {
      var queued = false; // at most once a frame, however often the site toggles classes
      var watch = new MutationObserver(function () {
        if (queued) return;
        queued = true;
        (W.requestAnimationFrame || setTimeout)(function () { queued = false; applyScheme(); });
      }); // a site's own dark-mode switch
      watch.observe(D.documentElement, { attributes: true, attributeFilter: ['class', 'style', 'data-theme', 'data-bs-theme', 'data-color-scheme'] });
      D.addEventListener('DOMContentLoaded', function () {
        if (D.body) watch.observe(D.body, { attributes: true, attributeFilter: ['class', 'style', 'data-theme'] });
      });
      if (D.body) watch.observe(D.body, { attributes: true, attributeFilter: ['class', 'style', 'data-theme'] });
    } catch (e) { /* old engine */ }
  }
  root.setAttribute('data-mode', MODE);
  root.setAttribute('data-position', opt('position', 'right') === 'left' ? 'left' : 'right');
  root.lang = LANG;

  var launcher = button('launcher', t('open'), 'chat');
  launcher.appendChild(icon('close'));
  launcher.setAttribute('aria-expanded', 'false');
  launcher.setAttribute('aria-controls', 'qpc-panel');
  var badge = el('span', 'badge');
  badge.setAttribute('aria-hidden', 'true'); // the launcher's label says it
  badge.hidden = true;
  launcher.appendChild(badge);
  var unread = 0;
  function setUnread(n) {
    unread = n;
    badge.hidden = !n;
    badge.textContent = n > 9 ? '9+' : String(n);
    var label = isOpen ? t('close') : n ? t('open') + ' – ' + t('unread') : t('open');
    launcher.setAttribute('aria-label', label);
    launcher.title = label;
  }

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
  var titles = el('div', 'titles');
  titles.appendChild(h2);
  if (SUBTITLE) titles.appendChild(el('p', 'sub', SUBTITLE));
  header.appendChild(resetBtn);
  var AVATAR = opt('avatar', '') ? safeHref(String(opt('avatar', ''))) : null; // http(s) only
  if (AVATAR && /^https?:/.test(AVATAR)) {
    var img = el('img', 'avatar');
    img.src = AVATAR;
    img.alt = ''; // decorative: the title names the chat
    img.referrerPolicy = 'no-referrer';
    img.loading = 'lazy'; // fetched when the panel first shows, not on every page view
    img.addEventListener('error', function () { img.hidden = true; });
    header.appendChild(img);
  }
  header.appendChild(titles);
  header.appendChild(closeBtn);
  var confirmBar = el('div', 'confirm');
  confirmBar.setAttribute('role', 'group');
  confirmBar.setAttribute('aria-labelledby', 'qpc-confirm');
  confirmBar.hidden = true;
  var confirmText = el('p', null, t('confirmReset'));
  confirmText.id = 'qpc-confirm';
  var keepBtn = el('button', 'act', t('confirmNo'));
  var wipeBtn = el('button', 'act yes', t('confirmYes'));
  keepBtn.type = wipeBtn.type = 'button';
  keepBtn.id = 'qpc-keep';
  wipeBtn.id = 'qpc-wipe';
  confirmBar.appendChild(confirmText);
  confirmBar.appendChild(keepBtn);
  confirmBar.appendChild(wipeBtn);

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
  input.setAttribute('aria-describedby', 'qpc-counter');
  var counter = el('div', 'counter');
  counter.id = 'qpc-counter';
  counter.hidden = true;
  input.placeholder = PLACEHOLDER;
  input.setAttribute('enterkeyhint', 'send');
  input.autocomplete = 'off';
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
  var stopBtn = button('halt', t('stop'), 'stop');
  stopBtn.hidden = true;
  form.insertBefore(stopBtn, sendBtn);
  stopBtn.addEventListener('click', function () { stopTurn(); });

  panel.appendChild(header);
  panel.appendChild(confirmBar);
  panel.appendChild(log);
  panel.appendChild(counter);
  panel.appendChild(form);
  if (FOOTER) { var foot = el('div', 'foot'); markdown(FOOTER, foot); panel.appendChild(foot); }
  root.appendChild(panel);
  root.appendChild(launcher);
  root.appendChild(live);
  shadow.appendChild(root);

  /* ---------------------------------------------------------- rendering */
  var nearBottom = true;
  log.addEventListener('scroll', function () {
    nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  });
  function scroll(force) {
    if (force || nearBottom) log.scrollTop = log.scrollHeight;
  }
  function bubble(role, text, at) {
    var b = el('div', 'msg ' + (role === 'user' ? 'user' : 'bot'));
    b.appendChild(el('span', 'sr', role === 'user' ? t('you') + ' ' : t('bot') + ' '));
    var body = el('div', 'body');
    if (role === 'user') body.textContent = text; else markdown(text, body);
    b.appendChild(body);
    if (at) stamp(b, at);
    return b;
  }
  function stamp(b, at) {
    var d = new Date(at);
    if (!STAMPS || isNaN(d.getTime())) return;
    var tm = el('time', 'at');
    tm.dateTime = d.toISOString();
    try { tm.textContent = d.toLocaleTimeString(LANG, { hour: '2-digit', minute: '2-digit' }); } catch (e) { tm.textContent = d.toISOString().slice(11, 16); }
    tm.title = d.toLocaleString(LANG);
    b.appendChild(tm);
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
    if (!S.log.length && STARTERS.length) {
      var st = log.appendChild(el('div', 'starters'));
      STARTERS.forEach(function (q) {
        var b = st.appendChild(el('button', 'act', q));
        b.type = 'button';
        b.addEventListener('click', function () { if (!busy) send(q); });
      });
    }
    S.log.forEach(function (m, i) {
      var b = log.appendChild(bubble(m.r, m.t, m.at));
      fileLine(b, m.f);
      if (m.x) markIncomplete(b, S.log[i - 1] && S.log[i - 1].r === 'user' ? S.log[i - 1].t : null, m.x === 2);
      if (m.r === 'assistant') tools(b, m.t);
    });
    if (S.pending && S.pending.text) {
      pendingBubble = log.appendChild(bubble('assistant', S.pending.text));
    }
    scroll(true);
  }
  var pendingBubble = null;
  var announceSeq = 0;
  function announce(text, always) {
    if (!isOpen && !always) return; // a closed chat is not read out; `unread` says it once
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
  var statusEl = null, statusKind = '';
  function status(kind, text) {
    if (!kind) {
      if (statusEl && statusEl.parentNode) statusEl.parentNode.removeChild(statusEl);
      statusEl = null;
      statusKind = '';
      return;
    }
    if (!statusEl) {
      statusEl = el('div', 'msg notice status');
      statusEl.setAttribute('data-notice', '');
    }
    if (statusKind !== kind) { statusEl.textContent = text; announce(text); }
    statusKind = kind;
    if (statusEl.parentNode !== log || log.lastChild !== statusEl) log.appendChild(statusEl);
    scroll(true);
  }
  function markIncomplete(b, question, stopped) {
    b.classList.add('incomplete');
    var cut = el('div', 'cut');
    cut.appendChild(el('i', null, stopped ? '\u25A0' : '\u26A0\uFE0E')).setAttribute('aria-hidden', 'true');
    cut.appendChild(el('span', null, t(stopped ? 'stopped' : 'incomplete')));
    if (question) {
      var again = el('button', 'act', t('retry'));
      again.type = 'button';
      again.addEventListener('click', function () {
        if (busy) { notice(t('busy')); return; }
        if (send(question)) cut.removeChild(again);
      });
      cut.appendChild(again);
    }
    b.appendChild(cut);
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
  function sendDisabled(on) {
    sendBtn.setAttribute('aria-disabled', on ? 'true' : 'false');
    var streaming = busy && !!current;
    if (stopBtn.hidden === streaming) {
      var refocus = shadow.activeElement === (streaming ? sendBtn : stopBtn);
      stopBtn.hidden = !streaming;
      if (refocus) (streaming ? stopBtn : input).focus();
    }
  }
  function stopTurn() {
    var turn = current;
    if (!turn || turn.stopped) return;
    turn.stopped = true;
    try { if (turn.ctrl) turn.ctrl.abort(); } catch (e) { /* gone */ }
    try { if (turn.ws) turn.ws.close(1000); } catch (e) { /* gone */ }
  }
  function tools(b, text) {
    var row = el('div', 'tools');
    var copy = button('icon copy', t('copy'), 'copy');
    if (b.lastChild && b.lastChild.nodeName === 'TIME') row.appendChild(b.lastChild); // one line
    copy.addEventListener('click', function () {
      var done = function () { announce(t('copied')); copy.setAttribute('data-copied', ''); };
      var fallback = function () {
        var area = el('textarea');
        area.value = text;
        shadow.appendChild(area);
        area.select();
        try { D.execCommand('copy'); done(); } catch (e) { /* nothing to do */ }
        shadow.removeChild(area);
        copy.focus();
      };
      if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(done, fallback);
      else fallback();
    });
    row.appendChild(copy);
    b.appendChild(row);
  }
  function autosize() {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 140) + 'px';
  }

  /* ---------------------------------------------------------- open/close */
  function rememberOpen(on) {
    if (MODE !== 'bubble') return; // always open: nothing to remember (and nothing is written)
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
      setUnread(0);
      rememberOpen(true);
      applyScheme();
      scroll(true);
      emit('open', {});
      if (!synced) { synced = true; afterFirstOpen(); }
    }
    if (focus !== false) input.focus();
  }
  function closePanel(focus) {
    if (!isOpen || MODE !== 'bubble') return;
    var hadFocus = shadow.activeElement && panel.contains(shadow.activeElement);
    isOpen = false;
    panel.hidden = true;
    root.classList.remove('is-open');
    launcher.setAttribute('aria-expanded', 'false');
    setUnread(unread);
    rememberOpen(false);
    if (focus !== false || hadFocus) launcher.focus();
    emit('close', {});
  }
  launcher.addEventListener('click', function () { if (isOpen) closePanel(); else openPanel(); });
  closeBtn.addEventListener('click', function () { closePanel(); });
  function askReset(on) {
    confirmBar.hidden = !on;
    resetBtn.setAttribute('aria-expanded', on ? 'true' : 'false');
    if (on) keepBtn.focus(); // the safe choice has focus: Enter alone deletes nothing
  }
  resetBtn.setAttribute('aria-expanded', 'false');
  resetBtn.addEventListener('click', function () { askReset(confirmBar.hidden); });
  keepBtn.addEventListener('click', function () { askReset(false); resetBtn.focus(); });
  wipeBtn.addEventListener('click', function () { askReset(false); reset(); input.focus(); });
  panel.addEventListener('keydown', function (e) {
    if (e.key !== 'Escape' || e.isComposing) return;
    e.preventDefault();
    if (!confirmBar.hidden) { askReset(false); resetBtn.focus(); } else closePanel();
  });
  input.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submit();
    }
  });
  input.addEventListener('input', function () { autosize(); count(); });
  var wasOver = false;
  function count() {
    var n = input.value.trim().length, over = n > MAX_CHARS;
    counter.hidden = n < MAX_CHARS * 0.9;
    counter.className = over ? 'counter over' : 'counter';
    counter.textContent = over ? t('tooLongBy', { n: fmt(n), max: fmt(MAX_CHARS) }) : t('counter', { n: fmt(n), max: fmt(MAX_CHARS) });
    input.setAttribute('aria-invalid', over ? 'true' : 'false');
    if (over && !wasOver) announce(counter.textContent);
    wasOver = over;
  }
  function fmt(n) {
    try { return n.toLocaleString(LANG); } catch (e) { return String(n); }
  }
  form.addEventListener('submit', function (e) { e.preventDefault(); submit(); });
  function submit() {
    var text = input.value.trim();
    if (!text) return;
    if (busy) { notice(t('busy')); return; }
    if (send(text)) { input.value = ''; autosize(); count(); }
  }

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
  function takeFiles() {
    var f = pending;
    pending = [];
    drawChips();
    return f;
  }
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
  function fileLine(b, names) {
    if (names && names.length) b.querySelector('.body').appendChild(el('div', 'files', '📎 ' + names.join(', ')));
  }

  /* ---------------------------------------------------------------- HTTP */
  function QPCError(code, extra) {
    this.code = code;
    for (var k in extra || {}) this[k] = extra[k];
  }
  function refusal(code, src, retry, extra) {
    var e = new QPCError(String(code || 'upstream_error'), extra);
    e.retry = typeof retry === 'number' && isFinite(retry) ? retry : null;
    if (src && typeof src.message === 'string') e.said = src.message.slice(0, 500);
    if (src && typeof src.reason === 'string') e.reason = src.reason;
    return e;
  }
  function authHeaders(json) {
    var h = { 'Authorization': 'Bearer ' + (S.session && S.session.token), 'X-Chat-Fingerprint': fingerprint() };
    if (json) h['Content-Type'] = 'application/json';
    return h;
  }
  function req(path, init) {
    init.credentials = 'omit';
    init.cache = 'no-store';
    if (SITE) init.headers = Object.assign({}, init.headers, { 'X-Chat-Site': SITE });
    init.mode = 'cors';
    return fetch(API + path, init).catch(function (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new QPCError(navigator.onLine === false ? 'offline' : 'network', { fallback: true });
    });
  }
  function httpError(res) {
    return res.text().then(function (raw) {
      var body = null;
      try { body = JSON.parse(raw); } catch (e) { /* not ours */ }
      var err = (body && body.error) || {};
      var code = err.code;
      var retry = body && typeof body.retry_after === 'number' ? body.retry_after : parseInt(res.headers.get('Retry-After') || '', 10);
      retry = isFinite(retry) ? retry : null;
      if (!code) return new QPCError(res.status === 429 ? 'rate_limited' : 'network', { status: res.status, retry: retry, fallback: res.status !== 429 });
      return refusal(code, err, retry, { status: res.status });
    }, function () { return new QPCError('network', { status: res.status, fallback: true }); });
  }
  function userOf(token) {
    if (!token) return null;
    try {
      var part = String(token).split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      var sub = JSON.parse(decodeURIComponent(escape(W.atob(part)))).sub;
      return typeof sub === 'string' && sub ? sub : null;
    } catch (e) { return null; }
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
      body: JSON.stringify(USER_TOKEN ? { fingerprint: fingerprint(), metadata: METADATA, user_token: USER_TOKEN } : { fingerprint: fingerprint(), metadata: METADATA })
    }).then(function (res) {
      if (!res.ok) return httpError(res).then(function (e) { throw e; });
      return res.json().then(function (b) {
        if (!b || typeof b.token !== 'string') throw new QPCError('internal');
        var fresh = { token: b.token, sid: b.session_id, exp: b.expires_at, u: userOf(USER_TOKEN) };
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
    var d = el('div');
    markdown(s, d);
    Array.prototype.forEach.call(d.querySelectorAll('p,li,pre,br,hr'), function (n) {
      n.parentNode.insertBefore(D.createTextNode(' '), n.nextSibling);
    });
    return d.textContent.replace(/\*\*|`+/g, '').replace(/\s+/g, ' ').trim();
  }

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

  function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function online() {
    if (navigator.onLine !== false) return Promise.resolve();
    return new Promise(function (r) { W.addEventListener('online', function on() { W.removeEventListener('online', on); r(); }); });
  }
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
  function syncHistory() {
    var s = S.session;
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
      fetch(API + '/session', {
        method: 'DELETE', keepalive: true, credentials: 'omit', mode: 'cors',
        headers: { 'Authorization': 'Bearer ' + old.token, 'X-Chat-Fingerprint': fingerprint() }
      }).catch(noop);
    }
    emit('reset', {});
  }

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

  /* ---------------------------------------------------------------- boot */
  W.QuartProxyChat = {
    version: VERSION,
    open: function () { openPanel(true); },
    close: function () { closePanel(false); },
    toggle: function () { if (isOpen) closePanel(false); else openPanel(true); },
    isOpen: function () { return isOpen; },
    reset: reset,
    setUserToken: switchUser,
    send: function (text) { openPanel(false); return send(text); },
    on: function (name, fn) { (HOOKS[name] = HOOKS[name] || []).push(fn); return this; },
    off: function (name, fn) { HOOKS[name] = (HOOKS[name] || []).filter(function (f) { return f !== fn; }); return this; }
  };
  renderAll();
  function mount() {
    var target = MODE === 'inline' ? D.querySelector(String(opt('target', '') || '#quartproxy-chat-inline')) : null;
    if (MODE === 'inline' && !target) {
      if (W.console) W.console.error('[quartproxy] data-mode="inline" needs data-target: an element of the page');
      MODE = 'bubble';
      root.setAttribute('data-mode', MODE);
    }
    if (MODE !== 'bubble') {
      host.setAttribute('data-mode', MODE);
      panel.setAttribute('role', 'region');
    }
    (target || D.documentElement).appendChild(host);
    applyScheme();
    if (MODE !== 'bubble') openPanel(false);
    var wasOpen = false;
    try { wasOpen = W.sessionStorage.getItem(KEY + ':open') === '1'; } catch (e) { /* no storage */ }
    if (optBool('open') || wasOpen) openPanel(false);
    emit('ready', { version: VERSION });
  }
  if (D.body) mount(); else D.addEventListener('DOMContentLoaded', mount);

  /* ---------------------------------------------------------------- site defaults */
  function applySiteLanguage(tag) {
    var l = String(tag || '').toLowerCase().split('-')[0];
    if (opt('lang', '') || !I18N[l] || l === LANG) return;
    useLanguage(l);
    root.lang = l;
    if (!opt('title', '')) h2.textContent = TITLE = t('title');
    if (opt('welcome', undefined) === undefined) WELCOME = t('welcome');
    if (!opt('placeholder', '')) input.placeholder = PLACEHOLDER = t('placeholder');
    [[resetBtn, 'reset'], [closeBtn, 'close'], [sendBtn, 'send'], [stopBtn, 'stop'],
      [ATTACH.length ? attachBtn : null, 'attach']].forEach(function (b) {
      if (b[0]) { b[0].setAttribute('aria-label', t(b[1])); b[0].title = t(b[1]); }
    });
    confirmText.textContent = t('confirmReset');
    keepBtn.textContent = t('confirmNo');
    wipeBtn.textContent = t('confirmYes');
    log.setAttribute('aria-label', t('log'));
    label.textContent = t('input');
    setUnread(unread);
    if (!busy) renderAll();
  }
  function applySiteDefaults(d) {
    if (!d || typeof d !== 'object') return;
    applySiteLanguage(d.language);
    if (typeof d.title === 'string' && d.title && !opt('title', '')) {
      TITLE = d.title;
      h2.textContent = TITLE;
    }
    if (typeof d.greeting === 'string' && d.greeting && opt('welcome', undefined) === undefined) {
      WELCOME = d.greeting;
      if (!busy) renderAll();
    }
    if ((d.theme === 'light' || d.theme === 'dark') && opt('theme', undefined) === undefined) {
      theme = d.theme;
      root.setAttribute('data-theme', theme);
    }
    if (typeof d.accent === 'string' && /^#[0-9a-fA-F]{6}$/.test(d.accent) &&
        !getComputedStyle(host).getPropertyValue('--qpc-accent').trim()) {
      host.style.setProperty('--qpc-accent', d.accent);
    }
    applyScheme();
    emit('site', { site: SITE });
  }
  if (SITE) {
    req('/sites/' + encodeURIComponent(SITE) + '/widget', { method: 'GET' })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(applySiteDefaults)
      .catch(function () { /* the built-in defaults stay */ });
  }

})();
