"""`publisher worker`: claim due ledger rows in batches, send them, repeat until stopped.

Each drain first settles what dead workers left (``publisher.delivery.recovery``: by the dead
worker's journal where it kept one; other rows it held may have reached the server, so they
become ``unknown`` and are never resent), then
runs the delivery engine over every due row (pending, or deferred and due). Claims take rows
FOR UPDATE SKIP LOCKED with a lease, so any number of workers on any number of machines share the
ledger without waiting for each other; a worker dead on another machine is recognised when its
lease runs out, one on this machine at once (its pid is gone). ``stop()`` (SIGTERM) lets the
messages in flight finish, gives back the rows not yet handed to SMTP, and returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from publisher.delivery import recovery
from publisher.delivery.engine import Engine, EngineConfig, RunStats, Store, Transport
from publisher.delivery.ledger import Claim, RowUpdate
from publisher.delivery.smtp import SendResult
from publisher.errors import DeliveryError
from publisher.logs import event
from publisher.models import DeliveryState
from publisher.pipeline.send import digest_messenger, engine_config, recover_dead, send_engine
from publisher.runtime import Runtime
from publisher.service.metrics import Metrics, metrics_for
from publisher.store import deliveries
from publisher.store.digests import get_digest

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """The engine's sizes plus how long to sleep when idle and after a paused run."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    idle: float = 2.0
    pause_backoff: float = 30.0


class CountingStore:
    """The engine's Store, counting each written outcome per region in the metrics."""

    def __init__(
        self, inner: Store, metrics: Metrics, regions: dict[int, str], rt: Runtime
    ) -> None:
        self.inner, self.metrics, self.regions, self.rt = inner, metrics, regions, rt
        self.worker_id = inner.worker_id
        self._digest_of: dict[int, int] = {}

    def step(
        self, *, updates: Sequence[RowUpdate], bounced: Collection[int], claim: int,
        after_id: int, digest_ids: Collection[int] | None, lease_until: datetime, now: datetime,
    ) -> Claim:  # fmt: skip
        result = self.inner.step(
            updates=updates, bounced=bounced, claim=claim, after_id=after_id,
            digest_ids=digest_ids, lease_until=lease_until, now=now,
        )  # fmt: skip
        for u in updates:
            self._count(self._digest_of.pop(u.id, None), u.state)
        self._digest_of.update((r.row.id, r.row.digest_id) for r in result.recipients)
        for digest_id in self._digests_of_rows(result.skipped):
            self._count(digest_id, DeliveryState.skipped)
        return result

    def release(self, *, ids: Collection[int]) -> int:
        for row_id in ids:
            self._digest_of.pop(row_id, None)
        return self.inner.release(ids=ids)

    def renew(self, *, ids: Collection[int], lease_until: datetime) -> int:
        return self.inner.renew(ids=ids, lease_until=lease_until)

    def _digests_of_rows(self, row_ids: Sequence[int]) -> list[int]:
        if not row_ids:
            return []
        with self.rt.session() as session:
            return deliveries.digest_ids_of_rows(session, row_ids=row_ids)

    def _region(self, digest_id: int | None) -> str:
        if digest_id is None:
            return "?"
        region = self.regions.get(digest_id)
        if region is None:
            with self.rt.session() as session:
                digest = get_digest(session, digest_id=digest_id)
            region = self.regions[digest_id] = digest.region if digest else "?"
        return region

    def _count(self, digest_id: int | None, state: str) -> None:
        region = self._region(digest_id)
        self.metrics.messages.labels(region=region, outcome=str(state)).inc()


class TimedTransport:
    """The engine's Transport, timing each SMTP transaction into the latency histogram."""

    def __init__(self, inner: Transport, metrics: Metrics) -> None:
        self.inner, self.metrics = inner, metrics
        self.announces_final_dot = getattr(inner, "announces_final_dot", False)

    def send(self, sender: str, recipients: Sequence[str], message: bytes) -> dict[str, SendResult]:
        began = time.perf_counter()
        try:
            return self.inner.send(sender, recipients, message)
        finally:
            self.metrics.send_seconds.observe(time.perf_counter() - began)


def has_due(rt: Runtime, now: datetime) -> bool:
    """Whether any row is waiting for a worker (pending or due deferred, lease free)."""
    with rt.session() as session:
        return deliveries.has_due(session, now=now)


class Worker:
    """One sending process's loop over the shared ledger."""

    def __init__(
        self,
        rt: Runtime,
        *,
        config: WorkerConfig | None = None,
        metrics: Metrics | None = None,
        worker_id: str | None = None,
    ) -> None:
        settings = rt.settings
        self.rt = rt
        self.config = config or WorkerConfig(engine_config(settings))
        self.metrics = metrics or metrics_for(rt)
        self.worker_id = worker_id or recovery.worker_identity()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._regions: dict[int, str] = {}

    def stop(self) -> None:
        """Finish the messages in flight, give back the rest, and make ``run`` return."""
        with self._lock:
            self.stopping.set()
            if self._engine is not None:
                self._engine.stop()

    def recover(self) -> int:
        """Settle rows of workers that died (lease expired, or their process here is gone)."""
        unknown, dead = recover_dead(self.rt)
        if unknown:
            event(log, "delivery.recovered", worker=self.worker_id, unknown=unknown,
                  dead_workers=",".join(dead))  # fmt: skip
        return unknown

    def drain(self) -> RunStats | None:
        """Send every due row now; None when there was nothing to do (or stopping)."""
        self.recover()
        if self.stopping.is_set() or not has_due(self.rt, self.rt.now()):
            return None
        began = time.perf_counter()
        with send_engine(
            self.rt, digest_messenger(self.rt), config=self.config.engine,
            worker_id=self.worker_id,
            wrap_store=lambda store: CountingStore(store, self.metrics, self._regions, self.rt),
            wrap_transport=lambda transport: TimedTransport(transport, self.metrics),
        ) as (engine, target):  # fmt: skip
            with self._lock:
                if self.stopping.is_set():
                    return None
                self._engine = engine
            try:
                stats = engine.run()
            except DeliveryError as e:
                stats = engine.stats
                event(log, "delivery.paused", level=logging.WARNING, worker=self.worker_id,
                      reason=str(e), backoff_s=self.config.pause_backoff)  # fmt: skip
                self.stopping.wait(self.config.pause_backoff)
            finally:
                with self._lock:
                    self._engine = None
        event(log, "delivery.drained", worker=self.worker_id, smtp=target.describe(),
              seconds=round(time.perf_counter() - began, 3), sent=stats.sent,
              deferred=stats.deferred, failed=stats.failed, unknown=stats.unknown,
              skipped=stats.skipped, released=stats.released)  # fmt: skip
        return stats

    def run(self, stop: threading.Event | None = None) -> None:
        """Drain; sleep ``idle`` seconds when nothing was due; until stopped or ``stop`` is set."""
        if stop is not None:
            threading.Thread(target=self._follow, args=(stop,), daemon=True).start()
        event(
            log, "worker.started", worker=self.worker_id, concurrency=self.config.engine.concurrency
        )
        while not self.stopping.is_set():
            try:
                stats = self.drain()
            except Exception:
                log.exception("delivery run failed; retrying after %ss", self.config.pause_backoff)
                self.stopping.wait(self.config.pause_backoff)
                continue
            if stats is None or stats.done == 0:
                self.stopping.wait(self.config.idle)
        event(log, "worker.stopped", worker=self.worker_id)

    def _follow(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            if self.stopping.is_set():
                return
        self.stop()
