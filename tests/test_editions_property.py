"""Every item reaches each reader exactly once, whatever happens in between (issue 10's proof).

Hypothesis draws interleavings of imports (past, late with an old date, future-dated, several
regions, nested regions), readers joining, leaving, adding and dropping regions and moving time
zones, scheduled fires per zone (a clock that advances to DIGEST_DAY DIGEST_TIME on the zone's
wall clock), missed fires (run later, cutting then), early sends, plain sends, dry runs,
previews, rebuilds (some crashing mid-way), deliveries and item deletions. A small model of
the store (what each item is about and when it became visible, what each reader follows) says
what every edition must hold; after each step the database is checked against it:

- each edition holds exactly the items tagged with a region related to what its reader followed
  when it was assembled that became visible in [window_start, cutoff) (half-open, as in the
  code, store.items.visible_between, and DESIGN.md's "Editions": an item stamped exactly at a
  cutoff is in the next window), none deleted by then, none twice (one exception, by design:
  editions of one region set and window, cut at one instant by two fires, share the first
  one's frozen digest);
- each reader's windows are a chain: the first starts a week before its cutoff, each next one at
  the previous cutoff, so an item is in at most one, and in one once an edition covers its moment;
- one edition and at most one ledger row per reader and ISO week; a ledger row per edition with
  items, none for an empty one;
- a fire gives every reader in its scope an edition for its week, labelled on the reader's clock;
- dry runs, previews and a rebuild that crashed change no row.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from unittest.mock import patch
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, currently_in_test_context, event, given, note, settings
from hypothesis import strategies as st
from sqlmodel import SQLModel

from publisher.digest.editions import region_set
from publisher.digest.windows import current_week, previous_week
from publisher.intake.records import RawRecord
from publisher.models import Delivery, Digest, Edition, Item, Subscriber, SubscriberStatus
from publisher.pipeline.edition_tools import preview_edition, rebuild_week
from publisher.pipeline.editions import fire_editions
from publisher.pipeline.edits import delete_item
from publisher.pipeline.intake import import_records
from publisher.regions.tree import RegionTree
from publisher.store import editions as editions_store
from publisher.store.editions import unsent_editions
from publisher.store.subscribers import add_or_update, set_regions, set_status, set_timezone
from tests.conftest import FixedClockRuntime

START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # a Friday
ZONES = ("UTC", "America/Guatemala", "Pacific/Auckland")
REGIONS = (
    "americas", "latin-america-and-the-caribbean", "central-america", "gt", "sv", "hn",
    "south-america", "co", "es",
)  # fmt: skip
KEEP = {"regions", "alembic_version"}
SCHEDULER, OPERATOR = "scheduler-proof", "cli-proof"

regions_st = st.lists(st.sampled_from(REGIONS), min_size=1, max_size=3, unique=True)
zone_st = st.sampled_from((None, *ZONES))
index_st = st.integers(0, 7)
IMPORT = st.tuples(
    st.just("import"), st.sampled_from(["now", "past", "late", "future"]), regions_st,
    st.integers(1, 400),
)  # fmt: skip
JOIN = st.tuples(st.just("join"), regions_st, zone_st)
FIRE = st.tuples(st.just("fire"), st.sampled_from(ZONES))
SEND = st.tuples(st.just("send"), st.sampled_from((None, None, *REGIONS)))
OPS = st.one_of(
    IMPORT, IMPORT, IMPORT, IMPORT, JOIN, FIRE, FIRE, FIRE, SEND,
    st.tuples(st.just("leave"), index_st),
    st.tuples(st.just("follow"), index_st, st.sampled_from(REGIONS)),
    st.tuples(st.just("unfollow"), index_st, st.sampled_from(REGIONS)),
    st.tuples(st.just("zone"), index_st, zone_st),
    st.tuples(st.just("tick"), st.integers(1, 80)),
    st.tuples(st.just("missed"), st.sampled_from(ZONES), st.integers(1, 60)),
    st.tuples(st.just("early"), st.sampled_from((None, *REGIONS))),
    SEND,
    st.tuples(st.just("dry"), st.booleans()),
    st.tuples(st.just("preview"), regions_st, st.sampled_from(["en", "es"])),
    st.tuples(st.just("rebuild"), st.integers(0, 3)),
    st.tuples(st.just("crashed_rebuild"), st.integers(0, 3)),
    st.tuples(st.just("deliver")),
    st.tuples(st.just("delete"), st.integers(0, 30)),
)  # fmt: skip
# 150 random examples: about 35 s on SQLite and 65-95 s on PostgreSQL on 2 shared cores
# (2026-12-01); PROOF_EXAMPLES=1000 for a longer search.
EXAMPLES = int(os.environ.get("PROOF_EXAMPLES", "150"))


@dataclass
class ModelItem:
    title: str
    regions: frozenset[str]
    visible_at: datetime
    deleted: bool = False


@dataclass
class ModelReader:
    email: str
    regions: set[str] = field(default_factory=set)
    zone: str | None = None
    active: bool = True


def next_fire(now: datetime, zone: str) -> datetime:
    """The first Monday 08:00 on ``zone``'s wall clock strictly after ``now`` (the defaults)."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    day = local.date() - timedelta(days=local.weekday())
    while True:
        fire = datetime.combine(day, time(8, 0), tzinfo=tz).astimezone(UTC)
        if fire > now:
            return fire
        day += timedelta(days=7)


