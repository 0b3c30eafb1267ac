"""Bounces end to end: a digest goes out through a real SMTP server with a VERP sender per
message, and reports come back through the embedded receiver and an IMAP mailbox."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from publisher.bounces.inbound import keep
from publisher.bounces.policy import sweep, verp_of
from publisher.models import BounceEvent, BounceReport, Consent
from publisher.runtime import Runtime
from publisher.store import deliveries
from tests.bounce_support import (
    BOUNCE_ADDRESS,
    receiver,
    report,
    send_digest,
    smtp_report,
    status,
    suppression_reason,
    with_verp,
)
from tests.delivery_data import add_subscribers, plain_digest
from tests.service_support import wait_until


def _reports(rt: Runtime) -> list[BounceReport]:
    with rt.session() as session:
        return list(session.exec(select(BounceReport).order_by(BounceReport.id)))  # type: ignore[arg-type]


def _events(rt: Runtime) -> list[BounceEvent]:
    with rt.session() as session:
        return list(session.exec(select(BounceEvent).order_by(BounceEvent.id)))  # type: ignore[arg-type]


def test_each_message_carries_its_own_signed_envelope_sender(runtime: Runtime) -> None:
    with_verp(runtime)
    sent = send_digest(runtime, 5)
    verp = verp_of(runtime.settings)
    assert verp is not None
    assert len(set(sent.senders.values())) == 5
    for sub_id, email in sent.readers:
        sender = sent.senders[email]
        assert sender.startswith("bounces+d") and sender.endswith("@example.org")
        assert verp.find(sender) == {verp.read(sender.split("+")[1].split("@")[0])}
        (ref,) = verp.find(sender)
        assert ref.row_id == sent.row_ids[sub_id]


def test_without_bounce_address_the_sender_is_the_from_address(runtime: Runtime) -> None:
    sent = send_digest(runtime, 2)
    assert set(sent.senders.values()) == {"news@example.org"}


def test_reports_through_the_smtp_receiver(runtime: Runtime) -> None:
    with_verp(runtime)
    sent = send_digest(runtime, 5)
    (hard_id, hard), (plaint_id, plaint), (away_id, away), (soft_id, soft), (exim_id, exim) = (
        sent.readers
    )
    dsn = report("postfix_hard.eml", verp=sent.senders[hard], rcpt=hard)
    with receiver(runtime) as (port, outcomes):
        for raw, rcpt in (
            (dsn, sent.senders[hard]),
            (report("arf_yahoo_complaint.eml", verp=sent.senders[plaint], rcpt=plaint), "x"),
            (report("ooo_outlook.eml", verp=sent.senders[away], rcpt=away), sent.senders[away]),
            (report("gmail_mailbox_full.eml", verp=sent.senders[soft], rcpt=soft), BOUNCE_ADDRESS),
            (report("exim_plain.eml", verp=sent.senders[exim], rcpt=exim), BOUNCE_ADDRESS),
            ((FIXTURES_GARBAGE := report("garbage.eml", verp="", rcpt="")), BOUNCE_ADDRESS),
        ):
            code, _ = smtp_report(port, raw, rcpt)
            assert code == 250
        got = outcomes.wait(6)
        # The same DSN again: stored once, applied once.
        assert smtp_report(port, dsn, sent.senders[hard])[0] == 250
        assert smtp_report(port, FIXTURES_GARBAGE, BOUNCE_ADDRESS)[0] == 250
    assert Counter((o.state, o.kind) for o in got) == {
        ("applied", "hard"): 2, ("applied", "complaint"): 1, ("applied", "soft"): 1,
        ("ignored", "auto_reply"): 1, ("ignored", "none"): 1,
    }  # fmt: skip
    assert status(runtime, hard_id) == "bounced"
    assert suppression_reason(runtime, hard) == "hard_bounce"
    assert status(runtime, exim_id) == "bounced"
    assert status(runtime, plaint_id) == "unsubscribed"
    assert suppression_reason(runtime, plaint) == "complaint"
    assert status(runtime, away_id) == "active" and suppression_reason(runtime, away) is None
    assert status(runtime, soft_id) == "active" and suppression_reason(runtime, soft) is None
    assert len(_reports(runtime)) == 6
    events = _events(runtime)
    assert sorted((e.subscriber_id, e.kind) for e in events) == sorted(
        [(hard_id, "hard"), (plaint_id, "complaint"), (soft_id, "soft"), (exim_id, "hard")]
    )
    by_sub = {e.subscriber_id: e for e in events}
    assert by_sub[hard_id].delivery_id == sent.row_ids[hard_id]
    assert by_sub[hard_id].status == "5.1.1"
    assert all(r.raw for r in _reports(runtime))
    with runtime.session() as session:
        actions = {c.action for c in session.exec(select(Consent))}
    assert {"hard_bounce", "complaint"} <= actions


def test_a_second_report_of_the_same_bounce_counts_once(runtime: Runtime) -> None:
    with_verp(runtime)
    sent = send_digest(runtime, 1)
    (_sub_id, email) = sent.readers[0]
    first = report("postfix_soft_expired.eml", verp=sent.senders[email], rcpt=email)
    again = first.replace(b"8B2C3D4E5F@relay", b"FFFFFFFFFF@relay")  # another Message-ID
    keep(runtime, raw=first, source="smtp")
    keep(runtime, raw=again, source="imap")
    done = sweep(runtime)
    assert Counter((o.state, o.kind) for o in done.elements()) == {
        ("applied", "soft"): 1, ("duplicate", "soft"): 1,
    }  # fmt: skip
    assert len(_events(runtime)) == 1


def test_soft_bounces_suppress_after_n_within_m_days(runtime: Runtime) -> None:
    with_verp(runtime, soft_bounce_limit=2, soft_bounce_days=30)
    verp = verp_of(runtime.settings)
    assert verp is not None
    (sub_id, email), (other_id, other) = add_subscribers(runtime, 2)
    weeks = [plain_digest(runtime, week=f"2026-W{w}") for w in (40, 44, 48)]
    with runtime.session() as session:
        for d in weeks:
            deliveries.enqueue(session, digest_id=d, subscriber_ids=[sub_id, other_id])
    row = {(r.digest_id, r.subscriber_id): r.id for r in _ledger(runtime)}

    def soft_bounce(digest_id: int, subscriber_id: int, address: str, tag: str) -> None:
        sender = verp.address(row[(digest_id, subscriber_id)] or 0)
        raw = report("gmail_mailbox_full.eml", verp=sender, rcpt=address)
        keep(runtime, raw=raw.replace(b"9abd.GMR", tag.encode()), source="smtp")
        sweep(runtime)

    start = runtime.now()
    soft_bounce(weeks[0], sub_id, email, "a")
    soft_bounce(weeks[0], other_id, other, "b")
    assert status(runtime, sub_id) == "active"
    runtime.fixed_now = start + timedelta(days=29)  # type: ignore[attr-defined]
    soft_bounce(weeks[1], sub_id, email, "c")
    assert status(runtime, sub_id) == "bounced"
    assert suppression_reason(runtime, email) == "soft_bounce"
    runtime.fixed_now = start + timedelta(days=31)  # type: ignore[attr-defined]
    soft_bounce(weeks[2], other_id, other, "d")  # the first one is too old to count
    assert status(runtime, other_id) == "active" and suppression_reason(runtime, other) is None


def _ledger(rt: Runtime) -> list:  # type: ignore[type-arg]
    from publisher.models import Delivery

    with rt.session() as session:
        return list(session.exec(select(Delivery)))


def test_unmatched_reports_are_kept_and_never_applied_to_a_guess(runtime: Runtime) -> None:
    with_verp(runtime)
    sent = send_digest(runtime, 2)
    (sub_id, email), (other_id, _other) = sent.readers
    real = sent.senders[email]
    forged = real[: real.index("-") + 1] + "aaaaaaaaaa@example.org"
    other_row = real.replace(f"+d{sent.row_ids[sub_id]}-", f"+d{sent.row_ids[other_id]}-")
    for i, (verp, msgid) in enumerate(
        [(forged, ""), (other_row, ""), ("bounces@example.org", sent.message_ids[email])]
    ):
        raw = report("postfix_hard.eml", verp=verp, rcpt=email, msgid=msgid or "<x@y>")
        keep(runtime, raw=raw.replace(b"7A1B2C3D4E@", f"{i}@".encode()), source="smtp")
    done = sweep(runtime)
    assert Counter(o.state for o in done.elements()) == {"unmatched": 3}
    assert status(runtime, sub_id) == "active" and status(runtime, other_id) == "active"
    reports = _reports(runtime)
    assert all(r.state == "unmatched" and r.raw for r in reports)
    assert all("no VERP token" in r.detail for r in reports)
    assert _events(runtime) == []


def test_raw_reports_are_purged_after_90_days(runtime: Runtime) -> None:
    from publisher.bounces.policy import purge_raw

    keep(runtime, raw=b"Subject: old\r\n\r\nold", source="smtp")
    runtime.fixed_now = runtime.now() + timedelta(days=91)  # type: ignore[attr-defined]
    keep(runtime, raw=b"Subject: new\r\n\r\nnew", source="smtp")
    assert purge_raw(runtime) == 1
    with runtime.session() as session:
        raws = list(session.execute(sa.select(BounceReport.raw).order_by(BounceReport.id)))  # type: ignore[call-overload]
    assert [r[0] for r in raws] == [None, b"Subject: new\r\n\r\nnew"]


def test_the_receiver_survives_oversized_and_unstorable_reports(runtime: Runtime) -> None:
    with_verp(runtime)
    sent = send_digest(runtime, 1)
    sub_id, email = sent.readers[0]
    dsn = report("postfix_hard.eml", verp=sent.senders[email], rcpt=email)
    with receiver(runtime) as (port, outcomes):
        huge = b"Subject: big\r\n\r\n" + (b"x" * 76 + b"\r\n") * (11 * 1024 * 1024 // 78)
        assert smtp_report(port, huge, BOUNCE_ADDRESS)[0] == 552
        with runtime.engine.begin() as conn:  # the store fails: the relay must keep the report
            conn.execute(sa.text("ALTER TABLE bounce_reports RENAME TO bounce_reports_away"))
        assert smtp_report(port, dsn, BOUNCE_ADDRESS)[0] == 451
        with runtime.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE bounce_reports_away RENAME TO bounce_reports"))
        assert smtp_report(port, dsn, BOUNCE_ADDRESS)[0] == 250  # the relay's retry
        assert [o.state for o in outcomes.wait(1)] == ["applied"]
    assert status(runtime, sub_id) == "bounced"
    assert len(_reports(runtime)) == 1


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The policy's own records: other loggers (an SMTP server's INFO lines) may be captured too."""
    return [r for r in caplog.records if r.name == "publisher.bounces.policy"]


