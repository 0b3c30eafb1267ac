"""Sending digests: assemble each (region, week), queue its recipients in the ledger, deliver.

Every step is idempotent, so re-running a send (after a crash, or twice by mistake) sends nothing
twice: assembling returns the frozen digest, enqueueing skips rows that exist, recovery settles
what a dead sender left (``unknown`` when a message may have gone out), and the engine only takes
due rows. Recipients who joined since the last run are queued and get the digest too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import col, select

from publisher.delivery import ledger, recovery
from publisher.delivery.engine import Engine, EngineConfig, RunStats
from publisher.delivery.ledger import Recipient
from publisher.delivery.mailer import envelope_sender, smtp_target
from publisher.delivery.ratelimit import RateLimiter
from publisher.delivery.smtp import SmtpPool, WireReady, is_wire_ready
from publisher.delivery.store import LedgerStore
from publisher.digest.windows import previous_week
from publisher.email.outgoing import DigestMail
from publisher.errors import DeliveryError
from publisher.models import Delivery, DeliveryState, Digest
from publisher.pipeline.digests import (
    SKIPPED,
    assemble_digest,
    digest_mail,
    region_zone,
    rendition,
    stored_rendition,
)
from publisher.runtime import Runtime
from publisher.store.subscribers import counts as subscriber_counts
from publisher.store.subscribers import recipient_ids, recipient_locales
from publisher.tokens import Tokens

PAGE = 5_000
ANALYZE_AFTER = 1_000  # rows queued at once that make the planner's picture of the ledger stale
STATES = ("pending", "sending", "sent", "deferred", "failed", "unknown", "skipped")


class Progress(Protocol):
    """Where a send reports how far it got (a rich progress bar, or nothing)."""

    def start(self, total: int) -> None: ...

    def update(self, stats: RunStats) -> None: ...


@dataclass(slots=True)
class DigestReport:
    """One digest's place in a send: its ledger rows by state (after the run)."""

    region: str
    week: str
    status: str
    digest_id: int | None = None
    subject: str = ""
    queued: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def recipients(self) -> int:
        return sum(self.counts.values())


@dataclass(slots=True)
class SendReport:
    """What ``send_digests`` did: per digest, this run's outcomes, and what recovery settled."""

    digests: list[DigestReport]
    run: RunStats = field(default_factory=RunStats)
    dry_run: bool = False
    recovered: int = 0  # rows a dead sender left in flight, now unknown
    resent_unknown: int = 0


class DigestMessenger:
    """The engine's Messenger: each digest's DigestMail, loaded once on first use (thread-safe).

    A digest's messages differ only in checked header values and base64 text, so when its first
    message is already in wire form (CRLF only, no line starting with a dot) all of them are,
    and they are marked ``WireReady`` so the transport need not scan each one again.
    """

    def __init__(self, load: Callable[[int, str], DigestMail]) -> None:
        self._load = load
        self._mails: dict[tuple[int, str], DigestMail] = {}
        self._wire_ready: dict[tuple[int, str], bool] = {}
        self._lock = threading.Lock()

    def mail(self, digest_id: int, locale: str = "en") -> DigestMail:
        key = (digest_id, locale)
        found = self._mails.get(key)
        if found is None:
            with self._lock:
                found = self._mails.get(key) or self._load(digest_id, locale)
                self._mails[key] = found
        return found

    def build(self, recipient: Recipient) -> bytes:
        row = recipient.row
        message = self.mail(row.digest_id, row.locale).build(
            subscriber_id=row.subscriber_id, key=recipient.key, email=recipient.email,
            msg_id=row.message_id,
        )  # fmt: skip
        key = (row.digest_id, row.locale)
        ready = self._wire_ready.get(key)
        if ready is None:
            ready = self._wire_ready[key] = is_wire_ready(message)
        return WireReady(message) if ready else message


