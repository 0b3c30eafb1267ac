"""Messages between the engine's coordinator and its sending threads, and the run's counters.

The sending threads report each finished job here; the coordinator is woken only when the number
in flight falls to what it waits for, so a busy run costs no thread switch per message. The
"many failures pause the send" rule lives here too, so it trips as soon as the limit is hit.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from publisher.delivery.ledger import Recipient
from publisher.delivery.smtp import SendResult
from publisher.models import DeliveryState

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Job:
    """One message to send; ``result`` stays None when the run halted before it was sent."""

    recipient: Recipient
    result: SendResult | None = None


@dataclass(slots=True)
class RunStats:
    """What one run did, by outcome; ``paused`` says why the run stopped early, if it did."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    released: int = 0
    paused: str = ""
    stopped: bool = False  # stop() was called: the run ended early on request

    @property
    def done(self) -> int:
        return self.sent + self.deferred + self.failed + self.unknown + self.skipped

    def count(self, state: DeliveryState) -> None:
        setattr(self, state.value, getattr(self, state.value) + 1)


class InFlight:
    """Counts jobs in flight, collects finished ones, and halts the run after too many failures."""

    def __init__(self, *, pause_after: int) -> None:
        self.pause_after = pause_after
        self.halt = threading.Event()
        self.paused = ""
        self._cond = threading.Condition()
        self._count = 0
        self._wake_at = -1
        self._done: list[Job] = []
        self._streak = 0

    def add(self, n: int) -> None:
        with self._cond:
            self._count += n

    def finish(self, job: Job) -> None:
        """Called by a sending thread when ``job`` is done (or was skipped by a halt)."""
        result = job.result
        with self._cond:
            self._done.append(job)
            self._count -= 1
            if result is not None:
                self._watch(job, result)
            if self._count <= self._wake_at:
                self._cond.notify()

    def _watch(self, job: Job, result: SendResult) -> None:
        if not result.systemic:
            self._streak = 0
            return
        self._streak += 1
        log.warning("ledger row %s: %s", job.recipient.row.id, result.describe())
        if self._streak >= self.pause_after and not self.paused:
            self.paused = (
                f"sending paused after {self._streak} failures in a row, the last: "
                f"{result.describe()}; the rows wait as deferred: fix the cause and run again"
            )
            self.halt.set()

    def collect(self, limit: int, timeout: float) -> tuple[list[Job], bool]:
        """Wait up to ``timeout`` s until at most ``limit`` jobs are in flight.

        Returns the jobs finished so far, and whether the limit was reached.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            self._wake_at = limit
            while self._count > limit and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(min(left, 0.5))
            self._wake_at = -1
            done, self._done = self._done, []
            return done, self._count <= limit