class World:
    """The store under test plus the model that says what it must hold."""

    def __init__(self, rt: FixedClockRuntime) -> None:
        self.rt = rt
        self.tree: RegionTree = rt.tree
        self.items: dict[int, ModelItem] = {}
        self.readers: dict[int, ModelReader] = {}
        self.checked: set[int] = set()  # editions rows already checked against the model
        # the items of each frozen digest (by its placeholder key) when first assembled
        self.frozen: dict[str, set[int]] = {}
        self.first_start: dict[int, datetime] = {}  # where each reader's chain starts, for good
        self.stories = 0
        self.fired = 0
        self.delivered = 0  # editions with items checked
        self.latest: dict[int, tuple[datetime, str]] = {}
        self.cut_at = START
        rt.fixed_now = START

    # -- the clock and the model ----------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return self.rt.fixed_now

    def move_to(self, moment: datetime) -> None:
        assert moment >= self.now
        self.rt.fixed_now = moment

    def zone_of(self, reader: ModelReader) -> ZoneInfo:
        return ZoneInfo(reader.zone or self.rt.settings.timezone)

    def related(self, followed: set[str]) -> set[str]:
        return set().union(*(self.tree.related(r) for r in followed)) if followed else set()

    def expected_items(self, followed: set[str], start: datetime, cutoff: datetime) -> set[int]:
        near = self.related(followed)
        return {
            i for i, it in self.items.items()
            if not it.deleted and start <= it.visible_at < cutoff and it.regions & near
        }  # fmt: skip

    def reader(self, index: int) -> tuple[int, ModelReader] | None:
        if not self.readers:
            return None
        ids = sorted(self.readers)
        return ids[index % len(ids)], self.readers[ids[index % len(ids)]]

    # -- operations --------------------------------------------------------------------------------
    def apply(self, op: tuple[Any, ...]) -> None:
        if currently_in_test_context():  # a replayed case runs outside hypothesis too
            note(f"{self.now:%a %m-%d %H:%M} {op!r}")
        self.cut_at = self.now  # where a fire of this step cuts (set again when it moves there)
        getattr(self, f"op_{op[0]}")(*op[1:])
        self.check()

    def op_import(self, when: str, regions: list[str], hours: int) -> None:
        shift = {"now": 0, "past": -min(hours, 100), "late": -(200 + hours), "future": hours}
        published = self.now + timedelta(hours=shift[when])
        self.stories += 1
        title = f"Story {self.stories:04d} on {' '.join(regions)}"
        record = RawRecord(source="proof", line=self.stories, title=title,
                           summary=f"What happened: {title}.", published=published,
                           regions=list(regions))  # fmt: skip
        with self.rt.session() as session:
            report = import_records(session, records=[record], tree=self.tree,
                                    inferrer=self.rt.inferrer, now=self.now)  # fmt: skip
        assert report.errors == [] and len(report.ids) == 1
        visible = max(published, self.now)
        self.items[report.ids[0]] = ModelItem(title, frozenset(regions), visible)
        with self.rt.session() as session:
            stored = session.get(Item, report.ids[0])
            assert stored is not None and stored.visible_at == visible

    def op_join(self, regions: list[str], zone: str | None) -> None:
        email = f"reader{len(self.readers):03d}@example.org"
        with self.rt.session() as session:
            sub, _ = add_or_update(session, email=email, regions=regions,
                                   status=SubscriberStatus.active, now=self.now)  # fmt: skip
            assert sub.id is not None
            stored = set_timezone(session, subscriber_id=sub.id, zone=zone)
            self.readers[sub.id] = ModelReader(email, set(regions), stored)

    def op_leave(self, index: int) -> None:
        found = self.reader(index)
        if found is None or not found[1].active:
            return
        with self.rt.session() as session:
            set_status(session, subscriber_id=found[0], status=SubscriberStatus.unsubscribed,
                       now=self.now)  # fmt: skip
        found[1].active = False

    def _set_regions(self, index: int, change: Any) -> None:
        found = self.reader(index)
        if found is None:
            return
        sub_id, reader = found
        wanted = change(set(reader.regions))
        with self.rt.session() as session:
            set_regions(session, subscriber_id=sub_id, regions=wanted)
            sub = session.get(Subscriber, sub_id)
            assert sub is not None
            reader.zone = sub.timezone  # a zone not chosen follows the regions
        reader.regions = set(wanted)

    def op_follow(self, index: int, region: str) -> None:
        self._set_regions(index, lambda have: have | {region})

    def op_unfollow(self, index: int, region: str) -> None:
        self._set_regions(index, lambda have: have - {region})

    def op_zone(self, index: int, zone: str | None) -> None:
        found = self.reader(index)
        if found is None:
            return
        with self.rt.session() as session:
            found[1].zone = set_timezone(session, subscriber_id=found[0], zone=zone)

    def op_tick(self, hours: int) -> None:
        self.move_to(self.now + timedelta(hours=hours))

    def _fire(self, **kwargs: Any) -> None:
        before = self.edition_keys()
        self.latest = self.latest_editions()
        self.cut_at = self.now
        fire_editions(self.rt, now=self.now, **kwargs)
        self.fired += 1
        self.check_scope(before, **kwargs)

    def op_fire(self, zone: str) -> None:
        self.move_to(next_fire(self.now, zone))
        self._fire(zone=zone, runner=SCHEDULER)

    def op_missed(self, zone: str, delay: int) -> None:
        self.move_to(next_fire(self.now, zone) + timedelta(hours=delay))
        self._fire(zone=zone, runner=SCHEDULER)

    def op_early(self, region: str | None) -> None:
        self._fire(zone=None, region=region, early=True, runner=OPERATOR)

    def op_send(self, region: str | None) -> None:
        self._fire(zone=None, region=region, runner=OPERATOR)

    def op_dry(self, early: bool) -> None:
        with self.unchanged():
            fire_editions(self.rt, now=self.now, zone=None, early=early, dry_run=True,
                          runner=OPERATOR)  # fmt: skip

    def op_preview(self, regions: list[str], language: str) -> None:
        with self.unchanged():
            shown = preview_edition(self.rt, regions, language, self.now)
        wanted = self.expected_items(set(regions), self.now - timedelta(days=7), self.now)
        assert set(shown.item_ids) == wanted
        for item_id, item in self.items.items():
            key = item.title.split(" on ")[0]  # "Story 0004": never wrapped, never in another
            assert (key in shown.text) == (item_id in wanted), (item.title, shown.text)

    def rebuilt_week(self, back: int) -> str | None:
        with self.rt.session() as session:
            rows = list(session.execute(sa.select(Edition.week, Edition.cutoff)))  # type: ignore[call-overload]
        weeks = sorted({w for w, _ in rows})
        return weeks[-1 - back % len(weeks)] if weeks else None

    def op_crashed_rebuild(self, back: int) -> None:
        """A rebuild that dies once its transaction has written the new editions: nothing of it
        may stay (the old editions in place, so running it again loses nothing)."""
        week = self.rebuilt_week(back)
        if week is None:
            return

        def insert_then_crash(session: Any, *, rows: Any) -> None:
            real(session, rows=rows)
            raise Crashed

        real = editions_store.add_editions
        with (
            self.unchanged(),
            patch.object(editions_store, "add_editions", insert_then_crash),
            suppress(Crashed),
        ):
            rebuild_week(self.rt, week=week, now=self.now, runner=OPERATOR)

    def op_rebuild(self, back: int) -> None:
        week = self.rebuilt_week(back)
        if week is None:
            return
        with self.rt.session() as session:
            dropped = {e for e, _, _, _ in unsent_editions(session, week=week)}
        # the editions a rebuild re-assembles are new ones to check; SQLite may even give a new
        # row the id of the dropped one (no AUTOINCREMENT), so they leave ``checked`` by id
        self.checked -= dropped
        rebuild_week(self.rt, week=week, now=self.now, runner=OPERATOR)

    def op_deliver(self) -> None:
        """The ledger as a worker leaves it once everything went out (content is what is
        proven here; the send path has its own tests against real SMTP servers)."""
        with self.rt.engine.begin() as conn:
            conn.execute(sa.update(Delivery).where(Delivery.state == "pending")  # type: ignore[arg-type]
                         .values(state="sent", sent_at=self.now))  # fmt: skip

    def op_delete(self, index: int) -> None:
        alive = sorted(i for i, it in self.items.items() if not it.deleted)
        if not alive:
            return
        item_id = alive[index % len(alive)]
        with self.rt.session() as session:
            assert delete_item(session, item_id=item_id, now=self.now)
        self.items[item_id].deleted = True

    # -- what the store must hold ------------------------------------------------------------------
    def edition_keys(self) -> set[tuple[int, str]]:
        with self.rt.session() as session:
            return set(session.execute(sa.select(Edition.subscriber_id, Edition.week)))  # type: ignore[call-overload]

    def latest_editions(self) -> dict[int, tuple[datetime, str]]:
        """Each reader's latest (cutoff, week) before a fire."""
        with self.rt.session() as session:
            rows = session.execute(sa.select(Edition.subscriber_id, Edition.cutoff, Edition.week))  # type: ignore[call-overload]
            found: dict[int, tuple[datetime, str]] = {}
            for sub_id, cutoff, week in rows:
                found[sub_id] = max((cutoff, week), found.get(sub_id, (cutoff, week)))
            return found

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        with self.rt.engine.connect() as conn:
            return {
                t.name: sorted(map(tuple, conn.execute(sa.select(t))), key=repr)
                for t in SQLModel.metadata.sorted_tables
                if t.name not in KEEP
            }

    @contextmanager
    def unchanged(self) -> Iterator[None]:
        before = self.snapshot()
        yield
        after = self.snapshot()
        changed = [name for name in before if before[name] != after[name]]
        assert not changed, f"a dry run, preview or crashed rebuild wrote to {changed}"

    def check_scope(self, before: set[tuple[int, str]], **kwargs: Any) -> None:
        """Every active reader in the fire's scope with regions has its week's edition now."""
        zone, region = kwargs.get("zone"), kwargs.get("region")
        early = kwargs.get("early", False)
        after = self.edition_keys()
        for sub_id, reader in self.readers.items():
            if not reader.active or not reader.regions:
                continue
            tz = self.zone_of(reader)
            if zone is not None and tz.key != zone:
                continue
            if region is not None and region not in reader.regions:
                continue
            week = current_week(self.now, tz) if early else previous_week(self.now, tz)
            cut, latest_week = self.latest.get(sub_id, (self.now - timedelta(days=7), ""))
            if cut >= self.now or latest_week >= week:
                continue  # cut at this very moment, or has this or a later week: nothing owed
            assert (sub_id, week) in after, f"reader {sub_id} got no edition for {week}"
        for key in after - before:
            sub_id, week = key
            reader = self.readers[sub_id]
            tz = self.zone_of(reader)
            assert week == (current_week(self.now, tz) if early else previous_week(self.now, tz))

    def check(self) -> None:
        with self.rt.session() as session:
            editions = list(session.exec(sa.select(Edition)).scalars())  # type: ignore[call-overload]
            digests = {d.id: d for d in session.exec(sa.select(Digest)).scalars()}  # type: ignore[call-overload]
            ledger = list(session.exec(sa.select(Delivery)).scalars())  # type: ignore[call-overload]
        per_week = Counter((e.subscriber_id, e.week) for e in editions)
        assert max(per_week.values(), default=0) <= 1, "two editions for a reader in one week"
        rows = Counter((d.subscriber_id, d.week) for d in ledger)
        assert max(rows.values(), default=0) <= 1, "two ledger rows for a reader in one week"
        by_reader: dict[int, list[Any]] = {}
        for e in editions:
            by_reader.setdefault(e.subscriber_id, []).append(e)
        seen: Counter[tuple[int, int]] = Counter()
        for sub_id, chain in by_reader.items():
            chain.sort(key=lambda e: e.cutoff)
            labels = [e.week for e in chain]
            assert labels == sorted(set(labels)), f"reader {sub_id}: weeks go back {labels}"
            first = self.first_start.setdefault(sub_id, chain[0].cutoff - timedelta(days=7))
            for k, e in enumerate(chain):
                start = chain[k - 1].cutoff if k else first  # a rebuilt first edition keeps it
                assert e.window_start == start, f"reader {sub_id}: windows leave a gap or overlap"
                ids = item_ids(digests[e.digest_id]) if e.digest_id is not None else []
                assert len(ids) == len(set(ids)), "an edition shows an item twice"
                seen.update((sub_id, i) for i in ids)
                sent = [d for d in ledger if d.subscriber_id == sub_id and d.week == e.week]
                if e.digest_id is None:
                    assert not ids and not sent
                else:
                    assert ids, "a stored edition digest without items"
                    assert [d.digest_id for d in sent] == [e.digest_id]
                if e.id not in self.checked:
                    self.check_new(e, ids, digests)
        assert max(seen.values(), default=0) <= 1, "an item reached a reader twice"

    def check_new(self, e: Any, ids: list[int], digests: dict[Any, Any]) -> None:
        """An edition assembled by this step: its cutoff is now, its items are the model's."""
        reader = self.readers[e.subscriber_id]
        assert e.cutoff == self.cut_at
        canonical = " ".join(region_set(self.tree, reader.regions))
        # An edition is frozen once per (region set, window): a second fire cutting at the very
        # same instant shares the first one's digest, as it was then (a deletion in between
        # notwithstanding; only a fixed clock cuts twice at one instant), unless a rebuild
        # dropped it. A digest is known by its random marker key (SQLite may reuse an id).
        digest = digests[e.digest_id] if e.digest_id is not None else None
        mark = digest.placeholder_key if digest is not None else None
        if mark is not None and mark in self.frozen:
            wanted = self.frozen[mark]
        else:
            wanted = self.expected_items(reader.regions, e.window_start, e.cutoff)
            if mark is not None:
                self.frozen[mark] = wanted
        assert set(ids) == wanted, (reader.regions, e.window_start, e.cutoff)
        assert e.regions == canonical
        if e.digest_id is not None:
            assert digests[e.digest_id].regions == canonical
            self.delivered += 1
        self.checked.add(e.id)


