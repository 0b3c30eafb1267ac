"""The outbox deliverer: sends the durable transactional emails (confirmations) through a Mailer.

A signup writes its outbox row in its own transaction, so its email survives any crash. The
deliverer claims due rows with a lease, builds each message just before it goes out (fresh
signed link, the subscriber's latest request), hands it to the one Mailer interface (SMTP_URL or
the embedded server) and records the outcome as the ledger does: 250 sent, 4xx deferred with the
ledger's backoff, 5xx failed. Rows a dead deliverer left ``sending`` become ``unknown`` and are
sent again: a second confirmation is better than none. ``run`` polls every few seconds and wakes
at once when ``wake`` is called (a signup in this process).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from publisher.bounces.verp import outbox_envelope
from publisher.delivery import recovery
from publisher.delivery.mailer import Mailer, smtp_mailer
from publisher.delivery.policy import next_attempt
from publisher.delivery.smtp import Outcome, SendResult
from publisher.email.outgoing import confirmation_message
from publisher.logs import event
from publisher.models import OutboxState, SubscriberStatus, SuppressionReason
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.store import outbox as store
from publisher.store import subscribers

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
NO_MAIL = (
    SuppressionReason.soft_bounce,
    SuppressionReason.hard_bounce,
    SuppressionReason.complaint,
)

MailerFactory = Callable[[], AbstractContextManager[Mailer]]


@dataclass(slots=True)
class OutboxStats:
    """What one drain did, per outcome."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    recovered: int = 0

    @property
    def done(self) -> int:
        return self.sent + self.deferred + self.failed + self.unknown + self.skipped


