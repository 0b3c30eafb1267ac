"""The fire's writer: on PostgreSQL a batch's edition and ledger rows are written on a second
thread while the next batch is prepared; SQLite writes one batch after another (SQLite and
PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from publisher.models import Digest, DigestRendition
from publisher.pipeline import edition_writer
from publisher.pipeline.edition_writer import EditionWriter
from publisher.pipeline.editions import fire_editions
from tests.conftest import FixedClockRuntime
from tests.edition_support import MONDAY, add_item, add_reader, per_reader_week

FRIDAY = MONDAY - timedelta(days=3)
SETS = [["gt"], ["sv"], ["hn"], ["gt", "sv"], ["sv", "hn"], ["gt", "hn"], ["central-america"]]


def _ledger(runtime: FixedClockRuntime) -> dict[int, int]:
    """Ledger rows per reader, whatever the week."""
    counts: dict[int, int] = {}
    for (sid, _week), n in per_reader_week(runtime).items():
        counts[sid] = counts.get(sid, 0) + n
    return counts


def _digests(runtime: FixedClockRuntime) -> int:
    with runtime.session() as session:
        return len(session.exec(select(Digest)).all())


def test_batches_are_written_behind_the_next_on_postgresql_and_in_step_on_sqlite(
    runtime: FixedClockRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n, slug in enumerate(["gt", "sv", "hn", "central-america"]):
        add_item(runtime, f"News {n}", [slug], published=FRIDAY, arrives=FRIDAY)
    readers = [add_reader(runtime, f"w{n}@example.org", SETS[n % len(SETS)]) for n in range(17)]
    monkeypatch.setattr(edition_writer, "CHUNK", 3)
    behind = runtime.engine.dialect.name == "postgresql"
    prepared_next = threading.Event()
    writers: list[str] = []
    overlapped: list[bool] = []
    real_write: Callable[..., None] = EditionWriter._write
    real_freeze: Callable[..., None] = EditionWriter._freeze
    freezes: list[int] = []

    def write(self: EditionWriter, session: Any, batch: Any) -> None:
        writers.append(threading.current_thread().name)
        if behind and len(writers) == 1:
            # the first batch's rows wait until the next batch is being prepared: in step, this
            # would wait for ever (the guard's timeout turns that into a failure)
            overlapped.append(prepared_next.wait(timeout=60))
        real_write(self, session, batch)

    def freeze(self: EditionWriter, session: Any, batch: Any) -> None:
        freezes.append(1)
        if len(freezes) == 2:
            prepared_next.set()
        real_freeze(self, session, batch)

    monkeypatch.setattr(EditionWriter, "_write", write)
    monkeypatch.setattr(EditionWriter, "_freeze", freeze)
    report = fire_editions(runtime, now=MONDAY, zone=None, runner="scheduler-a")
    assert len(writers) >= 3  # 17 readers in batches of 3 or more
    if behind:
        assert overlapped == [True]
        assert {name.startswith("edition-writer") for name in writers} == {True}
    else:
        assert set(writers) == {threading.main_thread().name}
    assert (report.readers, report.editions, report.queued) == (17, 17, 17)
    assert _ledger(runtime) == dict.fromkeys(readers, 1)
    again = fire_editions(runtime, now=MONDAY + timedelta(minutes=5), zone=None, runner="s")
    assert (again.already, again.queued) == (17, 0)


def test_a_group_split_between_batches_gets_its_other_language_once_the_first_has_committed(
    runtime: FixedClockRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One region set, English readers filling a batch and a Spanish one in the next: the
    next batch stores the Spanish rendition of a digest the batch before made."""
    add_item(runtime, "Item", ["gt"], published=FRIDAY, arrives=FRIDAY)
    readers = [add_reader(runtime, f"s{n}@example.org", ["gt"], locale=lang)
               for n, lang in enumerate(["en", "en", "es", "es", "en"])]  # fmt: skip
    monkeypatch.setattr(edition_writer, "CHUNK", 2)
    behind = runtime.engine.dialect.name == "postgresql"
    frozen_next = threading.Event()
    real_write: Callable[..., None] = EditionWriter._write
    real_freeze: Callable[..., None] = EditionWriter._freeze
    calls: list[str] = []

    def write(self: EditionWriter, session: Any, batch: Any) -> None:
        calls.append("write")
        if behind and calls.count("write") == 1:  # the first batch stays uncommitted until
            frozen_next.wait(timeout=60)  # the next one has made its digests
        real_write(self, session, batch)

    def freeze(self: EditionWriter, session: Any, batch: Any) -> None:
        calls.append("freeze")
        real_freeze(self, session, batch)
        if calls.count("freeze") == 2:
            frozen_next.set()

    monkeypatch.setattr(EditionWriter, "_write", write)
    monkeypatch.setattr(EditionWriter, "_freeze", freeze)
    report = fire_editions(runtime, now=MONDAY, zone=None, runner="scheduler-a")
    assert (report.editions, report.queued) == (5, 5)
    assert _ledger(runtime) == dict.fromkeys(readers, 1)
    assert _digests(runtime) == 1
    with runtime.session() as session:
        (rendition,) = session.exec(select(DigestRendition)).all()
    assert rendition.locale == "es" and "Guatemala" in rendition.subject


@pytest.mark.parametrize(
    ("step", "error"),
    [
        ("_write", RuntimeError),  # the second batch fails as it is written (behind, on PostgreSQL)
        ("_freeze", KeyboardInterrupt),  # Ctrl-C reaches the main thread as it prepares it
    ],
)
def test_a_fire_stopped_in_its_second_batch_keeps_the_first_whole_and_a_rerun_finishes(
    runtime: FixedClockRuntime, monkeypatch: pytest.MonkeyPatch, step: str,
    error: type[BaseException],
) -> None:  # fmt: skip
    """The batch written behind finishes whole; the one that failed and the one being
    prepared roll back with their digests; a re-run queues the rest, nobody twice."""
    add_item(runtime, "Item", ["central-america"], published=FRIDAY, arrives=FRIDAY)
    readers = [add_reader(runtime, f"k{n}@example.org", SETS[n % 3]) for n in range(9)]
    monkeypatch.setattr(edition_writer, "CHUNK", 3)
    real: Callable[..., None] = getattr(EditionWriter, step)
    calls: list[int] = []

    def failing(self: EditionWriter, session: Any, batch: Any) -> None:
        calls.append(1)
        real(self, session, batch)
        if len(calls) == 2:
            raise error(f"stopped in {step} of the second batch")

    monkeypatch.setattr(EditionWriter, step, failing)
    with pytest.raises(error, match="second batch"):
        fire_editions(runtime, now=MONDAY, zone=None, runner="scheduler-a")
    assert sorted(_ledger(runtime).values()) == [1, 1, 1]
    assert _digests(runtime) == 1
    monkeypatch.setattr(EditionWriter, step, real)
    again = fire_editions(runtime, now=MONDAY + timedelta(minutes=5), zone=None, runner="s")
    assert (again.already, again.queued) == (3, 6)
    assert _ledger(runtime) == dict.fromkeys(readers, 1)
