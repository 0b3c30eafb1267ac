"""Visibility: an item is public from max(published, arrival); until its published time it is
embargoed everywhere (pages, feeds, API, digests), and the feeds job rebuilds when it lifts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import feedparser
import pytest
import sqlalchemy as sa
from alembic import command

from publisher.db import alembic_config
from publisher.intake.records import RawRecord
from publisher.models import Item, WithdrawnItem
from publisher.pipeline.edits import ItemChanges, delete_item, update_item
from publisher.pipeline.intake import import_records
from publisher.schedule import tasks
from publisher.store.items import get_item, list_items, next_embargo_lift
from tests.conftest import FIXED_NOW, FixedClockRuntime
from tests.web_support import AUTH, Web, make_web

PAST = FIXED_NOW - timedelta(days=3)
SOON = FIXED_NOW + timedelta(hours=5)
LATER = FIXED_NOW + timedelta(days=2)


def add(rt: FixedClockRuntime, title: str, published: datetime, regions: list[str]) -> int:
    record = RawRecord(
        source="t", line=1, title=title, summary=f"{title}.", published=published, regions=regions
    )
    with rt.session() as session:
        report = import_records(
            session, records=[record], tree=rt.tree, inferrer=rt.inferrer, now=rt.now()
        )
    assert report.errors == [] and len(report.ids) == 1
    return report.ids[0]


@pytest.fixture
def items(runtime: FixedClockRuntime) -> dict[str, int]:
    """A past item, a late one (old date, arriving now) and two future-dated ones."""
    return {
        "past": add(runtime, "Shelter opens in Guatemala", PAST, ["gt"]),
        "soon": add(runtime, "Honduras report due", SOON, ["hn"]),
        "later": add(runtime, "Panama figures due", LATER, ["pa"]),
    }


def visible_at(rt: FixedClockRuntime, item_id: int) -> datetime:
    with rt.session() as session:
        item = session.get(Item, item_id)
        assert item is not None
        return item.visible_at


def test_visible_at_is_the_later_of_published_and_arrival(
    runtime: FixedClockRuntime, items: dict[str, int]
) -> None:
    assert visible_at(runtime, items["past"]) == FIXED_NOW  # arrived now: visible from now
    assert visible_at(runtime, items["soon"]) == SOON
    assert visible_at(runtime, items["later"]) == LATER
    with runtime.session() as session:
        shown = {i.id for i in list_items(session, limit=None, visible_by=FIXED_NOW)}
        assert shown == {items["past"]}
        assert {i.id for i in list_items(session, limit=None)} == set(items.values())  # editors
        assert get_item(session, item_id=items["soon"], visible_by=FIXED_NOW) is None
        assert get_item(session, item_id=items["soon"], visible_by=SOON) is not None
        assert next_embargo_lift(session, now=FIXED_NOW) == SOON
        assert next_embargo_lift(session, now=SOON) == LATER
        assert next_embargo_lift(session, now=LATER) is None


def test_editing_keeps_a_public_moment_and_moves_an_embargo(
    runtime: FixedClockRuntime, items: dict[str, int]
) -> None:
    def edit(item_id: int, published: datetime) -> datetime:
        with runtime.session() as session:
            assert update_item(
                session, item_id=item_id, changes=ItemChanges(published=published),
                tree=runtime.tree, inferrer=runtime.inferrer, now=runtime.now(),
            )  # fmt: skip
        return visible_at(runtime, item_id)

    runtime.fixed_now = FIXED_NOW + timedelta(hours=1)
    # a public item keeps the moment it became visible when its date moves within the past
    assert edit(items["past"], PAST - timedelta(days=1)) == FIXED_NOW
    # an embargoed item brought forward to the past becomes visible now, not in the past
    assert edit(items["soon"], PAST) == runtime.fixed_now
    # a future date puts an item (back) under embargo until that date
    assert edit(items["later"], LATER + timedelta(days=1)) == LATER + timedelta(days=1)
    assert edit(items["past"], LATER) == LATER


def test_deleting_a_public_item_leaves_a_tombstone_an_embargoed_one_none(
    runtime: FixedClockRuntime, items: dict[str, int]
) -> None:
    with runtime.session() as session:
        assert delete_item(session, item_id=items["past"], now=FIXED_NOW)
        assert delete_item(session, item_id=items["soon"], now=FIXED_NOW)
        assert not delete_item(session, item_id=999_999, now=FIXED_NOW)
    with runtime.session() as session:
        (stone,) = session.exec(sa.select(WithdrawnItem)).scalars()  # type: ignore[call-overload]
        assert (stone.item_id, stone.title, stone.regions) == (
            items["past"], "Shelter opens in Guatemala", "gt",
        )  # fmt: skip
        assert stone.visible_at == FIXED_NOW and stone.withdrawn_at == FIXED_NOW


def test_migration_backfills_visible_at(database_url: str) -> None:
    """Rows written before 0014 get max(published, created)."""
    from publisher.db import make_engine

    engine = make_engine(database_url)
    try:
        config = alembic_config(engine)
        command.upgrade(config, "0005")
        rows = [
            ("a", PAST, FIXED_NOW),  # late import: visible when it arrived
            ("b", LATER, FIXED_NOW),  # future-dated: visible at its date
            ("c", PAST, PAST),
        ]
        with engine.begin() as conn:
            for guid, published, created in rows:
                conn.execute(
                    sa.text(
                        "INSERT INTO items (guid, title, summary, source, regions_inferred,"
                        " published, updated, created) VALUES (:g, 't', '', '', false, :p, :c, :c)"
                    ),
                    {
                        "g": guid,
                        "p": published.replace(tzinfo=None),
                        "c": created.replace(tzinfo=None),
                    },
                )
        command.upgrade(config, "head")
        with engine.connect() as conn:
            got = dict(conn.execute(sa.text("SELECT guid, visible_at FROM items")).all())
        expect = {"a": FIXED_NOW, "b": LATER, "c": PAST}
        assert {g: _naive(v) for g, v in got.items()} == {
            g: v.replace(tzinfo=None) for g, v in expect.items()
        }
    finally:
        engine.dispose()


def _naive(value: object) -> datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=None)


def test_feeds_job_rebuilds_when_an_embargo_lifts(
    runtime: FixedClockRuntime, items: dict[str, int]
) -> None:
    feed = runtime.settings.feeds_dir / "all.atom"

    def titles() -> list[str]:
        parsed = feedparser.parse(feed.read_bytes())
        assert not parsed.bozo and parsed.version == "atom10"
        return [e.title for e in parsed.entries]

    last, report = tasks.rebuild_feeds_if_changed(runtime, None)
    assert report is not None
    assert titles() == ["Shelter opens in Guatemala"]
    runtime.fixed_now = SOON - timedelta(seconds=1)
    last, report = tasks.rebuild_feeds_if_changed(runtime, last)
    assert report is None  # nothing changed, nothing lifted: no build
    runtime.fixed_now = SOON
    last, report = tasks.rebuild_feeds_if_changed(runtime, last)
    assert report is not None and "all.atom" in report.changed
    assert titles() == ["Honduras report due", "Shelter opens in Guatemala"]
    hn = feedparser.parse((runtime.settings.feeds_dir / "hn.rss").read_bytes())
    assert not hn.bozo and [e.title for e in hn.entries] == ["Honduras report due"]
    runtime.fixed_now = LATER + timedelta(minutes=1)
    last, report = tasks.rebuild_feeds_if_changed(runtime, last)
    assert report is not None and len(titles()) == 3
    assert tasks.rebuild_feeds_if_changed(runtime, last)[1] is None


@pytest.fixture
def web(runtime: FixedClockRuntime, items: dict[str, int]) -> Iterator[Web]:
    from publisher.pipeline.feeds import build_store_feeds

    with runtime.session() as session:
        build_store_feeds(session, settings=runtime.settings, tree=runtime.tree, now=FIXED_NOW)
    yield from make_web(runtime)


def test_embargoed_items_are_nowhere_public(web: Web, items: dict[str, int]) -> None:
    c = web.client
    soon = items["soon"]
    for path in ("/", "/regions/hn", "/regions/central-america", "/archive/hn"):
        r = c.get(path)
        assert r.status_code == 200, path
        assert "Honduras report due" not in r.text, path
        assert f"/items/{soon}" not in r.text, path
    hidden, unknown = c.get(f"/items/{soon}"), c.get("/items/999999")
    assert hidden.status_code == unknown.status_code == 404
    # an embargo is not revealed by a different answer (only the page's own address differs)
    assert hidden.text.replace(f"/items/{soon}", "/items/N") == unknown.text.replace(
        "/items/999999", "/items/N"
    )
    for name in ("all.rss", "central-america.atom", "americas.json"):
        r = c.get(f"/feeds/{name}")
        assert r.status_code == 200 and "Honduras report due" not in r.text, name
    parsed = feedparser.parse(c.get("/feeds/all.rss").content)
    assert not parsed.bozo and [e.title for e in parsed.entries] == ["Shelter opens in Guatemala"]
    listed = c.get("/api/items", headers=AUTH).json()
    assert [i["id"] for i in listed] == [items["past"]]
    everything = c.get("/api/items", params={"embargoed": "true"}, headers=AUTH).json()
    assert {i["id"] for i in everything} == set(items.values())
    assert c.get("/api/items", params={"region": "hn"}, headers=AUTH).json() == []
    # once the embargo lifts, the same pages show it
    web.runtime.fixed_now = SOON  # type: ignore[attr-defined]
    assert c.get(f"/items/{soon}").status_code == 200
    assert "Honduras report due" in c.get("/regions/hn").text
    assert "Honduras report due" in c.get("/").text


def test_the_region_counts_leave_embargoed_items_out(web: Web) -> None:
    home = web.client.get("/").text
    assert 'href="/regions/hn"' not in home  # Honduras has only an embargoed item: not listed
    web.runtime.fixed_now = SOON  # type: ignore[attr-defined]
    assert 'href="/regions/hn"' in web.client.get("/").text


def test_an_item_created_through_the_api_with_a_future_date_waits(web: Web) -> None:
    body = {"title": "Costa Rica census", "summary": "Out soon.", "regions": ["cr"],
            "published": LATER.isoformat()}  # fmt: skip
    r = web.client.post("/api/items", headers=AUTH, json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["visible_at"].startswith(LATER.strftime("%Y-%m-%dT%H:%M:%S"))
    assert web.client.get(f"/items/{created['id']}").status_code == 404
    assert web.client.get(f"/api/items/{created['id']}", headers=AUTH).status_code == 200
    web.runtime.fixed_now = LATER  # type: ignore[attr-defined]
    assert web.client.get(f"/items/{created['id']}").status_code == 200