class Crashed(Exception):
    """A process dying mid-way (a crashed rebuild)."""


def item_ids(digest: Digest) -> list[int]:
    return [int(i) for i in json.loads(digest.item_ids or "[]")]


def reset(rt: FixedClockRuntime) -> None:
    with rt.engine.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            if table.name not in KEEP:
                conn.execute(table.delete())


# Random search (a new seed every run; --hypothesis-seed=N replays one); what it found is
# replayed in REPLAYED above, on both engines, every run.
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
@given(
    readers=st.lists(JOIN, min_size=1, max_size=4),
    items=st.lists(IMPORT, min_size=1, max_size=5),
    ops=st.lists(OPS, min_size=6, max_size=40),
)
def test_every_item_reaches_each_reader_exactly_once(
    runtime: FixedClockRuntime,
    readers: list[tuple[Any, ...]],
    items: list[tuple[Any, ...]],
    ops: list[tuple[Any, ...]],
) -> None:
    world = run_case(runtime, [*readers, *items, *ops])
    event(f"editions checked: {bucket(len(world.checked))}")
    event(f"with items: {bucket(world.delivered)}")
    event(f"fires: {bucket(world.fired)}")


def run_case(runtime: FixedClockRuntime, steps: list[tuple[Any, ...]]) -> World:
    """Apply ``steps`` to an empty store, then the end: a week later every reader in every zone
    is fired, so every item is checked."""
    reset(runtime)
    world = World(runtime)
    last = [("tick", 170), *(("missed", zone, 1) for zone in ZONES)]
    for op in [*steps, *last]:
        world.apply(op)
    return world


