"""core.text: which characters the one cleaning of visitor text keeps and which it removes,
class by class and at the exact edges of each range (the mutation run of issue 24)."""

from __future__ import annotations

import pytest

from quartproxy.core.text import clean_text

FLAG = "\U0001f3f4"  # WAVING BLACK FLAG, the base of emoji tag sequences
SCOTLAND = FLAG + "\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"  # gbsct + CANCEL
ZWJ, ZWNJ = "\u200d", "\u200c"
# the first and last character of both variation-selector blocks
SELECTORS = ["\ufe00", "\ufe0f", "\U000e0100", "\U000e01ef"]


def keep(text: str) -> str:
    return clean_text(text, trim=False)


# -- variation selectors: one after a character is kept, runs and orphans are not ------------


@pytest.mark.parametrize("sel", SELECTORS)
def test_one_selector_after_a_character_is_kept(sel: str) -> None:
    assert keep("a" + sel + "b") == "a" + sel + "b"
    assert keep("\u263a" + sel) == "\u263a" + sel


@pytest.mark.parametrize("sel", SELECTORS)
def test_a_run_of_selectors_keeps_only_the_first(sel: str) -> None:
    assert keep("a" + sel * 2) == "a" + sel
    assert keep("a" + sel + SELECTORS[0] + SELECTORS[-1] + "b") == "a" + sel + "b"


@pytest.mark.parametrize("sel", SELECTORS)
def test_a_selector_with_nothing_to_select_is_removed(sel: str) -> None:
    assert keep(sel + "a") == "a"  # at the start
    assert keep("a " + sel + "b") == "a b"  # after a space
    assert keep("a\n" + sel + "b") == "a\nb"


def test_the_neighbours_of_the_selector_blocks_are_not_selectors() -> None:
    # U+FE10 (a vertical comma) and U+E01F0 (unassigned) are ordinary: a run of them stays
    for ch in ("\ufe10", "\U000e01f0"):
        assert keep("a" + ch * 2) == "a" + ch * 2


# -- tag characters: only inside an emoji tag sequence -----------------------------------------


def test_a_subdivision_flag_is_kept_whole() -> None:
    assert keep(SCOTLAND) == SCOTLAND
    assert keep("go " + SCOTLAND + " now") == "go " + SCOTLAND + " now"


@pytest.mark.parametrize("tag", ["\U000e0020", "\U000e0041", "\U000e007e", "\U000e007f"])
def test_tags_at_both_ends_of_the_block_follow_the_flag(tag: str) -> None:
    assert keep(FLAG + tag) == FLAG + tag
    assert keep(FLAG + tag + tag) == FLAG + tag + tag


@pytest.mark.parametrize("tag", ["\U000e0020", "\U000e0041", "\U000e007e", "\U000e007f"])
def test_tags_outside_a_flag_sequence_are_removed(tag: str) -> None:
    assert keep("a" + tag + "b") == "ab"  # hidden ASCII after a letter
    assert keep(tag + "a") == "a"  # at the start
    assert keep("\U0001f3f3" + tag) == "\U0001f3f3"  # after another flag (white flag)
    assert keep("\u00e9" + tag * 3) == "\u00e9"


def test_the_language_tag_below_the_block_is_removed_even_after_the_flag() -> None:
    assert keep(FLAG + "\U000e0001" + "a") == FLAG + "a"


# -- ZWJ / ZWNJ: between two visible non-ASCII characters only -------------------------------


def test_joiners_between_visible_non_ascii_characters_are_kept() -> None:
    family = "\U0001f468" + ZWJ + "\U0001f469" + ZWJ + "\U0001f467"
    assert keep(family) == family
    persian = "\u0645\u06cc" + ZWNJ + "\u062e\u0648\u0627\u0647\u0645"  # "mi-khaham"
    assert keep(persian) == persian
    assert keep("\u00e9" + ZWNJ + "\u00fc") == "\u00e9" + ZWNJ + "\u00fc"


@pytest.mark.parametrize("j", [ZWJ, ZWNJ])
def test_joiners_next_to_ascii_or_nothing_are_removed(j: str) -> None:
    assert keep("a" + j + "b") == "ab"
    assert keep("\u00e9" + j + "a") == "\u00e9a"  # visible non-ASCII before, ASCII after
    assert keep("a" + j + "\u00e9") == "a\u00e9"
    assert keep(j + "\u00e9") == "\u00e9"  # at the start
    assert keep("\u00e9" + j) == "\u00e9"  # at the end: nothing after it
    assert keep("\u00e9 " + j + "\u00fc") == "\u00e9 \u00fc"  # after a space


@pytest.mark.parametrize("j", [ZWJ, ZWNJ])
def test_joiners_next_to_invisible_or_space_characters_are_removed(j: str) -> None:
    assert keep("\u00e9" + j + "\u00a0\u00fc") == "\u00e9\u00a0\u00fc"  # NBSP: a space
    assert keep("\u00e9" + j + "\u0080\u00fc") == "\u00e9\u00fc"  # a C1 control (Cc)
    assert keep("\u00e9" + j + "\u200b\u00fc") == "\u00e9\u00fc"  # ZWSP (Cf)
    assert keep("\u00e9" + j + j + "\u00fc") == "\u00e9" + j + "\u00fc"  # a run: one is left


# -- controls and plain ASCII ------------------------------------------------------------------


def test_controls_are_removed_and_printable_ascii_kept() -> None:
    printable = "".join(chr(c) for c in range(0x20, 0x7F))
    assert keep(printable) == printable
    assert keep("a\x00\x1f\x7f\x80\x85\x9fb") == "ab"
    assert keep("a\tb\nc") == "a\tb\nc"
    assert keep("a\r\nb\rc") == "a\nb\nc"
    assert keep("a\ud800b") == "ab"  # a lone surrogate


# -- NFC until stable, trimming ----------------------------------------------------------------


def test_nfc_and_trim() -> None:
    assert clean_text("  e\u0301  ") == "\u00e9"
    assert clean_text(" e\u200b\u0301 ") == "\u00e9"  # the mark meets its base once ZWSP is gone
    assert clean_text("\u200b hi \u200b") == "hi"
    assert keep(" hi ") == " hi "
