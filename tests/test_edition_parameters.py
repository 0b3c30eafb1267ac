"""A fire's queries bind few parameters, on SQLite and PostgreSQL: thousands of readers a page
go to PostgreSQL as one array per query (binding thousands of parameters made its fire slow),
and to SQLite as IN lists of bounded size; every reader still gets their one edition a week."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from itertools import combinations
from typing import Any

import sqlalchemy as sa

from publisher.models import SubscriberStatus
from publisher.pipeline.edition_tools import rebuild_week
from publisher.pipeline.editions import FireReport, fire_editions
from publisher.store.subscribers import NewSubscriber, bulk_add
from tests.conftest import FixedClockRuntime
from tests.edition_support import MONDAY, NEXT_MONDAY, add_item, ledger, per_reader_week

READERS = 3_000
COUNTRIES = ("bz", "cr", "gt", "hn", "mx", "ni", "pa", "sv")
SETS = list(combinations(COUNTRIES, 2))  # 28 region sets; reader i follows set i mod 28
PG_MOST = 50  # parameters in one statement on PostgreSQL, whatever the number of readers
FRIDAY = MONDAY - timedelta(days=3)


@contextmanager
def largest_binding(rt: FixedClockRuntime) -> Iterator[list[int]]:
    """The parameter counts of every statement run meanwhile (one row of an executemany)."""
    counts: list[int] = []

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:  # fmt: skip
        rows = parameters if executemany else [parameters]
        counts.append(max((len(row or ()) for row in rows), default=0))

    sa.event.listen(rt.engine, "before_cursor_execute", count)
    try:
        yield counts
    finally:
        sa.event.remove(rt.engine, "before_cursor_execute", count)


def check_bounded(rt: FixedClockRuntime, counts: list[int]) -> None:
    if rt.engine.dialect.name == "postgresql":
        assert max(counts) <= PG_MOST
    else:
        assert max(counts) < READERS  # the id lists go in parts, not one parameter per reader


def readers_of(*countries: str) -> set[int]:
    """Which readers (by position) follow one of ``countries``."""
    return {i for i in range(READERS) if set(SETS[i % len(SETS)]) & set(countries)}


def test_a_fire_of_thousands_binds_few_parameters_and_gives_each_reader_one_edition(
    runtime: FixedClockRuntime,
) -> None:
    add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    rows = [
        NewSubscriber(email=f"reader{i}@example.org", regions=SETS[i % len(SETS)],
                      status=SubscriberStatus.active, locale=("en", "es")[i % 2])
        for i in range(READERS)
    ]  # fmt: skip
    with runtime.session() as session:
        ids = bulk_add(session, rows=rows, now=FRIDAY)
    runtime.fixed_now = MONDAY

    with largest_binding(runtime) as counts:
        first = fire_editions(runtime, now=MONDAY, zone=None, runner="test")
    check_bounded(runtime, counts)
    guatemala = {ids[i] for i in readers_of("gt")}
    assert (first.editions, first.readers, first.region_sets) == (READERS, READERS, len(SETS))
    assert first.queued == len(guatemala) and first.empty == READERS - len(guatemala)
    assert len(first.digest_ids) == len([s for s in SETS if "gt" in s])  # one per set with items
    assert {d.subscriber_id for d in ledger(runtime)} == guatemala

    with largest_binding(runtime) as counts:
        again = fire_editions(runtime, now=MONDAY, zone=None, runner="test")
    check_bounded(runtime, counts)
    assert (again.already, again.editions, again.queued) == (READERS, 0, 0)

    add_item(runtime, "Honduras bridge", ["hn"], published=MONDAY, arrives=MONDAY)
    runtime.fixed_now = later = MONDAY + timedelta(hours=2)
    with largest_binding(runtime) as counts:
        rebuilt = rebuild_week(runtime, week="2026-W48", now=later, runner="test")
    if runtime.engine.dialect.name == "postgresql":  # SQLite's reader page takes the list whole
        assert max(counts) <= PG_MOST
    honduras = {ids[i] for i in readers_of("hn")}
    assert rebuilt.dropped == READERS and rebuilt.fire is not None
    assert rebuilt.fire.queued == len(guatemala | honduras)
    assert set(per_reader_week(runtime).values()) == {1}

    add_item(runtime, "Panama canal", ["pa"], published=later, arrives=later)
    runtime.fixed_now = NEXT_MONDAY
    with largest_binding(runtime) as counts:
        following: FireReport = fire_editions(runtime, now=NEXT_MONDAY, zone=None, runner="test")
    check_bounded(runtime, counts)
    panama = {ids[i] for i in readers_of("pa")}
    assert following.editions == READERS and following.queued == len(panama)  # windows moved on
    assert per_reader_week(runtime) == {
        **{(s, "2026-W48"): 1 for s in guatemala | honduras},
        **{(s, "2026-W49"): 1 for s in panama},
    }
