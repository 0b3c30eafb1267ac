"""`publisher scheduler` and serve's background part: wait to be leader, then run the jobs.

``run_scheduler`` loops: take the leader lock or wait ``retry`` seconds as standby; once leader,
start the jobs and check every ``check`` seconds that the lock is still held; on losing it (the
database connection dropped) or on stop, shut the jobs down (messages in flight finish) and
release it. A standby takes over within about ``retry`` seconds of the leader's death, because
PostgreSQL ends a dead client's session, and the kernel a dead process's file lock, at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from publisher.delivery.recovery import worker_identity
from publisher.logs import configure_logging, event
from publisher.runtime import Runtime
from publisher.schedule.leader import leader_lock
from publisher.service.jobs import DEFAULT_GRACE, JobContext, start_jobs, stop_jobs
from publisher.service.metrics import Metrics, metrics_for
from publisher.service.worker import Worker

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SchedulerOptions:
    """``deliver``: also send (one machine); off when `publisher worker` processes do it."""

    deliver: bool = True
    grace: timedelta = DEFAULT_GRACE
    retry: float = 2.0
    check: float = 2.0
    deliver_every: float = 30.0
    feeds_every: float = 60.0
    context: str = "scheduler"


def run_scheduler(
    rt: Runtime,
    stop: threading.Event,
    *,
    options: SchedulerOptions | None = None,
    metrics: Metrics | None = None,
) -> None:
    """Be the scheduler, or its standby, until ``stop`` is set."""
    options = options or SchedulerOptions()
    metrics = metrics or metrics_for(rt)
    lock = leader_lock(rt)
    ident = worker_identity()
    waiting = False
    try:
        while not stop.is_set():
            if not lock.acquire():
                if not waiting:
                    event(log, "scheduler.standby", scheduler=ident, lock=lock.description,
                          retry_s=options.retry)  # fmt: skip
                    waiting = True
                metrics.leader.set(0)
                stop.wait(options.retry)
                continue
            waiting = False
            metrics.leader.set(1)
            event(log, "scheduler.leader", scheduler=ident, lock=lock.description,
                  deliver=options.deliver)  # fmt: skip
            try:
                _lead(rt, stop, lock.held, options, metrics, ident)
            finally:
                lock.release()
                metrics.leader.set(0)
    finally:
        lock.dispose()
    event(log, "scheduler.stopped", scheduler=ident)


def _lead(
    rt: Runtime,
    stop: threading.Event,
    held: Callable[[], bool],
    options: SchedulerOptions,
    metrics: Metrics,
    ident: str,
) -> None:
    worker = Worker(rt, metrics=metrics) if options.deliver else None
    ctx = JobContext(
        name=options.context, runtime=rt, metrics=metrics, runner=ident, grace=options.grace,
        worker=worker,
    )  # fmt: skip
    try:
        start_jobs(ctx, deliver_every=options.deliver_every, feeds_every=options.feeds_every)
        while not stop.wait(options.check):
            if not held():
                event(log, "scheduler.lost_lock", level=logging.ERROR, scheduler=ident)
                return
    finally:
        stop_jobs(ctx)


def background(rt: Runtime) -> Callable[[threading.Event], None]:
    """`publisher serve`'s hook: the scheduler with delivery, in a thread until the app stops."""
    configure_logging(rt.settings.log_format)

    def service(stop: threading.Event) -> None:
        try:
            run_scheduler(rt, stop, options=SchedulerOptions(deliver=True))
        except Exception:
            log.exception("the scheduler stopped on an error; the web app keeps running")

    return service
