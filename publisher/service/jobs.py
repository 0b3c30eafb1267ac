"""APScheduler 3 wiring: the job store in the same database, the jobs, and keeping them in sync.

Jobs are stored (pickled) in the ``scheduler_jobs`` table, so they carry only names: a module-level
function, the name of a registered ``JobContext`` and a region slug. Only the leader runs a
scheduler on that store (see ``publisher.schedule.leader``); APScheduler must never have two.

    edition:{zone} weekly, DIGEST_DAY at DIGEST_TIME on that zone's clock (``WeeklyTrigger``):
                   assemble and queue the editions of the zone's readers
    deliver        every 30 s (when this scheduler delivers): send pending and due deferred rows
    feeds          every 60 s: rebuild feeds/ when the items changed
    sync           every 60 s: one edition job per zone with active readers (zones come and go
                   with readers); finish fires a dead scheduler left unfinished
    purge          daily at 03:15 in TIMEZONE: delete signups unconfirmed for 7 days, and
                   the raw bytes of bounce reports older than BOUNCE_RAW_DAYS (90)
    sources        every 60 s: poll the upstream feeds that are due (concurrently, bounded)

Every job coalesces missed runs into one, never overlaps itself, and has a misfire grace of
hours: a scheduler that was down over a fire time runs the missed fire once when it starts,
cutting the editions at that moment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from publisher.bounces.policy import purge_raw as purge_raw_reports
from publisher.digest.windows import zone
from publisher.logs import event
from publisher.models import SchedulerJob
from publisher.runtime import Runtime
from publisher.schedule import tasks
from publisher.schedule.times import Cadence, fire_at_or_after
from publisher.service.metrics import Metrics
from publisher.service.worker import Worker

log = logging.getLogger(__name__)

JOB_TABLE = str(SchedulerJob.__tablename__)
ZONE_PREFIX = "edition:"
LEGACY_PREFIX = "digest:"  # per-region jobs of earlier versions: removed on sync
DELIVER, FEEDS, SYNC, PURGE = "deliver", "feeds", "sync", "purge"
SOURCES = "sources"
DEFAULT_GRACE = timedelta(hours=12)


class WeeklyTrigger(BaseTrigger):
    """Fires at a ``Cadence``: exactly once a week on the zone's wall clock, DST included.

    APScheduler's CronTrigger fires twice when the time falls in an hour a fall-back change
    repeats; this one delegates to ``times.fire_at_or_after``, the function the tests check.
    """

    def __init__(self, cadence: Cadence) -> None:
        self.cadence = cadence

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        # After a fire, the next one after it (even if already past: APScheduler then counts the
        # missed runs and coalesces them); before any fire, the first one from now.
        if previous_fire_time is None:
            return fire_at_or_after(self.cadence, now).astimezone(self.cadence.tz)
        start = previous_fire_time + timedelta(microseconds=1)
        return fire_at_or_after(self.cadence, start).astimezone(self.cadence.tz)

    def __getstate__(self) -> dict[str, Any]:
        c = self.cadence
        return {"version": 1, "weekday": c.weekday, "at": c.at.isoformat(), "tz": c.tz_name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.cadence = Cadence(state["weekday"], time.fromisoformat(state["at"]), state["tz"])

    def __str__(self) -> str:
        return f"weekly[{self.cadence.describe()}]"

    def __repr__(self) -> str:
        return f"<WeeklyTrigger ({self.cadence.describe()})>"


class LeaderScheduler(BackgroundScheduler):
    """A BackgroundScheduler that processes no jobs once it is shut down.

    APScheduler 3.11's loop runs one more round after ``shutdown()``: a job due at that moment
    cannot be submitted (the executor is gone) but its next run time still moves on, so a digest
    due during a restart would be lost instead of run by the next leader as a missed fire.
    """

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        result: float | None = super()._process_jobs()
        return result


@dataclass
class JobContext:
    """What the jobs of one scheduler need; registered by name because jobs carry names only."""

    name: str
    runtime: Runtime
    metrics: Metrics
    runner: str
    grace: timedelta = DEFAULT_GRACE
    worker: Worker | None = None
    scheduler: LeaderScheduler | None = None
    feeds: tasks.Fingerprint | None = None
    busy: set[str] = field(default_factory=set)


_CONTEXTS: dict[str, JobContext] = {}


def _context(name: str) -> JobContext:
    found = _CONTEXTS.get(name)
    if found is None and len(_CONTEXTS) == 1:  # a job stored under another name: the one we have
        found = next(iter(_CONTEXTS.values()))
    if found is None:
        raise LookupError(f"no scheduler context {name!r} in this process")
    return found


# -- the jobs: module-level functions taking names only ------------------------------------------
def zone_job(context: str, zone_name: str) -> None:
    ctx = _context(context)
    rt = ctx.runtime
    ctx.busy.add(zone_name)
    try:
        outcome = tasks.run_zone_fire(rt, zone=zone_name, now=rt.now(), runner=ctx.runner)
    finally:
        ctx.busy.discard(zone_name)
    _queued(ctx, outcome)


def _queued(ctx: JobContext, outcome: tasks.ZoneOutcome) -> None:
    if outcome.queued:
        ctx.metrics.queued.labels(zone=outcome.zone).inc(outcome.queued)
        wake_delivery(ctx)


def deliver_job(context: str) -> None:
    ctx = _context(context)
    if ctx.worker is not None:
        ctx.worker.drain()


def feeds_job(context: str) -> None:
    ctx = _context(context)
    ctx.feeds, report = tasks.rebuild_feeds_if_changed(ctx.runtime, ctx.feeds)
    if report is not None:
        ctx.metrics.feed_builds.inc()
        ctx.metrics.feed_files.inc(len(report.changed))


def sync_job(context: str) -> None:
    ctx = _context(context)
    if ctx.scheduler is not None:
        sync_zone_jobs(ctx.scheduler, ctx)
    rt = ctx.runtime
    for outcome in tasks.resume_unfinished(
        rt, now=rt.now(), grace=ctx.grace, runner=ctx.runner, busy=set(ctx.busy)
    ):
        _queued(ctx, outcome)


def purge_job(context: str) -> None:
    ctx = _context(context)
    tasks.purge_signups(ctx.runtime, now=ctx.runtime.now())
    event(log, "bounces.raw_purged", reports=purge_raw_reports(ctx.runtime))


def sources_job(context: str) -> None:
    ctx = _context(context)
    if tasks.poll_due_sources(ctx.runtime) and ctx.scheduler is not None:
        ctx.scheduler.modify_job(FEEDS, next_run_time=datetime.now(UTC))  # new items: feeds now


def wake_delivery(ctx: JobContext) -> None:
    """Run the deliver job now rather than at its next interval (rows were just queued)."""
    if ctx.worker is not None and ctx.scheduler is not None:
        # APScheduler wakes on the real clock; "now" here is its time, not the Runtime's.
        ctx.scheduler.modify_job(DELIVER, next_run_time=datetime.now(UTC))


# -- the scheduler --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SyncReport:
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


def sync_zone_jobs(scheduler: BackgroundScheduler, ctx: JobContext) -> SyncReport:
    """One edition job per zone with an active reader, at its cadence; none for the others.

    A job whose cadence is unchanged keeps its stored next run time (a missed fire stays due);
    its arguments and misfire grace follow this scheduler's. Per-region digest jobs left by an
    earlier version are removed.
    """
    desired = tasks.scheduled_zones(ctx.runtime)
    grace = int(ctx.grace.total_seconds())
    existing = {}
    for job in scheduler.get_jobs():
        if job.id.startswith(ZONE_PREFIX):
            existing[job.id.removeprefix(ZONE_PREFIX)] = job
        elif job.id.startswith(LEGACY_PREFIX):
            scheduler.remove_job(job.id)
    added, changed = [], []
    for name, cadence in desired.items():
        job, args = existing.get(name), (ctx.name, name)
        if job is None:
            scheduler.add_job(
                zone_job, WeeklyTrigger(cadence), args=args, id=ZONE_PREFIX + name,
                name=f"weekly editions in {name}", replace_existing=True,
            )  # fmt: skip
            added.append(name)
            continue
        if getattr(job.trigger, "cadence", None) != cadence:
            scheduler.reschedule_job(job.id, trigger=WeeklyTrigger(cadence))
            changed.append(name)
        if tuple(job.args) != args or job.misfire_grace_time != grace:
            scheduler.modify_job(job.id, args=args, misfire_grace_time=grace)
    removed = sorted(existing.keys() - desired.keys())
    for name in removed:
        scheduler.remove_job(ZONE_PREFIX + name)
    report = SyncReport(tuple(added), tuple(changed), tuple(removed))
    if added or changed or removed:
        event(log, "schedule.synced", added=",".join(added), changed=",".join(changed),
              removed=",".join(removed))  # fmt: skip
    return report


def _job_kind(job_id: str) -> str:
    return "edition" if job_id.startswith(ZONE_PREFIX) else job_id


def _listener(ctx: JobContext) -> Any:
    outcomes = {
        EVENT_JOB_EXECUTED: "ok", EVENT_JOB_ERROR: "error", EVENT_JOB_MISSED: "missed",
        EVENT_JOB_MAX_INSTANCES: "overlapping",
    }  # fmt: skip

    def listen(e: JobEvent) -> None:
        outcome = outcomes.get(e.code, "other")
        ctx.metrics.jobs.labels(job=_job_kind(e.job_id), outcome=outcome).inc()
        if outcome == "error":
            exc = getattr(e, "exception", None)
            event(log, "job.failed", level=logging.ERROR, job=e.job_id, error=repr(exc))
        elif outcome == "missed":
            hint = "past the grace time; `publisher digests send --all` sends that week"
            event(log, "job.missed", level=logging.WARNING, job=e.job_id, hint=hint,
                  scheduled=str(e.scheduled_run_time))  # fmt: skip

    return listen


def build_scheduler(ctx: JobContext) -> LeaderScheduler:
    """A scheduler on the database's job store with this process's job defaults (not started)."""
    store = SQLAlchemyJobStore(engine=ctx.runtime.engine, tablename=JOB_TABLE)
    scheduler = LeaderScheduler(
        jobstores={"default": store},
        executors={"default": ThreadPoolExecutor(4)},
        job_defaults={
            "coalesce": True, "max_instances": 1,
            "misfire_grace_time": int(ctx.grace.total_seconds()),
        },
        timezone=UTC,
    )  # fmt: skip
    mask = EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
    scheduler.add_listener(_listener(ctx), mask)
    return scheduler


def start_jobs(ctx: JobContext, *, deliver_every: float = 30, feeds_every: float = 60) -> None:
    """Register ``ctx``, start its scheduler and (re)define the jobs; the caller must be leader."""
    scheduler = ctx.scheduler = build_scheduler(ctx)
    _CONTEXTS[ctx.name] = ctx
    now = datetime.now(UTC)  # APScheduler's clock (the first runs of the interval jobs)
    tz = zone(ctx.runtime.settings.timezone)
    scheduler.start(paused=True)  # bring the stored jobs up to date before any of them runs
    fixed = [
        (FEEDS, feeds_job, IntervalTrigger(seconds=feeds_every), now),
        (SYNC, sync_job, IntervalTrigger(seconds=60), None),
        (PURGE, purge_job, CronTrigger(hour=3, minute=15, timezone=tz), None),
        (SOURCES, sources_job, IntervalTrigger(seconds=60), now),
    ]
    if ctx.worker is not None:
        fixed.append((DELIVER, deliver_job, IntervalTrigger(seconds=deliver_every), now))
    else:
        _remove_if_present(scheduler, DELIVER)
    for job_id, func, trigger, first in fixed:
        extra = {"next_run_time": first} if first is not None else {}
        scheduler.add_job(
            func, trigger, args=(ctx.name,), id=job_id, name=job_id, replace_existing=True,
            **extra,
        )  # fmt: skip
    sync_job(ctx.name)
    scheduler.resume()


def _remove_if_present(scheduler: BackgroundScheduler, job_id: str) -> None:
    if scheduler.get_job(job_id) is not None:
        scheduler.remove_job(job_id)


def stop_jobs(ctx: JobContext) -> None:
    """Stop delivering (messages in flight finish), wait for running jobs, unregister ``ctx``."""
    if ctx.worker is not None:
        ctx.worker.stop()
    if ctx.scheduler is not None and ctx.scheduler.running:
        ctx.scheduler.shutdown(wait=True)
    _CONTEXTS.pop(ctx.name, None)
