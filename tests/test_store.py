"""The store on a SQLite file and on PostgreSQL: import, identity, tags, membership reads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from publisher.intake.records import RawRecord
from publisher.models import Item, ItemRegion, RegionRow
from publisher.pipeline.feeds import feed_entries
from publisher.pipeline.intake import import_records, read_source
from publisher.runtime import Runtime
from publisher.store.items import count_by_region, get_item, list_items
from publisher.syndication import plan_feeds
from tests.conftest import FIXED_NOW, SEED

EXPECTED_SEED_TAGS = [
    {"cr"}, {"mx"}, {"bz"}, {"gy", "caribbean"}, {"americas"},
    {"pa"}, {"bz"}, {"gt"}, {"mx", "central-america"}, {"americas"},
]  # fmt: skip


def import_seed(rt: Runtime) -> list[int]:
    with rt.session() as s:
        report = import_records(
            s, records=read_source(str(SEED)), tree=rt.tree, inferrer=rt.inferrer, now=rt.now()
        )
    assert report.errors == []
    return report.ids


def test_schema_and_regions_are_loaded(runtime: Runtime) -> None:
    with runtime.session() as s:
        n = s.execute(sa.select(sa.func.count()).select_from(RegionRow)).scalar_one()
        gt = s.get(RegionRow, "gt")
    assert n == len(runtime.tree)
    assert gt is not None and gt.parent == "central-america"


def test_seed_import_tags_every_item_as_the_issue_requires(runtime: Runtime) -> None:
    ids = import_seed(runtime)
    assert len(ids) == 10
    with runtime.session() as s:
        got = [set(item.regions) for i in ids if (item := get_item(s, item_id=i))]
    assert got == EXPECTED_SEED_TAGS


def test_reimport_adds_nothing(runtime: Runtime) -> None:
    import_seed(runtime)
    with runtime.session() as s:
        again = import_records(
            s, records=read_source(str(SEED)), tree=runtime.tree, inferrer=runtime.inferrer,
            now=runtime.now(),
        )  # fmt: skip
        total = s.execute(sa.select(sa.func.count()).select_from(Item)).scalar_one()
    assert (again.added, again.existing, total) == (0, 10, 10)


def test_same_item_twice_in_one_batch_is_stored_once(runtime: Runtime) -> None:
    rec = RawRecord(source="x", line=1, title="Peru news", summary="Lima")
    dup = RawRecord(source="x", line=3, title="Peru  news", summary="lima")
    with runtime.session() as s:
        report = import_records(
            s, records=[rec, dup], tree=runtime.tree, inferrer=runtime.inferrer, now=FIXED_NOW
        )
    assert (report.added, report.existing) == (1, 1)


def test_unknown_region_is_a_located_error_and_others_still_land(runtime: Runtime) -> None:
    good = RawRecord(source="f.csv", line=2, title="A", summary="B", regions="gt")
    bad = RawRecord(source="f.csv", line=3, title="C", summary="D", regions="atlantis")
    with runtime.session() as s:
        report = import_records(
            s, records=[good, bad], tree=runtime.tree, inferrer=runtime.inferrer, now=FIXED_NOW
        )
    assert report.added == 1
    assert [str(e) for e in report.errors] == [
        "f.csv:3: unknown region 'atlantis'; `publisher regions list` shows the slugs"
    ]


def test_times_round_trip_as_aware_utc(runtime: Runtime) -> None:
    when = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    rec = RawRecord(
        source="x", line=1, title="T", summary="S", published="2026-03-29T03:30:00+02:00"
    )
    with runtime.session() as s:
        [item_id] = import_records(
            s, records=[rec], tree=runtime.tree, inferrer=runtime.inferrer, now=FIXED_NOW
        ).ids
    with runtime.session() as s:
        item = get_item(s, item_id=item_id)
    assert item is not None and item.published == when and item.published.tzinfo is not None


def test_membership_reads_follow_the_tree(runtime: Runtime) -> None:
    import_seed(runtime)
    tree = runtime.tree
    with runtime.session() as s:
        central = {
            i.title for i in list_items(s, regions=tree.related("central-america"), limit=None)
        }
        caribbean = {i.title for i in list_items(s, regions=tree.related("caribbean"), limit=None)}
        counts = count_by_region(s)
    assert any("Costa Rica" in t for t in central)
    assert any(
        "Americas" in t for t in central
    )  # an item about the Americas is in every part of it
    assert not any("Costa Rica" in t for t in caribbean)
    assert any("Guyana" in t for t in caribbean)
    assert counts["bz"] == 2 and counts["americas"] == 2


def test_tags_cascade_when_an_item_is_deleted(runtime: Runtime, tmp_path: Path) -> None:
    [first, *_] = import_seed(runtime)
    with runtime.session() as s:
        s.delete(s.get(Item, first))
    with runtime.session() as s:
        left = s.execute(
            sa.select(sa.func.count()).select_from(ItemRegion).where(ItemRegion.item_id == first)
        ).scalar_one()
    assert left == 0


def test_feed_candidates_give_the_same_feeds_as_the_whole_store(runtime: Runtime) -> None:
    """A build reads only the newest items per tag; every feed must come out as from all items."""
    tags = ["gt", "cr", "caribbean", "americas", "mx central-america", "ht", "br", "us", "ke"]
    records = [
        RawRecord(
            source="gen", line=n, title=f"Item {n}", summary="text", regions=tags[n % len(tags)],
            published=f"2026-11-{1 + (n * 7) % 28:02d}T{n % 24:02d}:00:00+00:00",
        )
        for n in range(120)
    ]  # fmt: skip
    with runtime.session() as s:
        import_records(
            s, records=records, tree=runtime.tree, inferrer=runtime.inferrer, now=FIXED_NOW
        )
    tree, slugs = runtime.tree, [r.slug for r in runtime.tree]
    with runtime.session() as s:
        everything = feed_entries(s)
        candidates = feed_entries(s, limit=4)
    assert len(candidates) < len(everything) == 120
    full = plan_feeds(everything, related=tree.related, slugs=slugs, limit=4)
    narrow = plan_feeds(candidates, related=tree.related, slugs=slugs, limit=4)
    assert {k: [e.id for e in v] for k, v in narrow.items()} == {
        k: [e.id for e in v] for k, v in full.items()
    }
