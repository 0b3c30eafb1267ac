"""Sending editions: fire them (publisher.pipeline.editions), then deliver the ledger's rows.

Every step is idempotent, so re-running a send (after a crash, or twice by mistake) sends nothing
twice: a reader's edition of a week is written once, enqueueing skips rows that exist, recovery
settles what a dead sender left (``unknown`` when a message may have gone out), and the engine
only takes due rows. Readers who joined since the last run get their first edition.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from publisher.batch_gc import fewer_collections
from publisher.bounces.verp import digest_envelope
from publisher.delivery import recovery
from publisher.delivery.engine import Engine, EngineConfig, RunStats, Store, Transport
from publisher.delivery.journal import journal_dir, open_journal
from publisher.delivery.ledger import Recipient
from publisher.delivery.mailer import smtp_target
from publisher.delivery.ratelimit import RateLimiter
from publisher.delivery.smtp import SmtpPool, WireReady, is_wire_ready
from publisher.delivery.smtp_url import SmtpTarget
from publisher.delivery.store import LedgerStore
from publisher.email.fragments import needed, pieces
from publisher.email.message import SharedPieces
from publisher.email.outgoing import DigestMail
from publisher.email.render import Fragment, RenderedEmail
from publisher.errors import DeliveryError
from publisher.models import Digest
from publisher.pipeline.digests import fragments_of, rendered_of
from publisher.pipeline.editions import FireReport, fire_editions, mail_of
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.store import deliveries
from publisher.store import editions as edition_store
from publisher.store.delivery_counts import counts as delivery_counts
from publisher.store.edition_digests import digest_summaries, digests_to_send
from publisher.store.sql import IdRuns

FRAGMENTS_KEPT = 50_000  # fragments a sender keeps (sections, a few KB each)
READ_AHEAD = 256  # digests loaded with a chunk's own, for the chunks after it
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
    fires: list[FireReport] = field(default_factory=list)


class DigestMessenger:
    """The engine's Messenger: each digest's DigestMail, loaded on first use (thread-safe).

    Only the last ``size`` (digest, language) pairs are kept: the engine claims rows in id order
    and a fire queues each group's rows together, so a digest is done with once its rows are,
    and ten thousand region sets must not keep ten thousand bodies in memory. ``prepare`` (the
    engine calls it with each claimed chunk, before its messages are queued) loads the chunk's
    new digests together with ``load_many``, so ten-reader editions cost one query per chunk,
    not one per edition while the sending threads wait. Loading happens outside the lock.
    A digest's messages differ only in checked header values and base64 text, so when its first
    message is already in wire form (CRLF only, no line starting with a dot) all of them are,
    and they are marked ``WireReady`` so the transport need not scan each one again (unsigned
    templates are in wire form by construction; a DKIM-signed one is scanned once).
    """

    def __init__(
        self,
        load: Callable[[int, str], DigestMail],
        *,
        size: int = 1024,
        load_many: Callable[[Collection[tuple[int, str]]], dict[tuple[int, str], DigestMail]]
        | None = None,
    ) -> None:
        self._load = load
        self._load_many = load_many
        self._size = max(1, size)
        self._mails: OrderedDict[tuple[int, str], _Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0

    def _keep(self, key: tuple[int, str], mail: DigestMail) -> _Loaded:
        with self._lock:
            found = self._mails.get(key)
            if found is None:
                found = self._mails[key] = _Loaded(mail)
                self.loads += 1
                while len(self._mails) > self._size:
                    self._mails.popitem(last=False)
            return found

    def _entry(self, digest_id: int, locale: str) -> _Loaded:
        key = (digest_id, locale)
        with self._lock:
            found = self._mails.get(key)
            if found is not None:
                self._mails.move_to_end(key)
                return found
        return self._keep(key, self._load(digest_id, locale))

    def prepare(self, recipients: Sequence[Recipient]) -> None:
        """Load the digests of a claimed chunk that are not cached yet, together."""
        if self._load_many is None:
            return
        with self._lock:
            missing = {
                k for r in recipients if (k := (r.row.digest_id, r.row.locale)) not in self._mails
            }
        if missing:
            for key, mail in self._load_many(missing).items():
                self._keep(key, mail)

    def mail(self, digest_id: int, locale: str = "en") -> DigestMail:
        return self._entry(digest_id, locale).mail

    def build(self, recipient: Recipient) -> bytes:
        row = recipient.row
        entry = self._entry(row.digest_id, row.locale)
        message = entry.mail.build(
            subscriber_id=row.subscriber_id, key=recipient.key, email=recipient.email,
            msg_id=row.message_id,
        )  # fmt: skip
        if entry.wire_ready is None:
            entry.wire_ready = entry.mail.wire_ready or is_wire_ready(message)
        return WireReady(message) if entry.wire_ready else message


@dataclass(slots=True)
class _Loaded:
    """A cached DigestMail and whether its messages are already in wire form (None: unknown)."""

    mail: DigestMail
    wire_ready: bool | None = None


def digest_messenger(
    rt: Runtime, *, frozen: Mapping[int, Mapping[str, Any]] | None = None
) -> DigestMessenger:
    """A messenger reading digests from the store when first needed (also for scale-out workers).

    The fragments stored bodies name are read once per process (thousands of digests
    share them) and kept, up to FRAGMENTS_KEPT. ``frozen``: digests a fire in this process
    has just written (columns by name), used in their own language instead of read back:
    ten thousand region sets cost ten thousand rows read and parsed again otherwise.
    """
    fresh = dict(frozen or {})
    order = sorted(fresh)
    known: dict[str, Fragment] = {}
    lock = threading.Lock()
    shared = SharedPieces()

    def made(digest: Digest, rendered: RenderedEmail, have: dict[str, Fragment]) -> DigestMail:
        key = digest.placeholder_key
        bodies = (
            pieces(rendered.html, key, have, html=True),
            pieces(rendered.text, key, have, html=False),
        )
        return mail_of(
            rt, digest, rendered=rendered, language=rendered.language or digest.locale,
            bodies=bodies, shared=shared,
        )  # fmt: skip

    def take_fresh(pairs: Collection[tuple[int, str]]) -> dict[tuple[int, str], Digest]:
        """The asked digests the fire handed over, and the next READ_AHEAD after them (in id
        order, as the store's read-ahead), each taken once."""
        with lock:
            rows = {
                (d, lang): row
                for d, lang in pairs
                if (row := fresh.get(d)) is not None and row["locale"] == lang
            }
            if rows:
                start = bisect.bisect_right(order, max(d for d, _ in rows))
                for d in order[start : start + READ_AHEAD]:
                    if (row := fresh.get(d)) is not None:
                        rows.setdefault((d, row["locale"]), row)
            for d, _ in rows:
                fresh.pop(d, None)
        return {key: Digest.model_construct(**row) for key, row in rows.items()}

    def load_many(pairs: Collection[tuple[int, str]]) -> dict[tuple[int, str], DigestMail]:
        mine = take_fresh(pairs) if fresh else {}
        rest = [p for p in pairs if p not in mine]
        with rt.session() as session:
            # reading ahead pays where the next chunks' digests are not at hand already
            found = digests_to_send(session, rest, ahead=0 if mine else READ_AHEAD) if rest else {}
            bodies = {key: (d, rendered_of(d, r)) for key, (d, r) in found.items()}
            bodies.update({key: (d, rendered_of(d, None)) for key, d in mine.items()})
            wanted = needed(
                (body, d.placeholder_key) for d, r in bodies.values() for body in (r.html, r.text)
            )
            with lock:
                have = {sha: known[sha] for sha in wanted if sha in known}
            if len(have) < len(wanted):
                loaded = fragments_of(session, wanted - have.keys())
                have.update(loaded)
                with lock:
                    if len(known) + len(loaded) > FRAGMENTS_KEPT:
                        known.clear()
                    known.update(loaded)
        mails: dict[tuple[int, str], DigestMail] = {}
        asked = set(pairs)
        for key, (d, rendered) in bodies.items():
            try:
                mails[key] = made(d, rendered, have)
            except (LookupError, ValueError):
                if key in asked:
                    raise
                # read ahead only: that digest fails alone when its own chunk comes
        return mails

    def load(digest_id: int, locale: str) -> DigestMail:
        found = load_many([(digest_id, locale)]).get((digest_id, locale))
        if found is None:
            raise LookupError(f"digest {digest_id} is not in the store")
        return found

    return DigestMessenger(load, load_many=load_many)


def _fill_counts(rt: Runtime, reports: Sequence[DigestReport]) -> None:
    ids = [r.digest_id for r in reports if r.digest_id is not None]
    with rt.session() as session:
        table = delivery_counts(session, digest_ids=ids)
    for r in reports:
        if r.digest_id is not None:
            r.counts = table.get(r.digest_id, {})


def _digest_reports(rt: Runtime, fires: Sequence[FireReport]) -> list[DigestReport]:
    """The frozen digests of the fired weeks with their ledger counts, queued this run."""
    weeks = {w for f in fires for w in f.weeks}
    queued: dict[int, int] = defaultdict(int)
    for f in fires:
        for digest_id, n in f.queued_by_digest.items():
            queued[digest_id] += n
    with rt.session() as session:
        ids = sorted(set(edition_store.digest_ids_of_weeks(session, weeks=weeks)) | set(queued))
        digests = digest_summaries(session, ids)
    reports = [
        DigestReport(d.regions or d.region, d.week, d.status, d.id, d.subject, queued[d.id])
        for d in digests
    ]
    _fill_counts(rt, reports)
    return reports


def send_digests(
    rt: Runtime,
    *,
    regions: Sequence[str] | None,
    week: str | None = None,
    early: bool = False,
    dry_run: bool = False,
    resend_unknown: bool = False,
    progress: Progress | None = None,
    config: EngineConfig | None = None,
    stop: threading.Event | None = None,
    runner: str | None = None,
    deliver_now: bool = True,
) -> SendReport:
    """Fire the editions owed now (readers of ``regions``; None: every reader), then deliver.

    ``week`` defaults to the week just ended on each reader's clock; a running week needs
    ``early`` (EditionError otherwise). A dry run computes and counts, writing nothing;
    ``deliver_now=False`` queues and leaves the sending to the deliverer (serve's delivery loop
    or `publisher worker`), as the API does. When sending had to pause (the SMTP server kept
    failing), ``report.run.paused`` says why and the rows wait as deferred. Setting ``stop``
    (a signal handler) ends the run early: messages in flight finish, the rest are put back.
    Re-running sends nobody anything twice: rows left pending by an earlier run are drained.
    """
    now = rt.now()
    runner = runner or recovery.worker_identity()
    slugs: list[str | None] = [None]
    if regions is not None:
        slugs = [*sorted({rt.tree.normalize(r) for r in regions})]
    fires = [
        fire_editions(
            rt,
            now=now,
            zone=None,
            region=slug,
            week=week,
            early=early,
            dry_run=dry_run,
            runner=runner,
            keep_frozen=deliver_now,
        )
        for slug in slugs
    ]
    reports = _digest_reports(rt, fires)
    result = SendReport(reports, dry_run=dry_run, fires=fires)
    digest_ids = [r.digest_id for r in reports if r.digest_id is not None]
    if not dry_run and deliver_now and digest_ids:
        result.recovered, result.resent_unknown = settle(rt, digest_ids, resend_unknown)
        messenger = digest_messenger(rt, frozen={k: v for f in fires for k, v in f.frozen.items()})
        for f in fires:
            f.frozen = {}  # the messenger holds them now, and lets each go once it is built
        result.run = deliver(
            rt, messenger, digest_ids=digest_ids, progress=progress, config=config, stop=stop
        )
        _fill_counts(rt, reports)
    return result


def recover_dead(rt: Runtime) -> tuple[int, list[str]]:
    """The one recovery of ``digests send``, ``worker`` and ``serve``: settle what dead senders
    left, by their journals under VAR_DIR/journal/ where they kept one; returns how many rows
    became unknown, and the dead workers of this machine."""
    now = rt.now()
    with rt.session() as session:
        dead = recovery.dead_local_workers(session, now=now)
        unknown = recovery.recover(
            session, now=now, dead_workers=dead, journal_dir=journal_dir(rt.settings.var_dir)
        )
    return unknown, dead


def settle(rt: Runtime, digest_ids: Collection[int], resend_unknown: bool) -> tuple[int, int]:
    """Recover what dead senders left, then (on the operator's word) requeue unknown rows."""
    recovered, _dead = recover_dead(rt)
    if not resend_unknown:
        return recovered, 0
    with rt.session() as session:
        return recovered, deliveries.resend_unknown(session, digest_ids=digest_ids)


def engine_config(settings: Settings) -> EngineConfig:
    """The engine's sizes from SMTP_CONCURRENCY and SMTP_RATE."""
    return EngineConfig(concurrency=settings.smtp_concurrency, rate=settings.smtp_rate)


@contextmanager
def send_engine(
    rt: Runtime,
    messenger: DigestMessenger,
    *,
    config: EngineConfig | None = None,
    worker_id: str | None = None,
    wrap_store: Callable[[Store], Store] | None = None,
    wrap_transport: Callable[[Transport], Transport] | None = None,
    progress: Progress | None = None,
) -> Iterator[tuple[Engine, SmtpTarget]]:
    """The one way to build the send engine (``digests send``, ``worker``, ``serve``).

    An engine on SMTP_URL (or the embedded Maildir server) with a connection pool of
    ``config.concurrency``, the ledger as its store and the Runtime's clock; the pool and the
    target live while the block runs. ``wrap_*`` let the worker count and time what passes
    (a transport wrapper passes on ``announces_final_dot``). The engine journals each final dot
    and reply under VAR_DIR/journal/, which ``recover_dead`` reads after a crash.
    """
    settings = rt.settings
    config = config or engine_config(settings)
    with smtp_target(settings) as target, SmtpPool(target, config.concurrency) as pool:
        store: Store = LedgerStore(rt.engine, worker_id=worker_id)
        transport: Transport = pool
        journal = open_journal(journal_dir(settings.var_dir), store.worker_id)
        engine = Engine(
            store=wrap_store(store) if wrap_store else store, messenger=messenger,
            transport=wrap_transport(transport) if wrap_transport else transport,
            envelope_from=digest_envelope(settings), config=config, clock=rt.now,
            limiter=RateLimiter(config.rate), progress=progress.update if progress else None,
            journal=journal,
        )  # fmt: skip
        try:
            yield engine, target
        finally:
            if journal is not None:  # an engine that never ran held nothing
                journal.close(settled=True)


@fewer_collections()
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
    if progress is not None:
        with rt.session() as session:
            progress.start(deliveries.count_waiting(session, now=rt.now(), digest_ids=digest_ids))
    with send_engine(rt, messenger, config=config, progress=progress) as (engine, _target):
        done = threading.Event()
        if stop is not None:
            threading.Thread(target=_relay, args=(stop, done, engine), daemon=True).start()
        try:
            return engine.run(digest_ids=None if digest_ids is None else IdRuns(digest_ids))
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
