"""core.api_keys: key format, hashed storage, constant-time check."""

from __future__ import annotations

import pytest

from quartproxy.core.api_keys import (
    ApiKeyError,
    ApiKeyPolicy,
    digest,
    key_id,
    new_key,
    parse_entries,
)

KEY, ENTRY = new_key("app1")
OTHER, OTHER_ENTRY = new_key("app2")
POLICY = ApiKeyPolicy(parse_entries(f"{ENTRY}, {OTHER_ENTRY}"))


def test_new_key_and_entry_agree() -> None:
    assert KEY.startswith("qp_app1_")
    assert f"app1:{digest(KEY).hex()}" == ENTRY
    assert KEY not in ENTRY


def test_a_valid_key_gives_its_id() -> None:
    assert key_id(POLICY, KEY) == "app1"
    assert key_id(POLICY, OTHER) == "app2"


@pytest.mark.parametrize(
    "presented",
    [
        KEY[:-1] + ("A" if KEY[-1] != "A" else "B"),  # wrong secret
        KEY.replace("qp_app1_", "qp_app2_"),  # app1's secret under app2's id
        KEY.replace("qp_app1_", "qp_app3_"),  # unknown (revoked) id
        "qp_app1_short",
        "",
        "Bearer " + KEY,
        "qp__" + "a" * 40,
        "é" * 10,
        "qp_app1_" + "a" * 300,
    ],
)
def test_bad_keys_are_refused(presented: str) -> None:
    with pytest.raises(ApiKeyError):
        key_id(POLICY, presented)


def test_revoking_is_removing_the_entry() -> None:
    with pytest.raises(ApiKeyError):
        key_id(ApiKeyPolicy(parse_entries(OTHER_ENTRY)), KEY)


@pytest.mark.parametrize(
    "text", ["app1", "app1:zz", "APP:" + "0" * 64, f"{ENTRY},{ENTRY}", "a b", "a:" + "0" * 63]
)
def test_bad_entries_are_refused_without_echoing_them(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_entries(text)
    assert "0" * 60 not in str(caught.value)


def test_no_entries_is_no_keys() -> None:
    assert not ApiKeyPolicy(parse_entries("")).enabled
    assert POLICY.enabled


def test_new_key_refuses_bad_ids() -> None:
    with pytest.raises(ValueError):
        new_key("Bad_Id")


def test_the_cli_prints_a_key_and_the_entry_that_accepts_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from quartproxy.__main__ import main

    assert main(["api-key", "ops1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    key, entry = lines[0].rsplit(" ", 1)[1], lines[1].rsplit(" ", 1)[1]
    assert key_id(ApiKeyPolicy(parse_entries(entry)), key) == "ops1"
    assert main(["api-key", "Not_Valid"]) == 2
