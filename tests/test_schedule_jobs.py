"""The scheduled jobs on a real store (SQLite file and PostgreSQL): one fire per time zone that has
readers, each reader's edition once per week through DST changes (Madrid, Santiago), reruns,
two fires at once, a fire left unfinished, an operator's send first, a held week; job sync with
readers and their zones; a missed fire run on start; feeds; purge.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from publisher.models import Consent, Edition, Subscriber, SubscriberStatus, ZoneFire
from publisher.pipeline.editions import fire_editions
from publisher.schedule import tasks
from publisher.schedule.times import zone_cadence
from publisher.service import jobs
from publisher.service.jobs import ZONE_PREFIX, JobContext, WeeklyTrigger
from publisher.service.metrics import Metrics
from publisher.store.holds import approve, hold
from publisher.store.subscribers import record_consent, set_timezone
from tests.conftest import FixedClockRuntime
from tests.delivery_data import add_subscribers, set_status
from tests.service_support import (
    add_items_in_week,
    add_recent_items,
    count,
    leave_missed_zone_job,
    ledger,
    wait_until,
)

REGION = "central-america"  # not a country: its readers' zone is TIMEZONE (UTC here)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def in_zone(rt: FixedClockRuntime, readers: list[tuple[int, str]], zone: str) -> None:
    with rt.session() as session:
        for sid, _ in readers:
            set_timezone(session, subscriber_id=sid, zone=zone)


def one_per_reader_week(rt: FixedClockRuntime) -> None:
    """No reader has two ledger rows, nor two editions, for one week."""
    rows = Counter((d.subscriber_id, d.week) for d in ledger(rt))
    assert rows and max(rows.values()) == 1, rows
    with rt.session() as session:
        editions = Counter((e.subscriber_id, e.week) for e in session.exec(select(Edition)))
    assert max(editions.values()) == 1, editions


def test_a_zone_fire_queues_the_week_just_ended_once(runtime: FixedClockRuntime) -> None:
    runtime.fixed_now = utc(2026, 11, 30, 8, 0, 30)  # Monday, just after the default fire
    add_items_in_week(runtime, "2026-W48", REGION)
    add_subscribers(runtime, 5)
    first = tasks.run_zone_fire(runtime, zone="UTC", now=runtime.now(), runner="a")
    assert (first.week, first.status, first.queued) == ("2026-W48", tasks.FIRED, 5)
    runtime.fixed_now += timedelta(hours=2)  # a second scheduler, a catch-up, a rerun
    again = tasks.run_zone_fire(runtime, zone="UTC", now=runtime.now(), runner="b")
    assert (again.week, again.status, again.queued) == ("2026-W48", tasks.ALREADY_DONE, 0)
    assert len(ledger(runtime)) == 5
    one_per_reader_week(runtime)
    with runtime.session() as session:
        fire = session.get(ZoneFire, ("UTC", "2026-W48"))
    assert fire is not None and fire.finished is not None and fire.queued == 5


def test_each_zone_fires_only_its_own_readers(runtime: FixedClockRuntime) -> None:
    runtime.fixed_now = utc(2026, 11, 30, 8)
    add_recent_items(runtime, REGION, runtime.now())
    utc_readers = add_subscribers(runtime, 2, prefix="utc")
    gt = add_subscribers(runtime, 3, prefix="gt")
    in_zone(runtime, gt, "America/Guatemala")
    done = tasks.run_zone_fire(runtime, zone="UTC", now=runtime.now(), runner="a")
    assert (done.status, done.queued) == (tasks.FIRED, 2)  # 02:00 in Guatemala: not theirs yet
    assert {d.subscriber_id for d in ledger(runtime)} == {sid for sid, _ in utc_readers}
    runtime.fixed_now = utc(2026, 11, 30, 14)  # Monday 08:00 in Guatemala
    done = tasks.run_zone_fire(runtime, zone="America/Guatemala", now=runtime.now(), runner="a")
    assert (done.week, done.status, done.queued) == ("2026-W48", tasks.FIRED, 3)
    one_per_reader_week(runtime)


# Both DST changes of two zones, north and south: the two instants a naive schedule could fire
# at (the repeated hour twice; the skipped time and an hour later) give one edition each.
@pytest.mark.parametrize(
    ("zone", "day", "at", "fires", "week"),
    [
        # Madrid fall back (Sun 25 Oct 03:00 -> 02:00): 02:30 happens twice
        ("Europe/Madrid", "sun", "02:30", [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)],
         "2026-W42"),
        # Madrid spring forward (Sun 29 Mar 02:00 -> 03:00): 02:30 does not exist, fires 03:30
        ("Europe/Madrid", "sun", "02:30", [utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 2, 30)],
         "2026-W12"),
        # Santiago fall back (Sat 4 Apr 24:00 -> 23:00): 23:30 happens twice
        ("America/Santiago", "sat", "23:30", [utc(2026, 4, 5, 2, 30), utc(2026, 4, 5, 3, 30)],
         "2026-W13"),
        # Santiago spring forward (Sun 6 Sep 00:00 -> 01:00): 00:30 does not exist
        ("America/Santiago", "sun", "00:30", [utc(2026, 9, 6, 4, 30), utc(2026, 9, 6, 5, 30)],
         "2026-W35"),
        # the Monday after each change, at the default time
        ("Europe/Madrid", "mon", "08:00", [utc(2026, 10, 26, 7), utc(2026, 10, 26, 8)],
         "2026-W43"),
        ("America/Santiago", "mon", "08:00", [utc(2026, 9, 7, 11), utc(2026, 9, 7, 12)],
         "2026-W36"),
    ],
)  # fmt: skip
def test_dst_changes_give_one_edition_per_reader(
    runtime: FixedClockRuntime, zone: str, day: str, at: str, fires: list[datetime], week: str
) -> None:
    runtime.settings = runtime.settings.model_copy(update={"digest_day": day, "digest_time": at})
    cadence = zone_cadence(runtime.settings, zone)
    trigger = WeeklyTrigger(cadence)
    before = fires[0] - timedelta(days=1)
    first = trigger.get_next_fire_time(None, before)
    assert first is not None and first.astimezone(UTC) == fires[0]
    nxt = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
    assert nxt is not None and nxt - first >= timedelta(days=7) - timedelta(hours=1)
    runtime.fixed_now = before
    add_recent_items(runtime, REGION, fires[0])
    readers = add_subscribers(runtime, 3)
    in_zone(runtime, readers, zone)
    outcomes = []
    for fire in fires:
        runtime.fixed_now = fire
        outcomes.append(tasks.run_zone_fire(runtime, zone=zone, now=fire, runner="x"))
    assert [o.week for o in outcomes] == [week, week]
    assert [o.status for o in outcomes] == [tasks.FIRED, tasks.ALREADY_DONE]
    assert len(ledger(runtime)) == 3
    one_per_reader_week(runtime)


def test_two_fires_at_once_give_each_reader_one_edition(runtime: FixedClockRuntime) -> None:
    """Two schedulers (a split brain, or a standby racing a slow leader) fire the same zone at
    the same moment: the editions' unique keys let only one edition per reader through."""
    runtime.fixed_now = utc(2026, 11, 30, 8)
    add_recent_items(runtime, REGION, runtime.now(), n=3)
    add_subscribers(runtime, 40)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def fire(runner: str) -> None:
        try:
            start.wait(10)
            # past the zone_fires record on purpose: straight to the editions, as a race would
            fire_editions(runtime, now=runtime.now(), zone="UTC", week="2026-W48",
                          runner=f"scheduler:{runner}")  # fmt: skip
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=fire, args=(name,)) for name in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(ledger(runtime)) == 40
    one_per_reader_week(runtime)
    again = tasks.run_zone_fire(runtime, zone="UTC", now=runtime.now(), runner="three")
    assert (again.status, again.queued) == (tasks.FIRED, 0)  # the record was new; nobody owed


