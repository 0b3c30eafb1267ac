"""Exactly one active scheduler: the locks, a standby taking over, and two real processes
(the leader killed with SIGKILL mid-life) giving each reader one edition."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from publisher.models import Digest
from publisher.schedule.leader import LOCK_KEY, AdvisoryLock, leader_lock
from publisher.service.metrics import Metrics
from publisher.service.scheduler import SchedulerOptions, run_scheduler
from tests.conftest import FixedClockRuntime
from tests.delivery_data import add_subscribers
from tests.service_support import (
    add_recent_items,
    count,
    leave_missed_zone_job,
    ledger,
    processes,
    service_env,
    wait_until,
)

REGION = "central-america"


def test_the_lock_has_one_holder_at_a_time(runtime: FixedClockRuntime) -> None:
    first, second = leader_lock(runtime), leader_lock(runtime)
    try:
        assert first.acquire()
        assert first.acquire()  # already ours
        assert not second.acquire()
        assert first.held() and not second.held()
        first.release()
        assert not first.held()
        assert second.acquire()
        assert not first.acquire()
    finally:
        first.dispose()
        second.dispose()


@pytest.mark.postgres
def test_a_leader_cut_off_from_postgres_steps_down(pg_url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(pg_url)
    first, second = AdvisoryLock(engine), AdvisoryLock(engine)
    try:
        assert first.acquire()
        admin = pg_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as conn:
            (n,) = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted AND "
                "((classid::bigint << 32) | objid::bigint) = %s",
                ((LOCK_KEY + 2**64) % 2**64,),
            ).fetchone()  # type: ignore[misc]
        assert n == 1
        assert not first.held()  # the round trip fails: no longer leader
        assert second.acquire()
    finally:
        first.dispose()
        second.dispose()
        engine.dispose()


def test_a_standby_takes_over_when_the_leader_stops(runtime: FixedClockRuntime) -> None:
    options = SchedulerOptions(deliver=False, retry=0.2, check=0.2)
    stops = [threading.Event(), threading.Event()]
    gauges = [Metrics(), Metrics()]
    threads = [
        threading.Thread(
            target=run_scheduler,
            args=(runtime, stop),
            kwargs={"options": options, "metrics": metrics},
            daemon=True,
        )
        for stop, metrics in zip(stops, gauges, strict=True)
    ]
    leading = [lambda m=m: m.leader._value.get() == 1 for m in gauges]
    threads[0].start()
    wait_until(leading[0], 10, "the first scheduler to lead")
    threads[1].start()
    time.sleep(0.6)
    assert not leading[1]()  # standby
    stops[0].set()
    threads[0].join(10)
    began = time.monotonic()
    wait_until(leading[1], 5, "the standby to take over")
    assert time.monotonic() - began < 2
    stops[1].set()
    threads[1].join(10)
    assert not threads[1].is_alive()


@pytest.mark.postgres
def test_two_scheduler_processes_give_one_edition_each_and_survive_sigkill(
    pg_url: str, make_settings
) -> None:  # type: ignore[no-untyped-def]
    rt = FixedClockRuntime(make_settings(database_url=pg_url))
    rt.migrate()
    now = rt.fixed_now = datetime.now(UTC)
    add_recent_items(rt, REGION, now)
    add_subscribers(rt, 20)  # of a region, not a country: their zone is TIMEZONE (UTC)
    leave_missed_zone_job(rt, "UTC", now - timedelta(hours=1))  # due the moment one leads
    env = service_env(rt)
    args = ["scheduler", "--no-deliver", "--retry", "0.5"]
    with processes() as start:
        first = start(args, env)
        first.wait_for("scheduler.leader", 30)
        second = start(args, env)
        second.wait_for("scheduler.standby", 30)
        first.wait_for("editions.fired", 20)
        first.popen.send_signal(signal.SIGKILL)
        first.popen.wait(5)
        killed = time.monotonic()
        second.wait_for("scheduler.leader", 10)
        takeover = time.monotonic() - killed
        second.wait_for("feeds.built", 10)  # its jobs run (and its sync found nothing to redo)
        time.sleep(0.5)
        second.signal(signal.SIGTERM)
        assert second.wait(20) == 0
    fired = first.named("editions.fired") + second.named("editions.fired")
    assert [(e["zone"], e["queued"]) for e in fired] == [("UTC", 20)]
    assert second.named("editions.resumed") == []
    assert count(rt, Digest) == 1
    assert len(ledger(rt)) == 20
    assert takeover < 5, f"the standby took {takeover:.1f}s to take over"
    rt.close()


def test_one_sqlite_file_has_one_lock_whatever_the_var_dir(make_settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    one = FixedClockRuntime(make_settings(database_url=db, var_dir=tmp_path / "var-one"))
    two = FixedClockRuntime(make_settings(database_url=db, var_dir=tmp_path / "var-two"))
    first, second = leader_lock(one), leader_lock(two)
    try:
        assert first.acquire()
        assert not second.acquire()
        first.release()
        assert second.acquire()
    finally:
        first.dispose()
        second.dispose()
        one.close()
        two.close()


def test_two_scheduler_processes_on_one_sqlite_file_with_different_var_dirs(
    make_settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    rt = FixedClockRuntime(make_settings(database_url=f"sqlite:///{tmp_path / 'shared.db'}"))
    rt.migrate()
    args = ["scheduler", "--no-deliver", "--retry", "0.5"]
    with processes() as start:
        first = start(args, service_env(rt, PUBLISHER_VAR_DIR=str(tmp_path / "var-one")))
        first.wait_for("scheduler.leader", 30)
        second = start(args, service_env(rt, PUBLISHER_VAR_DIR=str(tmp_path / "var-two")))
        second.wait_for("scheduler.standby", 30)
        assert second.named("scheduler.leader") == []
        first.signal(signal.SIGTERM)
        assert first.wait(20) == 0
        second.wait_for("scheduler.leader", 10)  # the standby takes over once the leader stops
        second.signal(signal.SIGTERM)
        assert second.wait(20) == 0
    rt.close()
