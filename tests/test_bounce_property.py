"""The invariant of applying reports, on any sequence of them: each (ledger row, kind) counts
once however often and by whichever entrance it arrives, and a second sweep changes nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.bounces.inbound import keep
from publisher.bounces.policy import sweep
from publisher.models import BounceEvent, BounceReport, Subscriber, Suppression
from publisher.runtime import Runtime
from tests.bounce_support import Sent, report, send_digest, status, with_verp

FIXTURE = {
    "hard": "postfix_hard.eml",
    "soft": "postfix_soft_expired.eml",
    "complaint": "arf_yahoo_complaint.eml",
    "auto": "ooo_outlook.eml",
}
HEALTH = HealthCheck.function_scoped_fixture
ITEMS = st.tuples(
    st.integers(0, 2), st.sampled_from(sorted(FIXTURE)), st.integers(0, 2),
    st.sampled_from(["smtp", "imap"]),
)  # fmt: skip


@pytest.fixture
def world(runtime: Runtime) -> tuple[Runtime, Sent]:
    with_verp(runtime)
    return runtime, send_digest(runtime, 3)


def _reset(rt: Runtime) -> None:
    with rt.engine.begin() as conn:
        for table in (BounceEvent, BounceReport, Suppression):
            conn.execute(sa.delete(table))
        conn.execute(sa.update(Subscriber).values(status="active", left=None))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(ITEMS, max_size=8))
def test_each_bounce_counts_once_whatever_the_order(
    world: tuple[Runtime, Sent], items: list[tuple[int, str, int, str]]
) -> None:
    rt, sent = world
    _reset(rt)
    for reader, kind, variant, source in items:
        email = sent.readers[reader][1]
        raw = report(FIXTURE[kind], verp=sent.senders[email], rcpt=email)
        # Each (reader, variant) has its own Message-ID; a variant is the same bounce
        # reported again by another relay or mailbox.
        tag = f"{reader}-{variant}"
        raw = raw.replace(b"Message-I", f"X-Variant: {tag}\r\nMessage-I".encode(), 1)
        raw = raw.replace(b"@relay.example.org>", f".{tag}@relay.example.org>".encode(), 1)
        raw = raw.replace(b"@arf.mail.yahoo.com>", f".{tag}@arf.mail.yahoo.com>".encode())
        raw = raw.replace(b".outlook.com>", f".{tag}.outlook.com>".encode())
        keep(rt, raw=raw, source=source)
    sweep(rt)
    assert not sweep(rt)  # nothing left to apply
    applied = {(r, k) for r, k, _, _ in items if k != "auto"}
    with rt.session() as session:
        events = sorted(session.execute(sa.select(BounceEvent.subscriber_id, BounceEvent.kind)))  # type: ignore[call-overload]
        reports = session.execute(sa.select(sa.func.count()).select_from(BounceReport)).scalar()
    ids = [s for s, _ in sent.readers]
    assert events == sorted((ids[r], k) for r, k in applied)
    assert reports == len({(r, k, v) for r, k, v, _ in items})
    for i, sub_id in enumerate(ids):
        kinds = {k for r, k in applied if r == i}
        expected = (
            "unsubscribed" if "complaint" in kinds else "bounced" if "hard" in kinds else "active"
        )
        assert status(rt, sub_id) == expected
