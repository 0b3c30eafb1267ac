"""Applying stored reports: match each to its ledger row, then bounce, count or unsubscribe.

A report is matched only by a verified VERP token found in it, or (provider events, whose
signature was checked) by our Message-ID with the recipient agreeing; anything else is kept as
``unmatched`` for review and never applied to a guess. Each report is applied in one
transaction with its row locked, so a crash mid-way leaves it pending (applied on the next
sweep) and two appliers cannot apply it twice; one event per (ledger row, kind) makes the same
bounce reported twice count once.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from publisher.bounces import webhooks
from publisher.bounces.parse import APPLIED_KINDS, Finding, read_report
from publisher.bounces.verp import Verp
from publisher.logs import event
from publisher.models import BounceEvent, BounceReport, Delivery, Subscriber, SubscriberStatus
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.store import bounces as store
from publisher.store.subscribers import get_subscriber, record_consent, set_status, suppress

log = logging.getLogger(__name__)
WEEK = timedelta(days=7)
COMPLAINT_RATE = 0.003
HARD_RATE = 0.02
_MSGID = re.compile(r"<digest-(\d+)\.subscriber-(\d+)@")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What applying one report did: its final state and kind."""

    state: str
    kind: str


def verp_of(settings: Settings) -> Verp | None:
    """The VERP reader for BOUNCE_ADDRESS, or None when VERP is off."""
    if not settings.bounce_address.strip():
        return None
    return Verp(settings.bounce_address, settings.secret_keys())


def read_stored(report: BounceReport) -> Finding:
    """Parse a stored report by where it came from (an email, or a provider's JSON)."""
    raw = report.raw or b""
    if report.source.startswith("webhook:"):
        return webhooks.finding(report.source.removeprefix("webhook:"), raw)
    return read_report(raw)


def _match(
    session: Session, report: BounceReport, found: Finding, verp: Verp | None
) -> Delivery | str:
    """The ledger row the report is about, or why none can be named for sure."""
    refs = verp.find(f"{report.envelope_to}\n{found.text}") if verp is not None else set()
    digest_refs = {r.row_id for r in refs if r.kind == "digest"}
    if len(refs) > 1:
        return "names several messages"
    if digest_refs:
        row = store.get_delivery(session, row_id=next(iter(digest_refs)))
        return row if row is not None else "names a ledger row that does not exist"
    if refs:
        return "names an outbox message (not handled yet)"
    if not report.source.startswith("webhook:"):
        return "no VERP token in it"
    ids = {m.groups() for i in found.message_ids if (m := _MSGID.match(i))}
    if len(ids) != 1:
        return "no Message-ID of ours in it"
    digest_id, subscriber_id = (int(x) for x in ids.pop())
    row = store.find_delivery(session, digest_id=digest_id, subscriber_id=subscriber_id)
    if row is None:
        return "its Message-ID names no ledger row"
    sub = get_subscriber(session, subscriber_id=subscriber_id)
    if sub is None or (found.recipient and found.recipient != sub.email.lower()):
        return "its recipient is not the reader of that message"
    return row


def _act(session: Session, *, sub: Subscriber, kind: str, settings: Settings, now: datetime) -> str:
    assert sub.id is not None
    gone = sub.status in (SubscriberStatus.unsubscribed, SubscriberStatus.bounced)
    if kind == "complaint":
        if sub.status != SubscriberStatus.unsubscribed:
            set_status(session, subscriber_id=sub.id, status="unsubscribed", now=now)
        suppress(session, email=sub.email, reason="complaint", now=now)
        record_consent(session, subscriber_id=sub.id, action="complaint", now=now)
        return "unsubscribed"
    if kind == "soft":
        since = now - timedelta(days=settings.soft_bounce_days)
        count = store.count_events(session, subscriber_id=sub.id, kind="soft", since=since)
        if count < settings.soft_bounce_limit:
            return f"soft bounce {count} of {settings.soft_bounce_limit}"
    if not gone:
        set_status(session, subscriber_id=sub.id, status="bounced", now=now)
        record_consent(session, subscriber_id=sub.id, action=f"{kind}_bounce", now=now)
    suppress(session, email=sub.email, reason=f"{kind}_bounce", now=now)
    return "bounced"


