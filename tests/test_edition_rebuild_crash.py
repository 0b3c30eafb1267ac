"""`digests rebuild` is crash-safe, on SQLite and PostgreSQL: the unsent editions are dropped in
the transaction that writes the new ones, so a crash anywhere leaves them in place, and running
the rebuild again gives every reader their edition of the week once, from its original window
start (a first edition's too), with the items that arrived since; a rebuild never reuses the
dropped editions' frozen digest, and a reader whose message left meanwhile keeps theirs."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

import publisher.pipeline.edition_tools as tools
import publisher.pipeline.edition_writer as writer
import publisher.store.edition_digests as batches
import publisher.store.edition_fragments as fragments
import publisher.store.editions as store
from publisher.models import Delivery, Digest, DigestRendition, Edition, Item
from publisher.pipeline.edition_tools import rebuild_week
from publisher.pipeline.editions import fire_editions
from publisher.pipeline.edits import delete_item
from tests.conftest import FixedClockRuntime
from tests.edition_support import MONDAY, add_item, add_reader, editions_of, ledger

WEEK = "2026-W48"
Unsent = tuple[int, int, int | None, datetime]
FRIDAY = MONDAY - timedelta(days=3)
FIRST_START = MONDAY - timedelta(days=7)  # the readers' first editions start a week before
LATER = MONDAY + timedelta(days=1, hours=1)


class Crash(RuntimeError):
    """The process dies here (the test's stand-in for a kill -9 or a lost connection)."""


def crash_on_first_call(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[int]:
    """Make ``owner.name`` raise Crash on its first call, then behave; returns the call count."""
    real: Callable[..., Any] = getattr(owner, name)
    calls = [0]

    def once(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise Crash(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, once)
    return calls


def state(rt: FixedClockRuntime) -> dict[str, list[tuple[Any, ...]]]:
    """Every edition, ledger row, digest and rendition, to compare before and after a crash."""
    tables = [Edition, Delivery, Digest, DigestRendition]
    with rt.engine.connect() as conn:
        return {
            t.__tablename__: sorted(map(tuple, conn.execute(sa.select(t.__table__))), key=repr)  # type: ignore[attr-defined]
            for t in tables
        }


def week_set_up(rt: FixedClockRuntime) -> tuple[dict[str, int], int]:
    """Four readers get their first W48 edition at MONDAY (three with items, one of them in
    Spanish, and one empty); a Mexico item arrives after the fire. (readers by name, the late
    item's id)"""
    add_item(rt, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    add_item(rt, "Honduras road", ["hn"], published=FRIDAY, arrives=FRIDAY)
    readers = {
        "gt": add_reader(rt, "gt@example.org", ["gt"]),
        "gt-es": add_reader(rt, "gt-es@example.org", ["gt"], locale="es"),
        "hn": add_reader(rt, "hn@example.org", ["hn"]),
        "mx": add_reader(rt, "mx@example.org", ["mx"]),
    }
    rt.fixed_now = MONDAY
    fire_editions(rt, now=MONDAY, zone=None, runner="test")
    assert editions_of(rt, readers["mx"])[0].digest_id is None  # nothing for Mexico yet
    late = add_item(rt, "Mexico late", ["mx"], published=MONDAY, arrives=MONDAY + timedelta(1))
    rt.fixed_now = LATER
    return readers, late


def items_of(rt: FixedClockRuntime, edition: Edition) -> list[int]:
    if edition.digest_id is None:
        return []
    with rt.session() as session:
        digest = session.get(Digest, edition.digest_id)
        assert digest is not None
        return [int(i) for i in json.loads(digest.item_ids)]


def assert_rebuilt(rt: FixedClockRuntime, readers: dict[str, int], late: int) -> None:
    """Each reader: one W48 edition, cut at LATER, from the first start, with their items;
    one pending ledger row each; no digest left without an edition; the Spanish rendition."""
    titles = {"gt": ["Guatemala shelter"], "gt-es": ["Guatemala shelter"],
              "hn": ["Honduras road"], "mx": ["Mexico late"]}  # fmt: skip
    for name, sid in readers.items():
        (edition,) = editions_of(rt, sid)
        assert (edition.week, edition.window_start, edition.cutoff) == (WEEK, FIRST_START, LATER)
        with rt.session() as session:
            got = [session.get(Item, i) for i in items_of(rt, edition)]
            assert [i.title for i in got if i is not None] == titles[name]
    assert items_of(rt, editions_of(rt, readers["mx"])[0]) == [late]
    rows = [(d.subscriber_id, d.week, d.state) for d in ledger(rt)]
    assert sorted(rows) == sorted((sid, WEEK, "pending") for sid in readers.values())
    with rt.session() as session:
        used = {e.digest_id for e in session.exec(select(Edition))}
        assert {d.id for d in session.exec(select(Digest))} == used - {None}
        renditions = {(r.digest_id, r.locale) for r in session.exec(select(DigestRendition))}
    assert (editions_of(rt, readers["gt-es"])[0].digest_id, "es") in renditions


CRASH_POINTS = {
    # where the rebuild dies: before the fire, when the fire's transaction has dropped the old
    # editions and freezes the new digest, and when it has already inserted some new editions
    "fire": (tools, "fire_editions"),
    "freeze": (batches, "add_digests"),
    "fragments": (fragments, "add_fragments"),  # the digests are in, their fragments are not
    "write": (store, "add_editions"),
}


@pytest.mark.parametrize("point", sorted(CRASH_POINTS))
def test_a_crashed_rebuild_leaves_the_editions_and_runs_again(
    runtime: FixedClockRuntime, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    readers, late = week_set_up(runtime)
    before = state(runtime)
    for sid in readers.values():
        assert [e.window_start for e in editions_of(runtime, sid)] == [FIRST_START]
    if point == "write":
        monkeypatch.setattr(writer, "CHUNK", 1)  # a fire would commit each reader on its own
        real = store.add_editions
        calls = [0]

        def insert_then_crash(session: Any, *, rows: Any) -> None:
            calls[0] += 1
            real(session, rows=rows)
            if calls[0] == 1:  # the new editions are in the rebuild's transaction; it dies
                raise Crash("add_editions")

        monkeypatch.setattr(store, "add_editions", insert_then_crash)
    else:
        owner, name = CRASH_POINTS[point]
        crash_on_first_call(monkeypatch, owner, name)
    with pytest.raises(Crash):
        rebuild_week(runtime, week=WEEK, now=LATER, runner="test")
    assert state(runtime) == before  # nothing dropped, nothing half-written
    report = rebuild_week(runtime, week=WEEK, now=LATER, runner="test")
    assert (report.dropped, report.frozen) == (4, 0)
    assert report.fire is not None and report.fire.editions == 4
    assert_rebuilt(runtime, readers, late)
    again = rebuild_week(runtime, week=WEEK, now=LATER, runner="test")  # re-runnable, same result
    assert (again.dropped, again.frozen) == (4, 0)
    assert_rebuilt(runtime, readers, late)


def test_a_rebuild_at_the_cutoff_instant_leaves_out_an_item_deleted_then(
    runtime: FixedClockRuntime,
) -> None:
    """The property test's case: same region set, week and window as the dropped edition, so
    the same digest key; the rebuild must not reuse that frozen digest and its deleted item."""
    shelter = add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    road = add_item(runtime, "Guatemala road", ["gt"], published=FRIDAY, arrives=FRIDAY)
    sid = add_reader(runtime, "gt@example.org", ["gt"])
    runtime.fixed_now = MONDAY
    fire_editions(runtime, now=MONDAY, zone=None, runner="test")
    (first,) = editions_of(runtime, sid)
    assert sorted(items_of(runtime, first)) == sorted([shelter, road])
    with runtime.session() as session:
        assert delete_item(session, item_id=shelter, now=MONDAY)
    rebuild_week(runtime, week=WEEK, now=MONDAY, runner="test")
    (edition,) = editions_of(runtime, sid)
    assert (edition.window_start, edition.cutoff) == (FIRST_START, MONDAY)
    assert items_of(runtime, edition) == [road]
    with runtime.session() as session:
        digests = list(session.exec(select(Digest)))
    assert [d.id for d in digests] == [edition.digest_id]  # the stale one is gone


def test_a_reader_whose_message_left_meanwhile_keeps_their_edition(
    runtime: FixedClockRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker takes one reader's message between the rebuild's choice and its transaction:
    that reader keeps edition and ledger row (no second message); the others are rebuilt."""
    readers, late = week_set_up(runtime)
    taken = readers["hn"]
    real = store.unsent_editions

    def then_a_worker_sends(
        session: Any, **kwargs: Any
    ) -> list[tuple[int, int, int | None, datetime]]:
        found = real(session, **kwargs)
        with runtime.engine.begin() as conn:
            conn.execute(
                sa.update(Delivery.__table__)  # type: ignore[attr-defined]
                .where(Delivery.__table__.c.subscriber_id == taken)  # type: ignore[attr-defined]
                .values(state="sending")
            )
        return found

    monkeypatch.setattr(store, "unsent_editions", then_a_worker_sends)
    (kept_before,) = editions_of(runtime, taken)
    report = rebuild_week(runtime, week=WEEK, now=LATER, runner="test")
    assert (report.dropped, report.frozen) == (3, 1)
    (kept,) = editions_of(runtime, taken)
    assert (kept.id, kept.cutoff, kept.digest_id) == (kept_before.id, MONDAY, kept_before.digest_id)
    states = {d.subscriber_id: d.state for d in ledger(runtime)}
    assert states.pop(taken) == "sending"
    assert set(states.values()) == {"pending"} and len(states) == 3
    for name, sid in readers.items():
        if sid != taken:
            (edition,) = editions_of(runtime, sid)
            assert (edition.window_start, edition.cutoff) == (FIRST_START, LATER)
    assert items_of(runtime, editions_of(runtime, readers["mx"])[0]) == [late]
