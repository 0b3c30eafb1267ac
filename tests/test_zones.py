"""Readers' time zones: the country -> main zone rule, the default for a reader's regions, zone
checks against hostile input, and the store keeping the default in step with what they follow
(SQLite file and PostgreSQL), including the 0016 backfill."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.db import alembic_config, make_engine
from publisher.errors import InputError
from publisher.models import Subscriber
from publisher.regions.tree import RegionTree
from publisher.regions.zones import (
    MAIN_ZONE_OVERRIDES,
    check_zone,
    default_zone,
    main_zone,
    offered_zones,
    zone_table,
)
from publisher.runtime import Runtime
from publisher.store import schedule as schedule_store
from publisher.store.subscribers import (
    NewSubscriber,
    add_or_update,
    bulk_add,
    set_regions,
    set_status,
    set_timezone,
)

TREE = RegionTree.load()
COUNTRIES = [r.slug for r in TREE if r.level == "country"]
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("iso2", "zone"),
    [
        ("GT", "America/Guatemala"),
        ("sv", "America/El_Salvador"),
        ("BR", "America/Sao_Paulo"),  # zone.tab lists America/Noronha first (see below)
        ("US", "America/New_York"),
        ("MX", "America/Mexico_City"),
        ("CL", "America/Santiago"),
        ("CA", "America/Toronto"),
        ("ES", "Europe/Madrid"),
        ("LU", "Europe/Luxembourg"),  # zone.tab, not zone1970.tab's Europe/Brussels
        ("XX", None),
    ],
)
def test_main_zone_of_a_country(iso2: str, zone: str | None) -> None:
    assert main_zone(iso2) == zone


def test_overrides_replace_only_outlying_first_entries() -> None:
    first: dict[str, str] = {}
    for country, name in zone_table():
        first.setdefault(country, name)
    assert first["BR"] == "America/Noronha"  # why Brazil needs its override
    assert first["GT"] == "America/Guatemala"
    for country, zone in MAIN_ZONE_OVERRIDES.items():
        assert (country, zone) in zone_table(), "an override must be one of the country's zones"


def test_every_country_of_the_tree_has_a_loadable_main_zone() -> None:
    missing = []
    for region in TREE:
        if region.level == "country" and region.iso2:
            zone = main_zone(region.iso2)
            if zone is None:
                missing.append(region.iso2)
            else:
                ZoneInfo(zone)
    # Only places with no zone.tab row of their own (e.g. Sark has none); every other resolves.
    assert len(missing) <= 3, missing


@pytest.mark.parametrize(
    ("followed", "zone"),
    [
        (["gt"], "America/Guatemala"),
        (["central-america", "gt"], "America/Guatemala"),  # a region is not a country
        (["central-america"], None),  # regions only: the TIMEZONE setting
        (["americas", "caribbean"], None),
        (["br"], "America/Sao_Paulo"),
        (["hn", "sv", "gt"], "America/El_Salvador"),  # tree order (English names), not input
        ([], None),
    ],
)
def test_default_zone_of_followed_regions(followed: list[str], zone: str | None) -> None:
    assert default_zone(TREE, followed) == zone


@given(st.lists(st.sampled_from([*COUNTRIES, "americas", "central-america", "world"]), max_size=8))
@settings(max_examples=200, deadline=None)
def test_default_zone_is_the_first_country_in_tree_order(followed: list[str]) -> None:
    order = {r.slug: i for i, r in enumerate(TREE)}
    countries = sorted(
        (s for s in set(followed) if s in COUNTRIES and main_zone(TREE.get(s).iso2 or "")),
        key=order.__getitem__,
    )
    expected = main_zone(TREE.get(countries[0]).iso2 or "") if countries else None
    assert default_zone(TREE, followed) == expected
    assert default_zone(TREE, reversed(followed)) == expected  # the input order does not matter


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "Mars/Olympus",
        "america/guatemala",  # zone names are case-sensitive
        "America/Guatemala\r\nBcc: x@example.org",
        "\u202eUTC",
        "../../../etc/passwd",
        "America/Guatemala ",  # surrounding space is trimmed below, inner junk is not
        "x" * 10_000,
        "Factory",
        "localtime",
    ],
)
def test_check_zone_refuses_what_is_not_a_zone(bad: str) -> None:
    if bad == "America/Guatemala ":
        assert check_zone(bad) == "America/Guatemala"
        return
    with pytest.raises(InputError) as caught:
        check_zone(bad)
    reason = caught.value.reason
    assert "\n" not in reason and "\r" not in reason and "\u202e" not in reason
    assert len(reason) < 200


def test_offered_zones_are_grouped_by_area_and_all_load() -> None:
    groups = dict(offered_zones())
    assert "America/Guatemala" in groups["America"]
    assert groups["Etc"] == ("UTC",)
    for names in groups.values():
        assert list(names) == sorted(names)
        for name in names:
            assert check_zone(name) == name


# -- the store ------------------------------------------------------------------------------------
def _zone(rt: Runtime, sid: int) -> tuple[str | None, bool]:
    with rt.session() as session:
        sub = session.get(Subscriber, sid)
        assert sub is not None
        return sub.timezone, sub.timezone_chosen


def test_the_default_follows_region_changes_until_the_reader_chooses(runtime: Runtime) -> None:
    with runtime.session() as session:
        sub, _ = add_or_update(
            session, email="ana@example.org", regions=["central-america", "gt"],
            status="active", now=NOW,
        )  # fmt: skip
        sid = sub.id
    assert sid is not None
    assert _zone(runtime, sid) == ("America/Guatemala", False)
    with runtime.session() as session:
        add_or_update(session, email="ana@example.org", regions=["br"], now=NOW)
    assert _zone(runtime, sid) == ("America/Guatemala", False)  # Central before South America
    with runtime.session() as session:
        set_regions(session, subscriber_id=sid, regions=["br", "central-america"])
    assert _zone(runtime, sid) == ("America/Sao_Paulo", False)
    with runtime.session() as session:
        set_regions(session, subscriber_id=sid, regions=["central-america"])
    assert _zone(runtime, sid) == (None, False)  # no country: the TIMEZONE setting
    with runtime.session() as session:
        assert set_timezone(session, subscriber_id=sid, zone="Europe/Madrid") == "Europe/Madrid"
    with runtime.session() as session:
        set_regions(session, subscriber_id=sid, regions=["gt", "mx"])
    assert _zone(runtime, sid) == ("Europe/Madrid", True)  # chosen: regions no longer decide
    with runtime.session() as session:
        assert set_timezone(session, subscriber_id=sid, zone=None) == "America/Guatemala"
    assert _zone(runtime, sid) == ("America/Guatemala", False)


def test_bulk_imports_get_the_default(runtime: Runtime) -> None:
    rows = [
        NewSubscriber("a@example.org", ("hn",)),
        NewSubscriber("b@example.org", ("caribbean",)),
        NewSubscriber("c@example.org", ("cl", "central-america")),
    ]
    with runtime.session() as session:
        ids = bulk_add(session, rows=rows, now=NOW)
    assert [_zone(runtime, i) for i in ids] == [
        ("America/Tegucigalpa", False), (None, False), ("America/Santiago", False),
    ]  # fmt: skip


def test_zones_to_schedule_are_those_of_active_readers(runtime: Runtime) -> None:
    with runtime.session() as session:
        people = [
            add_or_update(session, email=f"{n}@example.org", regions=r, status=s, now=NOW)[0]
            for n, r, s in [
                ("gt", ["gt"], "active"),
                ("gt2", ["gt"], "active"),
                ("none", ["caribbean"], "active"),
                ("cl", ["cl"], "pending"),
                ("es", ["es"], "active"),
            ]
        ]
        assert schedule_store.zones_to_schedule(session, default="UTC") == [
            "America/Guatemala", "Europe/Madrid", "UTC",
        ]  # fmt: skip
        es = people[4].id
        assert es is not None
        set_status(session, subscriber_id=es, status="unsubscribed", now=NOW)
        set_timezone(session, subscriber_id=people[0].id or 0, zone="Pacific/Auckland")
        assert schedule_store.zones_to_schedule(session, default="America/Bogota") == [
            "America/Bogota", "America/Guatemala", "Pacific/Auckland",
        ]  # fmt: skip


def test_migration_backfills_default_zones(database_url: str) -> None:
    """Readers stored before 0016 get their regions' default; nobody is marked as chosen."""
    engine = make_engine(database_url)
    try:
        config = alembic_config(engine)
        command.upgrade(config, "0015")
        with engine.begin() as conn:
            slugs = ["gt", "sv", "br", "caribbean", "americas", "central-america"]
            conn.execute(
                sa.text(
                    "INSERT INTO regions (slug, m49, parent, level, name_en, name_es) "
                    "VALUES (:s, '000', NULL, 'x', :s, :s)"
                ),
                [{"s": s} for s in slugs],
            )
            people = {"a": ["sv", "gt"], "b": ["caribbean"], "c": ["br", "americas"], "d": []}
            for n, (name, follows) in enumerate(people.items(), start=1):
                conn.execute(
                    sa.text(
                        "INSERT INTO subscribers (id, email, key, status, locale, created)"
                        " VALUES (:i, :e, :k, 'active', 'en', :c)"
                    ),
                    {
                        "i": n,
                        "e": f"{name}@example.org",
                        "k": name * 8,
                        "c": NOW.replace(tzinfo=None),
                    },
                )
                for region in follows:
                    conn.execute(
                        sa.text(
                            "INSERT INTO subscriptions (subscriber_id, region) VALUES (:i, :r)"
                        ),
                        {"i": n, "r": region},
                    )
        command.upgrade(config, "head")
        with engine.connect() as conn:
            follows = conn.execute(sa.text("SELECT count(*) FROM subscriptions")).scalar_one()
            assert follows == 5  # nothing cascaded away (a table copy on SQLite would)
            got = {
                e: (tz, bool(chosen))
                for e, tz, chosen in conn.execute(
                    sa.text("SELECT email, timezone, timezone_chosen FROM subscribers")
                )
            }
        assert got == {
            "a@example.org": ("America/El_Salvador", False),
            "b@example.org": (None, False),
            "c@example.org": ("America/Sao_Paulo", False),
            "d@example.org": (None, False),
        }
        command.downgrade(config, "0015")
        command.upgrade(config, "head")  # and back up again: the migration runs both ways
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM subscriptions")).scalar_one() == 5
            with pytest.raises(sa.exc.IntegrityError):  # the case-insensitive unique index stays
                conn.execute(
                    sa.text(
                        "INSERT INTO subscribers (email, key, status, locale, created)"
                        " VALUES ('A@EXAMPLE.ORG', 'zz', 'active', 'en', :c)"
                    ),
                    {"c": NOW.replace(tzinfo=None)},
                )
    finally:
        engine.dispose()