def digest_messenger(rt: Runtime) -> DigestMessenger:
    """A messenger reading digests from the store when first needed (also for scale-out workers)."""
    tokens = Tokens(rt.settings.secret_keys())

    def load(digest_id: int, locale: str) -> DigestMail:
        with rt.session() as session:
            digest = session.get(Digest, digest_id)
            if digest is None:
                raise LookupError(f"digest {digest_id} is not in the store")
            rendered = stored_rendition(session, digest, locale)
        return digest_mail(
            digest, settings=rt.settings, tree=rt.tree, tokens=tokens, rendered=rendered,
            language=rendered.language or digest.locale,
        )  # fmt: skip

    return DigestMessenger(load)


def scope_regions(rt: Runtime, regions: Sequence[str] | None) -> list[str]:
    """The given region slugs normalised, or (None) every region with an active subscriber."""
    if regions is not None:
        return sorted({rt.tree.normalize(r) for r in regions})
    with rt.session() as session:
        table = subscriber_counts(session)
    return sorted(r for r, by_status in table.items() if by_status.get("active"))


def queue_recipients(rt: Runtime, digest: Digest, mail: DigestMail | None) -> int:
    """Add a ledger row for every active subscriber of the digest's region, in keyset pages.

    Each row gets its reader's language (es-CL counts as es); the digest is rendered in each
    language the first time a reader of it turns up, and stored, so it is rendered once.
    """
    assert digest.id is not None
    settings = rt.settings
    added, after = 0, 0
    rendered: set[str] = {digest.locale}
    while True:
        with rt.session() as session:
            page = recipient_locales(session, region=digest.region, after_id=after, limit=PAGE)
            if not page:
                if added >= ANALYZE_AFTER:
                    ledger.refresh_statistics(session)
                return added
            groups: dict[str, list[int]] = {}
            for subscriber_id, tag in page:
                groups.setdefault(settings.pick_locale(tag), []).append(subscriber_id)
            for language, ids in sorted(groups.items()):
                if language not in rendered:
                    rendition(session, digest, language, settings=settings, tree=rt.tree)
                    rendered.add(language)
                added += ledger.enqueue(
                    session, digest_id=digest.id, subscriber_ids=ids,
                    message_id=mail.message_id if mail else None, locale=language,
                )  # fmt: skip
        after = page[-1][0]


def count_recipients(rt: Runtime, region: str) -> int:
    """How many active subscribers a digest of ``region`` goes to (dry runs)."""
    total, after = 0, 0
    while True:
        with rt.session() as session:
            page = recipient_ids(session, region=region, after_id=after, limit=PAGE)
        if not page:
            return total
        total, after = total + len(page), page[-1]


def _fill_counts(rt: Runtime, reports: Sequence[DigestReport]) -> None:
    ids = [r.digest_id for r in reports if r.digest_id is not None]
    with rt.session() as session:
        table = recovery.counts(session, digest_ids=ids)
    for r in reports:
        if r.digest_id is not None:
            r.counts = table.get(r.digest_id, {})


def send_digests(
    rt: Runtime,
    *,
    regions: Sequence[str] | None,
    week: str | None = None,
    dry_run: bool = False,
    resend_unknown: bool = False,
    progress: Progress | None = None,
    config: EngineConfig | None = None,
    stop: threading.Event | None = None,
) -> SendReport:
    """Assemble, queue and deliver the digests of ``regions`` (None: all) for ``week``.

    ``week`` defaults to the week just ended in each region's time zone. A dry run assembles and
    counts recipients but queues and sends nothing. When sending had to pause (the SMTP server
    kept failing), ``report.run.paused`` says why and the rows wait as deferred. Setting ``stop``
    (a signal handler) ends the run early: messages in flight finish, the rest are put back.
    """
    settings, now = rt.settings, rt.now()
    tokens = Tokens(settings.secret_keys())
    reports: list[DigestReport] = []
    mails: dict[int, DigestMail] = {}
    for region in scope_regions(rt, regions):
        with rt.session() as session:
            chosen = week or previous_week(
                now, region_zone(session, region=region, settings=settings)
            )
            digest = assemble_digest(
                session, region=region, week=chosen, settings=settings, tree=rt.tree, now=now
            )
        report = DigestReport(region, chosen, digest.status, digest.id, digest.subject)
        reports.append(report)
        if digest.status == SKIPPED or digest.id is None:
            continue
        if dry_run:
            report.queued = count_recipients(rt, region)
            continue
        mails[digest.id] = digest_mail(digest, settings=settings, tree=rt.tree, tokens=tokens)
        report.queued = queue_recipients(rt, digest, mails[digest.id])
    result = SendReport(reports, dry_run=dry_run)
    if not dry_run and mails:
        result.recovered, result.resent_unknown = settle(rt, list(mails), resend_unknown)
        messenger = digest_messenger(rt)
        result.run = deliver(
            rt, messenger, digest_ids=list(mails), progress=progress, config=config, stop=stop
        )
    _fill_counts(rt, reports)
    return result


