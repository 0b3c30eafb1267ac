"""The send loop: claim a chunk, send it on threads, record outcomes within about a second.

The coordinator (the calling thread) alone talks to the store; ``concurrency`` sending threads
drain a job queue, each building its message and handing it to the transport. The crash-safety
rule: a chunk is committed ``sending`` before any of its messages is queued, and the next chunk
is claimed only when at most ``chunk_size`` messages are still in flight, so a crash leaves at
most about three chunks ``sending`` (two in flight, one answered but not yet recorded): those
become unknown, never resent, unless the run keeps a journal (``publisher.delivery.journal``):
then each final dot and reply is journaled as it happens, and recovery leaves unknown only the
messages whose dot went out unanswered, at most one per connection. On a clean stop, queued
messages not yet handed to SMTP are released. Outcomes are recorded in the transaction that
claims the next chunk, or every ``flush_every`` while the coordinator waits. One failed
message is logged and skipped; ``pause_after`` consecutive failures of the server or link stop
the run.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from publisher.delivery.inflight import InFlight, Job, RunStats
from publisher.delivery.journal import Journal
from publisher.delivery.ledger import Claim, Recipient, RowUpdate
from publisher.delivery.policy import decide
from publisher.delivery.ratelimit import RateLimiter
from publisher.delivery.smtp import Outcome, SendResult
from publisher.errors import DeliveryError

log = logging.getLogger(__name__)

__all__ = ["Engine", "EngineConfig", "Messenger", "RunStats", "Store", "Transport"]


class Store(Protocol):
    """The ledger as the engine uses it; ``publisher.delivery.store.LedgerStore`` implements it."""

    worker_id: str

    def step(
        self, *, updates: Sequence[RowUpdate], bounced: Collection[int], claim: int,
        after_id: int, digest_ids: Collection[int] | None, lease_until: datetime, now: datetime,
    ) -> Claim: ...  # fmt: skip

    def release(self, *, ids: Collection[int]) -> int: ...

    def renew(self, *, ids: Collection[int], lease_until: datetime) -> int: ...


class Messenger(Protocol):
    """Builds the complete bytes of one recipient's message (one with a ``prepare(recipients)``
    method is handed each claimed chunk first, to load what the chunk needs at once)."""

    def build(self, recipient: Recipient) -> bytes: ...


class Transport(Protocol):
    """One SMTP transaction, callable from several threads at once (``SmtpPool``)."""

    def send(
        self, sender: str, recipients: Sequence[str], message: bytes
    ) -> dict[str, SendResult]: ...


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Sizes and limits of a run; ``chunk_size`` bounds what a crash can leave unknown."""

    concurrency: int = 4
    rate: float = 0.0
    chunk_size: int = 200
    lease: timedelta = timedelta(minutes=10)
    pause_after: int = 20
    flush_every: timedelta = timedelta(seconds=0.5)  # the most an outcome waits for the store


