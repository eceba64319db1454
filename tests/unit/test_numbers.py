"""core.numbers: the one parser for numbers read from input, and every reader that uses it."""
# ruff: noqa: RUF001  (look-alike digits are what these tests are about)

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quartproxy.__main__ import main as cli_main
from quartproxy.config import ConfigError, load_settings
from quartproxy.core.events import parse_event_id
from quartproxy.core.limits import Rate
from quartproxy.core.numbers import MAX_DIGITS, parse_udecimal, parse_uint

# Strings Python's own tools take as numbers (isdigit, int, float) that input must not be.
NOT_ASCII_NUMBERS = [
    "²",  # SUPERSCRIPT TWO: isdigit() true, int() raises -> the HTTP 500 of issue 13
    "1²",
    "١",  # ARABIC-INDIC DIGIT ONE: int() accepts it
    "٣",
    "۳",  # EXTENDED ARABIC-INDIC
    "१२",  # DEVANAGARI
    "１２",  # FULLWIDTH
    "𝟏",  # MATHEMATICAL BOLD DIGIT ONE
    "①",  # CIRCLED DIGIT ONE (isdigit, not decimal)
    "+1",
    "-1",
    " 1",
    "1 ",
    "\t1",
    "1\n",
    "1_000",
    "0x10",
    "1e3",
    "1.",
    "",
    "nan",
    "inf",
    "١.٥",
]


@pytest.mark.parametrize("text", NOT_ASCII_NUMBERS)
def test_parse_uint_refuses_everything_but_ascii_digits(text: str) -> None:
    assert parse_uint(text) is None


@pytest.mark.parametrize("text", [t for t in NOT_ASCII_NUMBERS if t not in ("1.",)])
def test_parse_udecimal_refuses_the_same(text: str) -> None:
    assert parse_udecimal(text) is None


@pytest.mark.parametrize(
    ("text", "value"), [("0", 0), ("7", 7), ("007", 7), ("123456789", 123456789)]
)
def test_parse_uint_reads_ascii_digits(text: str, value: int) -> None:
    assert parse_uint(text) == value


def test_parse_uint_bounds_the_digits() -> None:
    assert parse_uint("9" * MAX_DIGITS) == int("9" * MAX_DIGITS)
    assert parse_uint("9" * (MAX_DIGITS + 1)) is None
    assert parse_uint("1" * 5000) is None  # int() itself would raise past 4300 digits
    assert parse_uint("1234", max_digits=3) is None


@pytest.mark.parametrize(("text", "value"), [("12", 12.0), ("0.5", 0.5), (".25", 0.25)])
def test_parse_udecimal_reads_ascii_decimals(text: str, value: float) -> None:
    assert parse_udecimal(text) == value


def test_parse_udecimal_bounds_the_length() -> None:
    assert parse_udecimal("1" * 400) is None  # would be a float, but no setting needs it


@given(st.text(max_size=12))
def test_parse_uint_never_raises_and_agrees_with_ascii_int(text: str) -> None:
    got = parse_uint(text)
    if text and len(text) <= MAX_DIGITS and all("0" <= c <= "9" for c in text):
        assert got == int(text)
    else:
        assert got is None


# -- the readers ---------------------------------------------------------------------------


@pytest.mark.parametrize("seq", ["²", "١", "٣", "１", "+1", " 1x", "1_0", "9" * 10, "-1", ""])
def test_last_event_id_with_a_non_ascii_or_odd_number_is_malformed(seq: str) -> None:
    assert parse_event_id(f"abc:{seq}") is None


def test_last_event_id_reads_ascii_seq() -> None:
    assert parse_event_id("abc:12") == ("abc", 12)
    assert parse_event_id(" a:b:3 ") == ("a:b", 3)
    assert parse_event_id(":3") is None


@pytest.mark.parametrize("text", ["٣/minute", "３/minute", "3/٢minutes", "²/s", "+3/minute"])
def test_rate_refuses_non_ascii_numbers(text: str) -> None:
    with pytest.raises(ValueError):
        Rate.parse(text)


def test_rate_refuses_a_huge_count_with_a_reason() -> None:
    with pytest.raises(ValueError, match="too large"):
        Rate.parse("9" * 30 + "/minute")


def _env(**extra: str) -> dict[str, str]:
    return {
        "JWT_SECRET_KEY": "j" * 40,
        "SESSION_SECRET_KEY": "s" * 40,
        "N8N_WEBHOOK_URL": "http://127.0.0.1:5678/webhook/x",
        "ALLOWED_ORIGINS": "https://a.example",
        **extra,
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_MESSAGE_CHARS", "٤٠٠٠"),
        ("MAX_MESSAGE_CHARS", "4_000"),
        ("MAX_MESSAGE_CHARS", "+4000"),
        ("MAX_MESSAGE_CHARS", "9" * 40),
        ("N8N_TIMEOUT_SECONDS", "nan"),
        ("N8N_TIMEOUT_SECONDS", "inf"),
        ("N8N_TIMEOUT_SECONDS", "1e3"),
        ("N8N_TIMEOUT_SECONDS", "６０"),
        ("HEARTBEAT_SECONDS", "-1"),
    ],
)
def test_settings_refuse_non_ascii_numbers_with_one_line(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_env(**{name: value}))
    assert info.value.variable == name
    assert "\n" not in str(info.value)


def test_settings_read_ascii_numbers() -> None:
    s = load_settings(_env(MAX_MESSAGE_CHARS="1200", N8N_TIMEOUT_SECONDS="2.5"))
    assert (s.max_message_chars, s.n8n_timeout_seconds) == (1200, 2.5)


@pytest.mark.parametrize(
    "args", [["--workers", "٢"], ["--workers", "0"], ["--graceful-timeout", "inf"]]
)
def test_cli_numbers_are_ascii_only(args: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main(args)
    assert info.value.code == 2  # argparse's usage error, before anything starts


# -- the exact length limits (literal figures: a change of the constant must show) -------------


def test_parse_uint_takes_18_digits_and_not_19() -> None:
    assert MAX_DIGITS == 18
    assert parse_uint("9" * 18) == 10**18 - 1
    assert parse_uint("0" * 17 + "7") == 7
    assert parse_uint("1" * 19) is None
    assert parse_uint("0" * 19) is None


def test_parse_uint_max_digits_is_exact() -> None:
    assert parse_uint("123", max_digits=3) == 123
    assert parse_uint("0123", max_digits=3) is None


def test_parse_udecimal_takes_32_characters_and_not_33() -> None:
    assert parse_udecimal("1" * 32) == float("1" * 32)
    assert parse_udecimal("0." + "5" * 30) == pytest.approx(0.5555555555)
    assert parse_udecimal("1" * 33) is None
    assert parse_udecimal("0." + "5" * 31) is None
    assert parse_udecimal("1.5", max_chars=3) == 1.5
    assert parse_udecimal("1.25", max_chars=3) is None
