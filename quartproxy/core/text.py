"""Visitor text as the gateway keeps it: the one cleaning every message, metadata string and
key goes through (core.messages). Pure.

Control characters other than `\\n` and `\\t` are removed (and lone surrogates, which JSON can
carry but UTF-8 cannot), and so are invisible format characters — bidi overrides, zero-width
spaces and the like — except where real text needs them (`_strip_invisible`); `\\r\\n` and
`\\r` become `\\n`; the text is NFC-normalised and, for messages, trimmed.
"""

from __future__ import annotations

import unicodedata

_KEEP = frozenset("\n\t")
_JOINERS = frozenset("\u200c\u200d")  # ZWNJ, ZWJ
_BLACK_FLAG = "\U0001f3f4"  # the base of emoji tag sequences (subdivision flags)


def _is_tag(ch: str) -> bool:
    return "\U000e0020" <= ch <= "\U000e007f"


def _is_selector(ch: str) -> bool:
    return "\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef"


def _joins(ch: str) -> bool:
    """Whether a ZWJ/ZWNJ next to `ch` may be meaningful: `ch` is a visible non-ASCII
    character (an emoji, or a letter of a script that uses joiners)."""
    return ch > "\x7f" and not ch.isspace() and unicodedata.category(ch) not in _REMOVED


_REMOVED = ("Cc", "Cs", "Cf")  # controls, lone surrogates, invisible format characters


def _strip_invisible(text: str) -> str:
    """Controls (but `\n`, `\t`), lone surrogates and invisible format characters (Cf)
    removed, with the exceptions real text needs. Cf is where the bidi embeddings, overrides
    and isolates (U+202A-202E, U+2066-2069) and marks (U+200E/F, U+061C), the zero-width space,
    word joiner and BOM (U+200B, U+2060, U+FEFF), the soft hyphen and the tag characters live:
    they make the text a person reads differ from the text a workflow, a model or the spam rules
    get (reordered, split words, hidden instructions). Kept: ZWJ/ZWNJ between two visible
    non-ASCII characters (emoji sequences, Persian and Indic spelling), tag characters in an
    emoji tag sequence (after U+1F3F4, subdivision flags), and one variation selector after a
    character (emoji or text presentation; runs of them are a known way to hide data)."""
    out: list[str] = []
    n = len(text)
    for i, ch in enumerate(text):
        if ch in _KEEP:
            out.append(ch)
            continue
        if ch < " " or "\x7f" <= ch <= "\x9f":
            continue  # C0/C1 controls, DEL (the common case, before any table lookup)
        if ch <= "\x7e":
            out.append(ch)
            continue
        prev = out[-1] if out else ""
        if _is_selector(ch):
            if prev and not _is_selector(prev) and not prev.isspace():
                out.append(ch)
            continue
        cat = unicodedata.category(ch)
        if cat not in _REMOVED:
            out.append(ch)
        elif ch in _JOINERS:
            if prev and i + 1 < n and _joins(prev) and _joins(text[i + 1]):
                out.append(ch)
        elif _is_tag(ch) and prev and (prev == _BLACK_FLAG or _is_tag(prev)):
            out.append(ch)
    return "".join(out)


def clean_text(text: str, *, trim: bool = True) -> str:
    """Newlines unified, controls, lone surrogates and invisible format characters removed
    (`_strip_invisible`), NFC, optionally trimmed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _strip_invisible(text)
    # Removing characters or trimming can leave a sequence NFC would still change (a combining
    # mark that now follows a new base); normalise until stable. Two rounds suffice in practice.
    for _ in range(4):
        out = unicodedata.normalize("NFC", text)
        if trim:
            out = out.strip()
        if out == text:
            break
        text = out
    return text