def test_an_operator_send_first_then_the_scheduled_fire_sends_nothing_more(
    runtime: FixedClockRuntime,
) -> None:
    runtime.fixed_now = utc(2026, 11, 30, 7)  # before Monday's fire
    add_recent_items(runtime, REGION, runtime.now())
    add_subscribers(runtime, 3)
    sent = fire_editions(runtime, now=runtime.now(), zone=None, week="2026-W48", runner="cli")
    assert sent.queued == 3
    runtime.fixed_now = utc(2026, 11, 30, 8)
    fired = tasks.run_zone_fire(runtime, zone="UTC", now=runtime.now(), runner="sched")
    assert (fired.week, fired.status, fired.queued) == ("2026-W48", tasks.FIRED, 0)
    assert len(ledger(runtime)) == 3


def test_an_operator_send_of_a_region_queues_its_readers_then_only_who_joined_since(
    runtime: FixedClockRuntime,
) -> None:
    runtime.fixed_now = utc(2026, 11, 30, 9)
    add_items_in_week(runtime, "2026-W48", REGION)
    add_items_in_week(runtime, "2026-W48", "br")
    add_subscribers(runtime, 2)
    elsewhere = add_subscribers(runtime, 1, region="br", prefix="br")
    first = fire_editions(runtime, now=runtime.now(), zone=None, region=REGION.upper(),
                          runner="cli")  # fmt: skip
    assert (first.region, first.weeks, first.readers, first.queued) == (REGION, {"2026-W48"}, 2, 2)
    add_subscribers(runtime, 2, prefix="late")

    again = fire_editions(runtime, now=runtime.now(), zone=None, region=REGION, runner="cli")

    assert (again.already, again.queued) == (2, 2)
    assert len(ledger(runtime)) == 4
    assert elsewhere[0][0] not in {d.subscriber_id for d in ledger(runtime)}
    one_per_reader_week(runtime)


