/**
 * The visitor's words: the string tables (en, de, fr, es), the language (LANG), t() to
 * look a string up with {placeholders}, and the texts a site may set (TITLE, WELCOME,
 * PLACEHOLDER, SUBTITLE, FOOTER, STARTERS) plus the display MODE.
 * Uses: opt, optJSON (config.js).
 */

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
// The texts of a language: English under it, the page's data-strings over it. Again when the
// site's own language arrives (site.js).
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
// Suggested first questions: a JSON array, or `|`-separated in a data attribute.
var STARTERS = (function () {
  var v = opt('starters', []);
  if (typeof v === 'string') {
    try { v = JSON.parse(v); } catch (e) { v = v.split('|'); }
  }
  return (Array.isArray(v) ? v : []).map(function (x) { return String(x).trim().slice(0, 200); })
    .filter(Boolean).slice(0, 6);
})();
// bubble (launcher + floating panel), inline (in a page element, always open) or fullscreen.
var MODE = (function () {
  var m = String(opt('mode', 'bubble'));
  return m === 'inline' || m === 'fullscreen' ? m : 'bubble';
})();
