"""The scheduled jobs on a real store (SQLite file and PostgreSQL): digests once per (region, week)
through DST changes and reruns, job sync with subscribers, a missed fire run on start, feeds, purge.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import select

from publisher.digest.windows import iso_week_of
from publisher.models import Consent, Digest, DigestRun, Subscriber, SubscriberStatus
from publisher.schedule import tasks
from publisher.schedule.times import region_cadence
from publisher.service import jobs
from publisher.service.jobs import DIGEST_PREFIX, JobContext, WeeklyTrigger
from publisher.service.metrics import Metrics
from publisher.store.subscribers import record_consent
from tests.conftest import FixedClockRuntime
from tests.delivery_data import add_subscribers, set_status
from tests.edition_support import add_item
from tests.service_support import (
    add_items_in_week,
    count,
    leave_missed_digest_job,
    ledger,
    set_cadence,
    wait_until,
)

REGION = "central-america"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_weekly_digest_queues_the_week_just_ended_once(runtime: FixedClockRuntime) -> None:
    runtime.fixed_now = utc(2026, 11, 30, 8, 0, 30)  # Monday, just after the default fire
    add_items_in_week(runtime, "2026-W48", REGION)
    add_items_in_week(runtime, "2026-W49", REGION)  # next week's: not in this digest
    add_subscribers(runtime, 5)
    first = tasks.run_weekly_digest(runtime, region=REGION, now=runtime.now(), runner="a")
    assert (first.week, first.status, first.queued) == ("2026-W48", tasks.QUEUED, 5)
    runtime.fixed_now += timedelta(hours=2)  # a second scheduler, a catch-up, a rerun
    again = tasks.run_weekly_digest(runtime, region=REGION, now=runtime.now(), runner="b")
    assert (again.week, again.status, again.queued) == ("2026-W48", tasks.ALREADY_DONE, 0)
    assert count(runtime, Digest) == 1
    assert len(ledger(runtime)) == 5
    with runtime.session() as session:
        run = session.get(DigestRun, (REGION, "2026-W48"))
    assert run is not None and run.finished is not None and run.queued == 5


@pytest.mark.parametrize(
    ("day", "at", "fires", "week"),
    [
        # fall back: 01:30 happens twice on 1 Nov (a cron trigger fires at both)
        ("sun", "01:30", [utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)], "2026-W43"),
        # spring forward: 02:30 does not exist on 8 Mar; the fire comes at 03:30 EDT
        ("sun", "02:30", [utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 8, 30)], "2026-W09"),
        # a Monday digest in the week after each change
        ("mon", "08:00", [utc(2026, 11, 2, 13), utc(2026, 11, 2, 14)], "2026-W44"),
        ("mon", "08:00", [utc(2026, 3, 9, 12), utc(2026, 3, 9, 13)], "2026-W10"),
    ],
)
def test_dst_changes_give_one_digest(
    runtime: FixedClockRuntime, day: str, at: str, fires: list[datetime], week: str
) -> None:
    set_cadence(runtime, REGION, day=day, at=at, tz="America/New_York")
    # An edition holds what became visible in the week before its fire (a first reader's window)
    add_items_in_week(runtime, iso_week_of(fires[0] - timedelta(days=5), ZoneInfo("UTC")), REGION)
    add_subscribers(runtime, 3)
    outcomes = []
    for fire in fires:
        runtime.fixed_now = fire
        outcomes.append(tasks.run_weekly_digest(runtime, region=REGION, now=fire, runner="x"))
    assert [o.week for o in outcomes] == [week, week]
    assert [o.status for o in outcomes] == [tasks.QUEUED, tasks.ALREADY_DONE]
    assert count(runtime, Digest) == 1
    assert len(ledger(runtime)) == 3


def test_a_week_without_items_is_skipped(runtime: FixedClockRuntime) -> None:
    runtime.fixed_now = utc(2026, 11, 30, 9)
    add_subscribers(runtime, 2)
    outcome = tasks.run_weekly_digest(runtime, region=REGION, now=runtime.now(), runner="a")
    assert outcome.status == tasks.SKIPPED_WEEK
    assert ledger(runtime) == []


def test_a_run_left_unfinished_by_a_dead_scheduler_is_finished(runtime: FixedClockRuntime) -> None:
    runtime.fixed_now = utc(2026, 11, 30, 8, 5)
    add_items_in_week(runtime, "2026-W48", REGION)
    add_subscribers(runtime, 4)
    with runtime.session() as session:
        session.add(
            DigestRun(
                region=REGION,
                week="2026-W48",
                fire_time=utc(2026, 11, 30, 8),
                started=utc(2026, 11, 30, 8),
                runner="dead-host:1:x",
            )
        )
    grace = timedelta(hours=12)
    busy = tasks.resume_unfinished(runtime, now=runtime.now(), grace=grace, runner="b",
                                   busy={REGION})  # fmt: skip
    assert busy == []  # this process is running it right now
    done = tasks.resume_unfinished(runtime, now=runtime.now(), grace=grace, runner="b")
    assert [(d.region, d.week, d.queued) for d in done] == [(REGION, "2026-W48", 4)]
    assert tasks.resume_unfinished(runtime, now=runtime.now(), grace=grace, runner="b") == []


def _context(rt: FixedClockRuntime, name: str = "test") -> JobContext:
    return JobContext(name=name, runtime=rt, metrics=Metrics(), runner="test-runner")


def test_sync_follows_active_subscribers_and_overrides(runtime: FixedClockRuntime) -> None:
    ctx = _context(runtime)
    scheduler = ctx.scheduler = jobs.build_scheduler(ctx)
    scheduler.start(paused=True)
    try:
        assert jobs.sync_region_jobs(scheduler, ctx) == jobs.SyncReport()
        (sub_id, _), *_ = add_subscribers(runtime, 1)
        set_status(runtime, sub_id, SubscriberStatus.pending)  # pending: not yet a reader
        assert jobs.sync_region_jobs(scheduler, ctx).added == ()
        set_status(runtime, sub_id, SubscriberStatus.active)  # the region's first reader
        assert jobs.sync_region_jobs(scheduler, ctx).added == (REGION,)
        job = scheduler.get_job(DIGEST_PREFIX + REGION)
        assert isinstance(job.trigger, WeeklyTrigger)
        assert job.trigger.cadence == region_cadence(runtime.settings)
        assert job.misfire_grace_time >= 3600 and job.coalesce and job.max_instances == 1
        missed = datetime.now(UTC) - timedelta(hours=2)  # a fire missed while down stays due
        scheduler.modify_job(job.id, next_run_time=missed)
        assert jobs.sync_region_jobs(scheduler, ctx) == jobs.SyncReport()
        assert scheduler.get_job(job.id).next_run_time == missed
        set_cadence(runtime, REGION, day="fri", at="17:00", tz="America/Guatemala")
        assert jobs.sync_region_jobs(scheduler, ctx).changed == (REGION,)
        assert scheduler.get_job(job.id).trigger.cadence.describe() == "fri 17:00 America/Guatemala"
        set_status(runtime, sub_id, SubscriberStatus.unsubscribed)  # the last reader leaves
        assert jobs.sync_region_jobs(scheduler, ctx).removed == (REGION,)
        assert scheduler.get_job(job.id) is None
    finally:
        scheduler.shutdown(wait=False)


@pytest.mark.parametrize(("grace", "runs"), [(timedelta(hours=12), 1), (timedelta(seconds=1), 0)])
def test_a_fire_missed_while_down_runs_once_on_start(
    runtime: FixedClockRuntime, grace: timedelta, runs: int
) -> None:
    now = datetime.now(UTC)  # APScheduler runs on the real clock
    for n in range(2):  # visible within the week before the fire: a first reader's window
        day = now - timedelta(days=1, hours=n)
        add_item(runtime, f"News {n}", [REGION], published=day, arrives=day)
    runtime.fixed_now = now
    add_subscribers(runtime, 3)
    leave_missed_digest_job(runtime, REGION, now - timedelta(hours=2))
    ctx = _context(runtime)
    ctx.grace = grace
    jobs.start_jobs(ctx)
    try:
        outcome = "ok" if runs else "missed"
        jobs_run = ctx.metrics.jobs.labels(job="digest", outcome=outcome)
        wait_until(lambda: jobs_run._value.get() == 1, 10, f"the digest job to be {outcome}")
        time.sleep(0.3)
        assert ctx.metrics.jobs.labels(job="digest", outcome="ok")._value.get() == runs
        job = ctx.scheduler.get_job(DIGEST_PREFIX + REGION) if ctx.scheduler else None
        assert job is not None and job.next_run_time > datetime.now(UTC)  # next week's fire
    finally:
        jobs.stop_jobs(ctx)
    assert count(runtime, Digest) == runs
    assert len(ledger(runtime)) == 3 * runs


def test_feeds_are_rebuilt_only_when_items_change(runtime: FixedClockRuntime) -> None:
    first, report = tasks.rebuild_feeds_if_changed(runtime, None)
    assert report is not None
    assert tasks.rebuild_feeds_if_changed(runtime, first) == (first, None)
    add_items_in_week(runtime, "2026-W48", REGION, n=1)
    second, report = tasks.rebuild_feeds_if_changed(runtime, first)
    assert second != first and report is not None and report.changed


def test_unconfirmed_signups_are_purged_after_seven_days(runtime: FixedClockRuntime) -> None:
    now = runtime.fixed_now
    old, renewed, recent, active, confirmed_once = (
        s for s, _ in add_subscribers(runtime, 5, prefix="p")
    )
    with runtime.session() as session:
        for sid in (old, renewed, recent, confirmed_once):
            sub = session.get(Subscriber, sid)
            assert sub is not None
            sub.status = SubscriberStatus.pending
            sub.created = now - timedelta(days=2 if sid == recent else 8)
            sub.confirmed = now - timedelta(days=30) if sid == confirmed_once else None
            session.add(sub)
        session.execute(
            sa.update(Subscriber)
            .where(Subscriber.id == active)  # type: ignore[arg-type]
            .values(created=now - timedelta(days=90))
        )
        record_consent(session, subscriber_id=old, action="signup", now=now - timedelta(days=8))
        record_consent(session, subscriber_id=renewed, action="signup", now=now - timedelta(days=2))
    assert tasks.purge_signups(runtime, now=now) == 1
    with runtime.session() as session:
        left = {s.id for s in session.exec(select(Subscriber))}
        consents = {c.subscriber_id for c in session.exec(select(Consent))}
    assert left == {renewed, recent, active, confirmed_once}
    assert old not in consents