def apply_report(
    session: Session, *, report_id: int, settings: Settings, verp: Verp | None, now: datetime
) -> Outcome | None:
    """Apply one stored report (None when it was applied already); the caller commits."""
    report = store.lock_report(session, report_id=report_id)
    if report is None or report.state != store.PENDING:
        return None
    found = read_stored(report)
    if found.kind not in APPLIED_KINDS:
        store.finish(report, session, state="ignored", kind=found.kind, detail=found.reason)
        return Outcome("ignored", found.kind)
    match = _match(session, report, found, verp)
    detail = f"{found.reason}; {found.status} {found.diagnostic}".strip()
    if isinstance(match, str):
        store.finish(report, session, state="unmatched", kind=found.kind, detail=f"{match}: "
                     f"{found.recipient} {detail}")  # fmt: skip
        return Outcome("unmatched", found.kind)
    assert match.id is not None
    known = match.subscriber_id > 0
    sub = get_subscriber(session, subscriber_id=match.subscriber_id) if known else None
    if sub is None:
        store.finish(report, session, state="unmatched", kind=found.kind,
                     detail=f"the reader was erased: {detail}")  # fmt: skip
        return Outcome("unmatched", found.kind)
    event = BounceEvent(
        report_id=report_id, delivery_id=match.id, subscriber_id=match.subscriber_id,
        kind=found.kind, status=found.status[:16], diagnostic=found.diagnostic[:500], at=now,
    )  # fmt: skip
    if store.has_event(session, delivery_id=match.id, kind=found.kind) or not store.add_event(
        session, event
    ):
        store.finish(report, session, state="duplicate", kind=found.kind, detail=detail)
        return Outcome("duplicate", found.kind)
    did = _act(session, sub=sub, kind=found.kind, settings=settings, now=now)
    store.finish(report, session, state="applied", kind=found.kind, detail=f"{did}; {detail}")
    return Outcome("applied", found.kind)


def sweep(rt: Runtime, *, limit: int = 1000) -> Counter[Outcome]:
    """Apply every pending report (each in its own transaction); what happened, by outcome.

    A report that makes the applier fail is logged and marked ``malformed``; the others go on.
    """
    verp, done, after = verp_of(rt.settings), Counter[Outcome](), 0
    while sum(done.values()) < limit:
        with rt.session() as session:
            ids = store.pending_ids(session, after_id=after, limit=100)
        if not ids:
            break
        for report_id in ids:
            after = report_id
            try:
                with rt.session() as session:
                    outcome = apply_report(
                        session, report_id=report_id, settings=rt.settings, verp=verp,
                        now=rt.now(),
                    )  # fmt: skip
            except Exception as e:
                log.exception("bounce report %s could not be applied", report_id)
                outcome = _malformed(rt, report_id, e)
            if outcome is not None:
                done[outcome] += 1
    if any(o.state == "applied" and o.kind in ("hard", "complaint") for o in done):
        check_rates(rt)
    return done


def _malformed(rt: Runtime, report_id: int, error: Exception) -> Outcome | None:
    try:
        with rt.session() as session:
            report = store.lock_report(session, report_id=report_id)
            if report is None or report.state != store.PENDING:
                return None
            store.finish(report, session, state="malformed", kind="",
                         detail=f"{type(error).__name__}: {error}")  # fmt: skip
            return Outcome("malformed", "")
    except Exception:
        log.exception("bounce report %s stays pending", report_id)
        return None


def check_rates(rt: Runtime) -> store.Rates:
    """Log ``bounces.complaint_rate`` / ``bounces.hard_bounce_rate`` when the last 7 days pass
    0.3% complaints or 2% hard bounces of the messages sent."""
    now = rt.now()
    with rt.session() as session:
        found = store.rates(session, since=now - WEEK, until=now + timedelta(seconds=1))
    if found.sent:
        for name, n, limit in (
            ("bounces.complaint_rate", found.complaints, COMPLAINT_RATE),
            ("bounces.hard_bounce_rate", found.hard, HARD_RATE),
        ):
            if n / found.sent > limit:
                event(log, name, level=logging.WARNING, rate=round(n / found.sent, 5),
                      count=n, sent=found.sent, limit=limit)  # fmt: skip
    return found


def purge_raw(rt: Runtime) -> int:
    """Drop the raw bytes of reports older than BOUNCE_RAW_DAYS (the daily purge)."""
    before = rt.now() - timedelta(days=rt.settings.bounce_raw_days)
    with rt.session() as session:
        return store.purge_raw(session, before=before)