# Cases random runs found, replayed as they were (the steps after START, Fri 27 Nov 12:00 UTC).
REPLAYED = {
    # 2026-12-01, PostgreSQL: an americas reader's W47 edition is cut empty at START (the two
    # items stamped at START belong to the next window); the UTC fire is missed and runs Mon
    # 7 Dec 09:00 (W49, [27 Nov 12:00, 7 Dec 09:00), both items); item 1 is deleted at that very
    # instant, another item arrives, and W49 is rebuilt at the same instant. The rebuild's digest
    # key (regions, week, window) equals the dropped edition's, so the fire reused that frozen,
    # never-sent digest with the deleted item (a product bug). SQLite showed it too once the
    # model checked the rebuilt edition: it had been given the dropped row's id, so the model
    # took it for checked already (a model bug).
    # 2026-12-01, SQLite, seed 2: two readers of the americas with first editions cut at
    # Mon 30 Nov 08:00 by two fires at that instant (the UTC fire and a send), with an item
    # deleted between them. Both editions have the same region set and window, so the second
    # shares the first's frozen digest, deleted item included: what DESIGN.md says (frozen
    # once per region set and window); the model expected the window recomputed (a model bug).
    "two fires at one instant share a frozen edition": [
        ("join", ["americas"], None),
        ("import", "now", ["americas"], 1),
        ("import", "now", ["americas"], 1),
        ("fire", "UTC"),
        ("send", None),
        ("join", ["americas"], None),
        ("delete", 0),
        ("join", ["americas"], None),
        ("send", None),
    ],
    "deleted item in a same-instant rebuild": [
        ("join", ["americas"], None),
        ("import", "now", ["gt"], 1),
        ("import", "now", ["sv"], 1),
        ("send", None),
        ("fire", "America/Guatemala"),
        ("missed", "UTC", 1),
        ("delete", 0),
        ("import", "now", ["gt"], 1),
        ("rebuild", 0),
    ],
}


@pytest.mark.parametrize("case", sorted(REPLAYED))
def test_replayed_cases(runtime: FixedClockRuntime, case: str) -> None:
    run_case(runtime, REPLAYED[case])


def bucket(n: int) -> str:
    return "0" if n == 0 else "1-4" if n < 5 else "5-19" if n < 20 else "20+"