def test_a_week_over_the_complaint_or_bounce_rate_is_logged(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    with_verp(runtime)
    sent = send_digest(runtime, 4)
    (_, plaint), (_, hard) = sent.readers[:2]
    keep(runtime, raw=report("arf_yahoo_complaint.eml", verp=sent.senders[plaint], rcpt=plaint),
         source="smtp")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="publisher.bounces.policy"):
        sweep(runtime)
        assert [r.getMessage() for r in ours(caplog)] == ["bounces.complaint_rate"]
        caplog.clear()
        keep(runtime, raw=report("gmail_hard.eml", verp=sent.senders[hard], rcpt=hard),
             source="imap")  # fmt: skip
        sweep(runtime)
    names = sorted(r.getMessage() for r in ours(caplog))
    assert names == ["bounces.complaint_rate", "bounces.hard_bounce_rate"]
    fields = ours(caplog)[-1].__dict__
    assert any(v.get("sent") == 4 for k, v in fields.items() if isinstance(v, dict))


def test_serve_runs_the_receiver_when_inbound_port_is_set(runtime: Runtime) -> None:
    from fastapi.testclient import TestClient

    from publisher.cli.bounces import serve_background
    from publisher.delivery.embedded import free_port
    from publisher.web.app import create_app

    port = free_port()
    with_verp(runtime, inbound_port=port)
    sent = send_digest(runtime, 1)
    sub_id, email = sent.readers[0]
    app = create_app(runtime.settings, runtime=runtime, services=[serve_background(runtime)])
    with TestClient(app):
        wait_until(lambda: _accepts(port), 20, "the receiver to listen")
        dsn = report("exchange_hard.eml", verp=sent.senders[email], rcpt=email)
        assert smtp_report(port, dsn, BOUNCE_ADDRESS)[0] == 250
        wait_until(lambda: status(runtime, sub_id) == "bounced", 20, "the bounce to be applied")
    assert not _accepts(port)  # stopped with the app


def _accepts(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True
