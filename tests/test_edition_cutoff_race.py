"""The cutoff barrier: nothing stamped visible before a fire's cutoff commits after it read.

An import stamps ``visible_at`` inside its transaction and commits later; a fire cuts at ``now``
and reads the window's items. An item stamped before the cutoff that commits after the fire read
would be in no window (the reader's next one starts at the cutoff). So an import holds the stamp
lock (shared on PostgreSQL, the write lock on SQLite) and reads the clock only once it holds it,
and a fire takes it exclusively before reading. Threads and events put the two in the losing
orders; nothing sleeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from publisher.intake.records import RawRecord
from publisher.models import Digest, Item
from publisher.pipeline import editions as pipeline
from publisher.pipeline.editions import fire_editions
from publisher.pipeline.intake import import_records
from tests.conftest import FixedClockRuntime
from tests.edition_support import MONDAY, NEXT_MONDAY, add_reader, editions_of

WAIT = 60  # seconds before a stuck thread fails the test instead of hanging it


def _import(rt: FixedClockRuntime, *, now: datetime) -> int:
    record = RawRecord(source="t", line=1, title="Late shelter report", summary="Arrived late.",
                       published=now - timedelta(days=1), regions=["gt"])  # fmt: skip
    with rt.session() as session:
        report = import_records(session, records=[record], tree=rt.tree, inferrer=rt.inferrer,
                                now=now, clock=rt.now)  # fmt: skip
        assert len(report.ids) == 1
        return report.ids[0]


def _run(target: Callable[[], object], errors: list[BaseException]) -> threading.Thread:
    def wrapped() -> None:
        try:
            target()
        except BaseException as e:  # handed to the test thread
            errors.append(e)

    thread = threading.Thread(target=wrapped, daemon=True)
    thread.start()
    return thread


def _has(rt: FixedClockRuntime, reader: int, week: str, item_id: int) -> bool:
    (edition,) = [e for e in editions_of(rt, reader) if e.week == week]
    if edition.digest_id is None:
        return False
    with rt.session() as session:
        digest = session.get(Digest, edition.digest_id)
        assert digest is not None
        return item_id in json.loads(digest.item_ids or "[]")


def test_a_fire_waits_for_an_import_that_stamped_before_it(runtime: FixedClockRuntime) -> None:
    """The import stamped its item (an hour before the cutoff) and has not committed when the
    fire starts: the fire waits at the barrier, then its edition holds the item."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("the wait is observed in pg_locks; SQLite's write lock is the same barrier")
    reader = add_reader(runtime, "ana@example.org", ["gt"])
    runtime.fixed_now = MONDAY - timedelta(hours=1)
    stamped, release, fired = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []
    found: list[int] = []

    def slow_import() -> None:
        record = RawRecord(source="t", line=1, title="Late shelter report", summary="Late.",
                           published=MONDAY - timedelta(days=1), regions=["gt"])  # fmt: skip
        with runtime.session() as session:
            report = import_records(session, records=[record], tree=runtime.tree,
                                    inferrer=runtime.inferrer, now=runtime.fixed_now,
                                    clock=runtime.now)  # fmt: skip
            found.extend(report.ids)
            stamped.set()
            assert release.wait(WAIT)
        # committed here

    def fire() -> None:
        fire_editions(runtime, now=MONDAY, zone=None, runner="scheduler-test")
        fired.set()

    importer = _run(slow_import, errors)
    assert stamped.wait(WAIT) and not errors
    runtime.fixed_now = MONDAY
    firer = _run(fire, errors)
    waiting = sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    with runtime.engine.connect() as conn:
        while not conn.execute(waiting).scalar_one():  # the fire is queued behind the import
            assert firer.is_alive() and not errors, errors
            fired.wait(0.01)
    assert not fired.is_set()
    release.set()
    for thread in (importer, firer):
        thread.join(WAIT)
    assert not errors, errors
    (item_id,) = found
    assert _has(runtime, reader, "2026-W48", item_id)


def test_an_import_after_the_fence_stamps_at_or_after_the_cutoff(
    runtime: FixedClockRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fire has passed the barrier and is about to read; an import whose ``now`` was read
    earlier (a slow feed fetch) commits now: it stamps with the clock read under the lock, so
    the item is in no window cut here and in the next edition, exactly once."""
    reader = add_reader(runtime, "bea@example.org", ["gt"])
    reading, go = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    real = pipeline.visible_between

    def paused(*args: object, **kwargs: object) -> object:
        reading.set()
        assert go.wait(WAIT)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "visible_between", paused)
    runtime.fixed_now = MONDAY
    firer = _run(lambda: fire_editions(runtime, now=MONDAY, zone=None, runner="scheduler-test"),
                 errors)  # fmt: skip
    assert reading.wait(WAIT) and not errors
    item_id = _import(runtime, now=MONDAY - timedelta(minutes=5))
    go.set()
    firer.join(WAIT)
    assert not errors, errors
    monkeypatch.setattr(pipeline, "visible_between", real)
    with runtime.session() as session:
        stamp = session.execute(sa.select(Item.visible_at).where(Item.id == item_id)).scalar_one()
    assert stamp == MONDAY
    assert not _has(runtime, reader, "2026-W48", item_id)
    runtime.fixed_now = NEXT_MONDAY
    fire_editions(runtime, now=NEXT_MONDAY, zone=None, runner="scheduler-test")
    assert _has(runtime, reader, "2026-W49", item_id)
