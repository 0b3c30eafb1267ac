"""Reading reports: the fixture corpus (Postfix, Exim, Exchange, Gmail, Yahoo, ARF, out-of-office,
garbage), hostile bytes, and VERP tokens that cannot be forged."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.bounces.parse import classify, read_report
from publisher.bounces.verp import Verp
from publisher.errors import ConfigError
from tests.bounce_support import FIXTURES, report

VERP = "bounces+d7-abcdefghij@example.org"
RCPT = "ana@example.net"
MSGID = "<digest-3.subscriber-7@example.org>"
B32 = "abcdefghijklmnopqrstuvwxyz234567"

CORPUS = [
    # file, kind, status
    ("postfix_hard.eml", "hard", "5.1.1"),
    ("postfix_soft_expired.eml", "soft", "4.4.1"),
    ("postfix_delayed.eml", "delayed", "4.4.1"),
    ("exim_plain.eml", "hard", "5.0.0"),
    ("exchange_hard.eml", "hard", "5.1.10"),
    ("gmail_hard.eml", "hard", "5.1.1"),
    ("gmail_mailbox_full.eml", "soft", "5.2.2"),
    ("yahoo_plain.eml", "hard", "5.0.0"),
    ("arf_yahoo_complaint.eml", "complaint", ""),
    ("ooo_outlook.eml", "auto_reply", ""),
    ("ooo_gmail_vacation.eml", "auto_reply", ""),
    ("ooo_spanish.eml", "auto_reply", ""),
    ("human_reply.eml", "none", ""),
    ("truncated_report.eml", "none", ""),
    ("garbage.eml", "none", ""),
]


def test_the_corpus_is_complete() -> None:
    assert {p.name for p in FIXTURES.glob("*.eml")} == {name for name, _, _ in CORPUS}


@pytest.mark.parametrize(("name", "kind", "status"), CORPUS)
def test_corpus(name: str, kind: str, status: str) -> None:
    found = read_report(report(name, verp=VERP, rcpt=RCPT, msgid=MSGID))
    assert (found.kind, found.status) == (kind, status), found.reason
    if kind in ("hard", "soft", "complaint", "delayed"):
        assert found.recipient == RCPT
        assert VERP in found.text
    if kind in ("hard", "soft", "complaint"):
        assert found.message_ids == (MSGID,)


@pytest.mark.parametrize(
    ("status", "action", "kind"),
    [
        ("5.1.1", "failed", "hard"),
        ("5.1.10", "failed", "hard"),
        ("5.4.4", "failed", "hard"),
        ("5.2.2", "failed", "soft"),
        ("5.7.1", "failed", "soft"),
        ("4.2.2", "failed", "soft"),
        ("4.4.7", "failed", "soft"),
        ("4.4.1", "delayed", "delayed"),
        ("2.0.0", "delivered", "none"),
        ("", "failed", "none"),
    ],
)
def test_status_codes(status: str, action: str, kind: str) -> None:
    assert classify(status, action) == kind


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_any_bytes_give_an_answer_never_an_exception(raw: bytes) -> None:
    assert read_report(raw).kind in ("hard", "soft", "complaint", "auto_reply", "delayed", "none")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=2000), st.sampled_from([n for n, _, _ in CORPUS]))
def test_corpus_with_junk_spliced_in_still_answers(junk: str, name: str) -> None:
    raw = report(name, verp=VERP, rcpt=RCPT, msgid=MSGID)
    cut = len(raw) // 2
    spliced = raw[:cut] + junk.encode("utf-8", "surrogatepass") + raw[cut:]
    assert read_report(spliced).kind is not None


def test_a_huge_report_is_read_in_bounded_text() -> None:
    raw = report("postfix_hard.eml", verp=VERP, rcpt=RCPT) + b"x" * 5_000_000
    found = read_report(raw)
    assert found.kind == "hard" and len(found.text) <= 2_000_000


# -- VERP -------------------------------------------------------------------------------------
@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=10**12 - 1), st.sampled_from(["d", "o"]))
def test_verp_round_trip_in_any_letter_case(row_id: int, kind: str) -> None:
    verp = Verp("Bounces@Example.org", ["new", "old"])
    address = verp.address(row_id, kind)
    assert len(address.split("@")[0]) <= 64  # RFC 5321 local-part limit
    (ref,) = verp.find(f"To: <{address.upper()}>")
    assert ref.row_id == row_id and ref.kind == {"d": "digest", "o": "outbox"}[kind]


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=10**9), st.text(alphabet=B32, min_size=10, max_size=10))
def test_verp_forged_macs_are_refused(row_id: int, mac: str) -> None:
    verp = Verp("bounces@example.org", ["k"])
    real = verp.token(row_id)
    forged = f"d{row_id}-{mac}"
    assert (verp.read(forged) is not None) == (forged == real)


def test_verp_rotation_and_other_keys() -> None:
    old = Verp("bounces@example.org", ["old"])
    rotated = Verp("bounces@example.org", ["new", "old"])
    stranger = Verp("bounces@example.org", ["someone-else"])
    token = old.token(42)
    assert rotated.read(token) is not None
    assert stranger.read(token) is None
    assert rotated.token(42) != token  # the newest key signs


@pytest.mark.parametrize(
    "token",
    [
        "",
        "d",
        "d42",
        "d42-",
        "x42-aaaaaaaaaa",
        "d-1-aaaaaaaaaa",
        "d42-aaaaaaaaa1",
        "d42-aaaaaaaaaaa",
        "d42-aaaaaaaaa\u202e",
        "d42\r\n-aaaaaaaaaa",
        "d" + "9" * 13 + "-aaaaaaaaaa",
    ],
)
def test_verp_malformed_tokens(token: str) -> None:
    assert Verp("bounces@example.org", ["k"]).read(token) is None


@pytest.mark.parametrize(
    "address",
    [
        "",
        "bounces",
        "@example.org",
        "a+b@example.org",
        "a@b\r\nBcc: x@y",
        "<a@b>",
        "b@ex\u00e4mple.org",
    ],
)
def test_bad_bounce_address_is_one_clear_error(address: str) -> None:
    with pytest.raises(ConfigError, match="BOUNCE_ADDRESS"):
        Verp(address, ["k"])