class Engine:
    """Drains due ledger rows through a messenger and a transport; one instance per run."""

    def __init__(
        self,
        *,
        store: Store,
        messenger: Messenger,
        transport: Transport,
        envelope_from: str | Callable[[int], str],  # a VERP address per ledger row id
        config: EngineConfig = EngineConfig(),
        clock: Callable[[], datetime],
        limiter: RateLimiter | None = None,
        progress: Callable[[RunStats], None] | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.store = store
        self.messenger = messenger
        self.transport = transport
        self.envelope_from = envelope_from
        self.config = config
        self.clock = clock
        self.limiter = limiter or RateLimiter(config.rate)
        self.progress = progress
        self.journal = journal
        # a transport that journals each final dot itself; with any other, "end of data" is
        # journaled before the transaction starts (a kill during it then leaves the row unknown)
        self._dot_announced = bool(getattr(transport, "announces_final_dot", False))
        self.stats = RunStats()
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._inflight = InFlight(pause_after=config.pause_after)
        self._held: set[int] = set()  # rows claimed and not yet recorded: their leases to renew
        self._unrecorded: list[Job] = []

    def stop(self) -> None:
        """Finish the messages in flight, give back the rest and return (SIGTERM); thread-safe."""
        self.stats.stopped = True
        self._inflight.halt.set()

    # -- the sending threads ----------------------------------------------------------------
    def _sender(self) -> None:
        halt = self._inflight.halt
        while (job := self._jobs.get()) is not None:
            if not halt.is_set():
                self.limiter.acquire()
            if not halt.is_set():  # a halted job is returned unsent: its row is released
                job.result = self._send(job.recipient)
                if self.journal is not None:
                    row = job.recipient.row
                    self.journal.reply(row.id, row.attempts, job.result)
            self._inflight.finish(job)

    def _send(self, recipient: Recipient) -> SendResult:
        try:
            message = self.messenger.build(recipient)
        except Exception as e:
            log.exception("could not build the message for ledger row %s", recipient.row.id)
            detail = f"could not build the message: {type(e).__name__}: {e}"
            return SendResult(Outcome.deferred, 0, detail, systemic=True)
        sender = self.envelope_from
        sender = sender if isinstance(sender, str) else sender(recipient.row.id)
        try:
            results = self._transact(recipient, sender, message)
        except Exception as e:  # the transport classifies SMTP errors; this is a bug in it
            log.exception("transport error on ledger row %s", recipient.row.id)
            return SendResult(Outcome.unknown, 0, f"transport error: {e!r}", systemic=True)
        return results[recipient.email]

    def _transact(self, recipient: Recipient, sender: str, message: bytes) -> dict[str, SendResult]:
        journal, row = self.journal, recipient.row
        if journal is None:
            return self.transport.send(sender, [recipient.email], message)
        if not self._dot_announced:
            journal.end_of_data(row.id, row.attempts)
        with journal.sending(row.id, row.attempts):
            return self.transport.send(sender, [recipient.email], message)

    # -- the coordinator --------------------------------------------------------------------
    def run(self, *, digest_ids: Collection[int] | None = None) -> RunStats:
        """Send every due row (of ``digest_ids``, or all) until none is left or ``stop()``.

        DeliveryError when the run paused; ``stats`` still tells what was done before.
        """
        threads = [
            threading.Thread(target=self._sender, name=f"smtp-{i}", daemon=True)
            for i in range(self.config.concurrency)
        ]
        for t in threads:
            t.start()
        try:
            self._loop(digest_ids)
        except BaseException:
            self._inflight.halt.set()
            self._settle_after_error()
            raise
        finally:
            for _ in threads:
                self._jobs.put(None)
            for t in threads:
                t.join()
            if self.journal is not None:
                self.journal.close(settled=not self._held)
        if self._inflight.paused:
            self.stats.paused = self._inflight.paused
            raise DeliveryError(self.stats.paused)
        return self.stats

    def _settle_after_error(self) -> None:
        """Best effort after an error (the store failing, Ctrl-C): record what finished and
        release what never left; rows this cannot reach stay ``sending``, so unknown later."""
        try:
            self._flush(self._collect(0))
        except Exception:
            log.exception("could not record the last outcomes; recovery will mark them unknown")

    def _chunk(self) -> int:
        """Rows per claim: ``chunk_size``, or about ten seconds' worth under a rate limit."""
        size = self.config.chunk_size
        if self.config.rate > 0:
            size = min(size, max(self.config.concurrency, math.ceil(self.config.rate * 10)))
        return size

    def _loop(self, digest_ids: Collection[int] | None) -> None:
        size, after_id = self._chunk(), 0
        while not self._inflight.halt.is_set():
            finished = self._collect(size)
            if self._inflight.halt.is_set():
                self._flush(finished)
                break
            claim = self._flush(finished, claim=size, after_id=after_id, digest_ids=digest_ids)
            if claim.empty:
                if after_id == 0:
                    break
                after_id = 0  # one more pass from the start: rows come due or freed meanwhile
                continue
            after_id = claim.last_id
            self._prepare(claim.recipients)
            self._inflight.add(len(claim.recipients))
            for recipient in claim.recipients:
                self._held.add(recipient.row.id)
                self._jobs.put(Job(recipient))
        self._flush(self._collect(0))

    def _prepare(self, recipients: Sequence[Recipient]) -> None:
        """Let the messenger load what the chunk needs in one go; if that fails, each message
        still loads its own (and fails alone)."""
        prepare = getattr(self.messenger, "prepare", None)
        if prepare is None:
            return
        try:
            prepare(recipients)
        except Exception:
            log.exception("could not prepare a chunk of %d messages", len(recipients))

    def _collect(self, limit: int) -> list[Job]:
        """Finished jobs, once at most ``limit`` are in flight. While waiting, records what
        finished every ``flush_every`` (the flusher) and renews leases every quarter lease."""
        done: list[Job] = []
        renew_every = self.config.lease.total_seconds() / 4
        renew_at = time.monotonic() + renew_every
        while True:
            jobs, reached = self._inflight.collect(
                limit, timeout=min(self.config.flush_every.total_seconds(), renew_every)
            )
            done += jobs
            if reached:
                return done
            if done:
                self._flush(done)
                done = []
            if time.monotonic() >= renew_at:
                self.store.renew(ids=self._held, lease_until=self.clock() + self.config.lease)
                renew_at = time.monotonic() + renew_every

    def _flush(
        self,
        finished: list[Job],
        *,
        claim: int = 0,
        after_id: int = 0,
        digest_ids: Collection[int] | None = None,
    ) -> Claim:
        """Record finished jobs and claim the next chunk, in one transaction.

        Jobs stay in ``_unrecorded`` until the store has taken them, so a failed write can be
        retried by the error path instead of leaving known outcomes to become unknown.
        """
        self._unrecorded += finished
        now = self.clock()
        updates: list[RowUpdate] = []
        bounced: list[int] = []
        unsent: list[int] = []
        for job in self._unrecorded:
            row = job.recipient.row
            if job.result is None:
                unsent.append(row.id)
                continue
            update, bounce = decide(job.recipient, job.result, now=now)
            updates.append(update)
            if bounce:
                bounced.append(row.subscriber_id)
        if unsent:
            self.stats.released += self.store.release(ids=unsent)
        result = Claim([], [], 0)
        if updates or claim:
            result = self.store.step(
                updates=updates, bounced=bounced, claim=claim, after_id=after_id,
                digest_ids=digest_ids, lease_until=now + self.config.lease, now=now,
            )  # fmt: skip
            self.stats.skipped += len(result.skipped)
        for update in updates:
            self.stats.count(update.state)
        self._held.difference_update(job.recipient.row.id for job in self._unrecorded)
        self._unrecorded = []
        if self.journal is not None:
            self.journal.rotate(self._held)
        if self.progress is not None:
            self.progress(self.stats)
        return result
