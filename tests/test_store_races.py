"""Two creators of one unique row at once: the loser gets False and reads the winner's row.

In-process with two sessions on each database, and with two real processes inserting the same
digest row, held together on a barrier between "not there yet" and the insert.
"""

from __future__ import annotations

import multiprocessing
import queue
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from publisher.models import Digest, ZoneFire
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.store.rows import add_unless_taken
from publisher.store.schedule import start_fire
from tests.conftest import FIXED_NOW

WEEK = "2026-W48"


def _digest(region: str = "gt") -> Digest:
    return Digest(
        region=region, regions=region, week=WEEK, window_start=FIXED_NOW, window_end=FIXED_NOW,
        created=FIXED_NOW,
    )  # fmt: skip


def test_the_second_session_to_insert_a_key_gets_false(runtime: Runtime) -> None:
    with Session(runtime.engine) as first, Session(runtime.engine) as second:
        assert add_unless_taken(first, _digest())
        first.commit()
        loser = _digest()
        assert add_unless_taken(second, loser) is False
        assert loser not in second  # nothing of the losing row is left behind
        assert add_unless_taken(second, _digest("cr"))  # the session is still usable
        second.commit()
    with runtime.session() as s:
        rows = s.execute(sa.select(Digest.region).order_by(Digest.region)).scalars().all()
    assert rows == ["cr", "gt"]


def test_a_second_scheduler_starting_the_same_fire_joins_it(runtime: Runtime) -> None:
    with Session(runtime.engine) as first, Session(runtime.engine) as second:
        # Both looked (no fire yet), then the first inserted and committed.
        fire = ZoneFire(zone="UTC", week=WEEK, fire_time=FIXED_NOW, started=FIXED_NOW, runner="a")
        assert add_unless_taken(first, fire)
        first.commit()
        late = ZoneFire(zone="UTC", week=WEEK, fire_time=FIXED_NOW, started=FIXED_NOW, runner="b")
        assert add_unless_taken(second, late) is False
        second.rollback()
        joined = start_fire(
            second, zone="UTC", week=WEEK, fire_time=FIXED_NOW, now=FIXED_NOW, runner="b"
        )
        assert joined is not None and joined.runner == "b"


# --- two processes ------------------------------------------------------------------------


def _insert_in_child(
    settings_values: dict[str, Any], barrier: Any, results: Any, name: str
) -> None:
    """A child process: insert central-america's digest row once both have seen none."""
    outcome: dict[str, Any] = {"name": name}
    rt = Runtime(Settings(_env_file=None, **settings_values))  # type: ignore[call-arg]
    try:
        with rt.session() as s:
            assert s.execute(sa.select(sa.func.count()).select_from(Digest)).scalar_one() == 0
            barrier.wait(timeout=60)  # both have seen "no digest yet"
            row = _digest("central-america")
            row.subject = f"made by {name}"
            outcome["inserted"] = add_unless_taken(s, row)
            if not outcome["inserted"]:  # the loser reads the winner's row
                row = s.exec(select(Digest)).one()
            outcome["id"], outcome["subject"] = row.id, row.subject
    except Exception as e:  # reported to the parent, which fails the test with it
        outcome["error"] = f"{type(e).__name__}: {e}"
    finally:
        rt.close()
    results.put(outcome)


def test_two_processes_inserting_one_digest_agree_on_it(runtime: Runtime) -> None:
    values = {
        "database_url": runtime.settings.database_url,
        "var_dir": runtime.settings.var_dir,
        "feeds_dir": runtime.settings.feeds_dir,
        "secret_key": "test-secret",
        "base_url": runtime.settings.base_url,
    }
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    children = [
        ctx.Process(target=_insert_in_child, args=(values, barrier, results, name))
        for name in ("a", "b")
    ]
    for child in children:
        child.start()
    try:
        outcomes = [results.get(timeout=120) for _ in children]
    except queue.Empty:
        outcomes = []
    for child in children:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
    assert len(outcomes) == 2, "a child never reported"
    assert [o.get("error") for o in outcomes] == [None, None]
    assert sorted(o["inserted"] for o in outcomes) == [False, True]
    assert outcomes[0]["id"] == outcomes[1]["id"]
    assert outcomes[0]["subject"] == outcomes[1]["subject"]
    with runtime.session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Digest)).scalar_one() == 1