class OutboxDeliverer:
    """Claims due outbox rows and sends them; ``drain`` once, or ``run`` until stopped."""

    def __init__(
        self,
        rt: Runtime,
        *,
        settings: Settings | None = None,
        mailer: MailerFactory | None = None,
        poll: float = 2.0,
        worker_id: str | None = None,
    ) -> None:
        self.rt = rt
        self.settings = settings or rt.settings
        self._mailer = mailer or (lambda: smtp_mailer(self.settings))
        self.poll = poll
        self.worker_id = worker_id or recovery.worker_identity()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # one drain at a time in this process

    def wake(self, *_: object) -> None:
        """Deliver now rather than at the next poll (a message was just queued)."""
        self._wake.set()

    def recover(self) -> int:
        """Make rows of dead deliverers (lease run out, or their process here gone) due again."""
        now = self.rt.now()
        with self.rt.session() as session:
            held = store.lease_holders(session, now=now)
            dead = [w for w in held if w != self.worker_id and recovery.is_dead_here(w)]
            found = store.recover(session, now=now, dead_workers=dead)
        if found:
            event(log, "outbox.recovered", worker=self.worker_id, unknown=found)
        return found

    def drain(self) -> OutboxStats:
        """Send every due message now (in batches); returns what happened."""
        stats = OutboxStats()
        with self._lock:
            stats.recovered = self.recover()
            while batch := self._claim():
                with self._mailer() as mailer:
                    for row in batch:
                        self._send(mailer, row, stats)
        if stats.done:
            event(log, "outbox.drained", worker=self.worker_id, sent=stats.sent,
                  deferred=stats.deferred, failed=stats.failed, skipped=stats.skipped)  # fmt: skip
        return stats

    def flush(self, timeout: float = 30) -> None:
        """Deliver what is due before returning (tests, CLI commands)."""
        self.drain()

    def run(self, stop: threading.Event) -> None:
        """Drain, then wait for a wake-up or ``poll`` seconds; until ``stop`` is set."""
        threading.Thread(target=self._follow, args=(stop,), daemon=True).start()
        while not stop.is_set():
            try:
                self.drain()
            except Exception:
                log.exception("outbox delivery failed; retrying in %ss", self.poll)
            self._wake.wait(self.poll)
            self._wake.clear()

    def _follow(self, stop: threading.Event) -> None:
        stop.wait()
        self._wake.set()

    def close(self) -> None:
        """Nothing is held in memory: what is not sent waits in the outbox table."""

    def _claim(self) -> list[store.Claimed]:
        now = self.rt.now()
        with self.rt.session() as session:
            return store.claim(session, worker_id=self.worker_id, now=now, lease_until=now + LEASE)

    def _send(self, mailer: Mailer, row: store.Claimed, stats: OutboxStats) -> None:
        built = self._build(row)
        if built is None:
            self._record(row, OutboxState.skipped, "no longer owed (erased or suppressed)")
            stats.skipped += 1
            return
        address, message = built
        sender = outbox_envelope(self.settings, row.id)
        try:
            result = mailer.send(sender, [address], message)[address]
        except Exception as e:  # the message may have left: treat like a lost connection
            log.exception("outbox message %s: the mailer failed", row.id)
            result = SendResult(Outcome.unknown, 0, f"mailer error: {e}"[:400], systemic=True)
        self._outcome(row, address, result, stats)

    def _outcome(
        self, row: store.Claimed, address: str, result: SendResult, stats: OutboxStats
    ) -> None:
        error = result.describe()
        if result.outcome is Outcome.sent:
            self._record(row, OutboxState.sent)
            stats.sent += 1
        elif result.outcome is Outcome.failed:
            self._record(row, OutboxState.failed, error)
            stats.failed += 1
            if result.bounce:
                with self.rt.session() as session:
                    subscribers.suppress(session, email=address, now=self.rt.now(),
                                         reason=SuppressionReason.hard_bounce)  # fmt: skip
        else:  # deferred, or unknown (lost after the final dot): both are tried again later
            now = self.rt.now()
            when = next_attempt(attempts=row.attempts, first_attempt=row.first_attempt, now=now)
            if when is None:
                self._record(row, OutboxState.failed, f"gave up after 3 days: {error}")
                stats.failed += 1
            elif result.outcome is Outcome.unknown:
                self._record(row, OutboxState.unknown, error, when)
                stats.unknown += 1
            else:
                self._record(row, OutboxState.deferred, error, when)
                stats.deferred += 1

    def _record(
        self, row: store.Claimed, state: OutboxState, error: str = "", when: datetime | None = None
    ) -> None:
        with self.rt.session() as session:
            store.record(
                session, worker_id=self.worker_id, row_id=row.id, state=state, now=self.rt.now(),
                error=error, next_attempt=when,
            )  # fmt: skip

    def _build(self, row: store.Claimed) -> tuple[str, bytes] | None:
        """(address, message) of a confirmation still owed; None if erased or never to be mailed.

        A finished message (a test copy) goes as stored, unless its address may get no mail.
        """
        with self.rt.session() as session:
            if row.kind == store.FINISHED_KIND:
                found = store.get_message(session, row_id=row.id)
                if found is None or not found.address or found.body is None:
                    return None
                if subscribers.suppression_reason(session, email=found.address) in NO_MAIL:
                    return None
                return found.address, found.body
            sub = subscribers.get_subscriber(session, subscriber_id=row.subscriber_id)
            if sub is None or sub.id is None or sub.status == SubscriberStatus.bounced:
                return None
            if subscribers.suppression_reason(session, email=sub.email) in NO_MAIL:
                return None
            asked = subscribers.requested_regions(session, subscriber_id=sub.id)
            slugs = asked or subscribers.regions_of(session, subscriber_id=sub.id)
            names = [self.rt.tree.get(s).name(sub.locale) for s in slugs if s in self.rt.tree]
            message = confirmation_message(
                settings=self.settings, tokens=self.rt.tokens, subscriber_id=sub.id, key=sub.key,
                email=sub.email, region_names=names, locale=sub.locale, now=self.rt.now(),
            )  # fmt: skip
            return sub.email, message


class DeliverMailer:
    """A Mailer over a plain ``deliver(to, message)`` function (tests that keep messages)."""

    def __init__(self, deliver: Callable[[str, bytes], None]) -> None:
        self._deliver = deliver

    def send(self, sender: str, recipients: Sequence[str], message: bytes) -> dict[str, SendResult]:
        for to in recipients:
            self._deliver(to, message)
        return {r: SendResult(Outcome.sent, 250, "delivered") for r in recipients}


def fixed_mailer(mailer: Mailer) -> MailerFactory:
    """A MailerFactory that always hands out ``mailer`` (kept open by its owner)."""

    @contextmanager
    def borrow() -> Iterator[Mailer]:
        yield mailer

    return borrow