def test_a_held_week_waits_for_approval(runtime: FixedClockRuntime) -> None:
    runtime.fixed_now = utc(2026, 11, 30, 8)
    add_recent_items(runtime, REGION, runtime.now())
    add_subscribers(runtime, 2)
    with runtime.session() as session:
        hold(session, week="2026-W48", by="editor@example.org", now=runtime.now())
    held = tasks.run_zone_fire(runtime, zone="UTC", now=runtime.now(), runner="sched")
    assert (held.status, held.queued) == (tasks.HELD, 0)
    assert ledger(runtime) == []
    runtime.fixed_now += timedelta(hours=3)
    with runtime.session() as session:
        approve(session, week="2026-W48", by="editor@example.org", now=runtime.now())
    sent = fire_editions(runtime, now=runtime.now(), zone=None, week="2026-W48", runner="console")
    assert sent.queued == 2


def test_a_fire_left_unfinished_by_a_dead_scheduler_is_finished(
    runtime: FixedClockRuntime,
) -> None:
    runtime.fixed_now = utc(2026, 11, 30, 8, 5)
    add_recent_items(runtime, REGION, runtime.now())
    add_subscribers(runtime, 4)
    with runtime.session() as session:
        session.add(
            ZoneFire(
                zone="UTC", week="2026-W48", fire_time=utc(2026, 11, 30, 8),
                started=utc(2026, 11, 30, 8), runner="dead-host:1:x",
            )
        )  # fmt: skip
    grace = timedelta(hours=12)
    busy = tasks.resume_unfinished(runtime, now=runtime.now(), grace=grace, runner="b",
                                   busy={"UTC"})  # fmt: skip
    assert busy == []  # this process is running it right now
    done = tasks.resume_unfinished(runtime, now=runtime.now(), grace=grace, runner="b")
    assert [(d.zone, d.week, d.queued) for d in done] == [("UTC", "2026-W48", 4)]
    assert tasks.resume_unfinished(runtime, now=runtime.now(), grace=grace, runner="b") == []
    one_per_reader_week(runtime)


def test_next_fires_per_zone_and_a_bad_stored_zone(runtime: FixedClockRuntime) -> None:
    runtime.fixed_now = utc(2026, 11, 30, 9)  # Monday 09:00 UTC: UTC's fire has passed
    utc_readers = add_subscribers(runtime, 2, prefix="utc")
    in_zone(runtime, add_subscribers(runtime, 3, prefix="gt"), "America/Guatemala")
    with runtime.session() as session:  # a name tzdata no longer has (or a hand-made row)
        sub = session.get(Subscriber, utc_readers[0][0])
        assert sub is not None
        sub.timezone, sub.timezone_chosen = "Mars/Olympus", True
        session.add(sub)
    assert list(tasks.scheduled_zones(runtime)) == ["America/Guatemala", "UTC"]
    fires = tasks.next_fires(runtime, now=runtime.now())
    assert [(f.zone, f.at, f.week) for f in fires] == [
        ("America/Guatemala", utc(2026, 11, 30, 14), "2026-W48"),
        ("UTC", utc(2026, 12, 7, 8), "2026-W49"),
    ]