def settle(rt: Runtime, digest_ids: Collection[int], resend_unknown: bool) -> tuple[int, int]:
    """Recover what dead senders left, then (on the operator's word) requeue unknown rows."""
    now = rt.now()
    with rt.session() as session:
        dead = recovery.dead_local_workers(session, now=now)
        recovered = recovery.recover(session, now=now, dead_workers=dead)
        resent = recovery.resend_unknown(session, digest_ids=digest_ids) if resend_unknown else 0
    return recovered, resent


def due_rows(rt: Runtime, digest_ids: Collection[int] | None, now: datetime) -> int:
    """Rows a run would take now: pending, or deferred and due."""
    t = Delivery.__table__  # type: ignore[attr-defined]
    stmt = sa.select(sa.func.count()).where(
        sa.or_(
            t.c.state == DeliveryState.pending,
            sa.and_(t.c.state == DeliveryState.deferred, t.c.next_attempt <= now),
        )
    )
    if digest_ids is not None:
        stmt = stmt.where(t.c.digest_id.in_(list(digest_ids)))
    with rt.session() as session:
        return int(session.execute(stmt).scalar_one())


def deliver(
    rt: Runtime,
    messenger: DigestMessenger,
    *,
    digest_ids: Collection[int] | None,
    progress: Progress | None = None,
    config: EngineConfig | None = None,
    stop: threading.Event | None = None,
) -> RunStats:
    """Run the engine over the due rows of ``digest_ids`` (None: every digest) on SMTP_URL."""
    settings = rt.settings
    config = config or EngineConfig(concurrency=settings.smtp_concurrency, rate=settings.smtp_rate)
    if progress is not None:
        progress.start(due_rows(rt, digest_ids, rt.now()))
    with smtp_target(settings) as target, SmtpPool(target, config.concurrency) as pool:
        engine = Engine(
            store=LedgerStore(rt.engine), messenger=messenger, transport=pool,
            envelope_from=envelope_sender(settings.from_), config=config, clock=rt.now,
            limiter=RateLimiter(config.rate), progress=progress.update if progress else None,
        )  # fmt: skip
        done = threading.Event()
        if stop is not None:
            threading.Thread(target=_relay, args=(stop, done, engine), daemon=True).start()
        try:
            return engine.run(digest_ids=digest_ids)
        except DeliveryError:
            return engine.stats  # stats.paused says why; the caller reports and exits non-zero
        finally:
            done.set()


def _relay(stop: threading.Event, done: threading.Event, engine: Engine) -> None:
    """Pass a stop request (set from a signal handler) on to a running engine."""
    while not done.is_set():
        if stop.wait(0.2):
            engine.stop()
            return


def digest_status(rt: Runtime, *, week: str | None = None) -> list[DigestReport]:
    """Every stored digest (of ``week``) with its ledger counts, newest week first."""
    stmt = select(Digest).order_by(col(Digest.week).desc(), col(Digest.region))
    if week is not None:
        stmt = stmt.where(col(Digest.week) == week)
    with rt.session() as session:
        digests = list(session.exec(stmt))
    reports = [DigestReport(d.region, d.week, d.status, d.id, d.subject) for d in digests]
    _fill_counts(rt, reports)
    return reports