def _context(rt: FixedClockRuntime, name: str = "test") -> JobContext:
    return JobContext(name=name, runtime=rt, metrics=Metrics(), runner="test-runner")


def test_sync_follows_the_zones_of_active_readers(runtime: FixedClockRuntime) -> None:
    ctx = _context(runtime)
    scheduler = ctx.scheduler = jobs.build_scheduler(ctx)
    scheduler.start(paused=True)
    try:
        scheduler.add_job(
            jobs.deliver_job, "interval", seconds=60, args=("test",), id="digest:central-america"
        )  # a per-region job of an earlier version
        assert jobs.sync_zone_jobs(scheduler, ctx) == jobs.SyncReport()
        assert scheduler.get_job("digest:central-america") is None
        (sub_id, _), *_ = add_subscribers(runtime, 1, region="gt")
        set_status(runtime, sub_id, SubscriberStatus.pending)  # pending: not yet a reader
        assert jobs.sync_zone_jobs(scheduler, ctx).added == ()
        set_status(runtime, sub_id, SubscriberStatus.active)  # the zone's first reader
        assert jobs.sync_zone_jobs(scheduler, ctx).added == ("America/Guatemala",)
        job = scheduler.get_job(ZONE_PREFIX + "America/Guatemala")
        assert isinstance(job.trigger, WeeklyTrigger)
        assert job.trigger.cadence == zone_cadence(runtime.settings, "America/Guatemala")
        assert job.misfire_grace_time >= 3600 and job.coalesce and job.max_instances == 1
        missed = datetime.now(UTC) - timedelta(hours=2)  # a fire missed while down stays due
        scheduler.modify_job(job.id, next_run_time=missed)
        assert jobs.sync_zone_jobs(scheduler, ctx) == jobs.SyncReport()
        assert scheduler.get_job(job.id).next_run_time == missed
        runtime.settings = runtime.settings.model_copy(update={"digest_day": "fri"})
        assert jobs.sync_zone_jobs(scheduler, ctx).changed == ("America/Guatemala",)
        assert scheduler.get_job(job.id).trigger.cadence.describe() == (
            "fri 08:00 America/Guatemala"
        )
        with runtime.session() as session:  # the reader moves: the zone goes with them
            set_timezone(session, subscriber_id=sub_id, zone="Europe/Madrid")
        report = jobs.sync_zone_jobs(scheduler, ctx)
        assert (report.added, report.removed) == (("Europe/Madrid",), ("America/Guatemala",))
        set_status(runtime, sub_id, SubscriberStatus.unsubscribed)  # the last reader leaves
        assert jobs.sync_zone_jobs(scheduler, ctx).removed == ("Europe/Madrid",)
        assert [j.id for j in scheduler.get_jobs() if j.id.startswith(ZONE_PREFIX)] == []
    finally:
        scheduler.shutdown(wait=False)


@pytest.mark.parametrize(("grace", "runs"), [(timedelta(hours=12), 1), (timedelta(seconds=1), 0)])
def test_a_fire_missed_while_down_runs_once_on_start(
    runtime: FixedClockRuntime, grace: timedelta, runs: int
) -> None:
    now = runtime.fixed_now = datetime.now(UTC)  # APScheduler runs on the real clock
    add_recent_items(runtime, REGION, now)
    add_subscribers(runtime, 3)
    leave_missed_zone_job(runtime, "UTC", now - timedelta(hours=2))
    ctx = _context(runtime)
    ctx.grace = grace
    jobs.start_jobs(ctx)
    try:
        outcome = "ok" if runs else "missed"
        jobs_run = ctx.metrics.jobs.labels(job="edition", outcome=outcome)
        wait_until(lambda: jobs_run._value.get() == 1, 10, f"the edition job to be {outcome}")
        time.sleep(0.3)
        assert ctx.metrics.jobs.labels(job="edition", outcome="ok")._value.get() == runs
        job = ctx.scheduler.get_job(ZONE_PREFIX + "UTC") if ctx.scheduler else None
        assert job is not None and job.next_run_time > datetime.now(UTC)  # next week's fire
    finally:
        jobs.stop_jobs(ctx)
    assert len(ledger(runtime)) == 3 * runs
    assert count(runtime, ZoneFire) == runs


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
