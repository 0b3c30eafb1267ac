"""The dashboard's numbers: next sends per zone (pure) and a small store gathered (SQLite + PG)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from publisher.models import BounceEvent, BounceReport
from publisher.runtime import Runtime
from publisher.service.dashboard import gather, next_sends, recent_weeks
from publisher.settings import Settings
from publisher.store import deliveries as ledger
from publisher.store import holds, sources
from publisher.store import subscribers as store
from publisher.store.dashboard import readers_per_zone
from tests.conftest import FIXED_NOW
from tests.delivery_data import add_subscribers, plain_digest


def test_next_send_per_zone(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(timezone="UTC", digest_day="mon", digest_time="08:00")
    readers = {None: 5, "UTC": 2, "America/Guatemala": 3, "Mars/Olympus": 1}
    found = next_sends(readers, settings, FIXED_NOW)  # a Friday
    assert [(z.zone, z.readers, z.week) for z in found] == [
        ("UTC", 7, "2026-W48"),  # TIMEZONE's readers and those who chose it: one zone
        ("America/Guatemala", 3, "2026-W48"),
    ]  # an unknown zone is left out, as the scheduler leaves it
    assert found[0].fire == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert found[1].fire.utcoffset() == timedelta(hours=-6)
    assert found[1].fire.astimezone(UTC) == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)


def test_next_send_ignores_hostile_zone_names(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(timezone="America/Guatemala")
    hostile = ["../../etc/passwd", "UTC\r\nX-Evil: 1", "\u202eUTC", "A" * 500, "america/guatemala"]
    found = next_sends({**dict.fromkeys(hostile, 1), "": 2}, settings, FIXED_NOW)
    assert [(z.zone, z.readers) for z in found] == [("America/Guatemala", 2)]  # "" = TIMEZONE


def test_next_send_across_a_dst_change(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(digest_day="sun", digest_time="02:30")
    spring = datetime(2027, 3, 27, 12, 0, tzinfo=UTC)  # Madrid skips 02:00-03:00 on the 28th
    (madrid,) = next_sends({"Europe/Madrid": 1}, settings, spring)
    assert madrid.fire.astimezone(UTC) == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)


def test_recent_weeks_are_four_newest_first() -> None:
    assert recent_weeks(FIXED_NOW, "UTC") == ("2026-W48", "2026-W47", "2026-W46", "2026-W45")
    new_year = datetime(2027, 1, 2, 12, 0, tzinfo=UTC)
    assert recent_weeks(new_year, "UTC", 2) == ("2026-W53", "2026-W52")


def test_gathered_numbers_of_a_small_store(runtime: Runtime) -> None:
    rt = runtime
    now = rt.now()
    gt = add_subscribers(rt, 6, region="gt")
    add_subscribers(rt, 3, region="hn", prefix="hn")
    with rt.session() as s:
        store.set_status(s, subscriber_id=gt[0][0], status="unsubscribed", now=now)
        store.set_status(s, subscriber_id=gt[1][0], status="bounced", now=now)
        store.add_or_update(s, email="p@example.org", regions=["gt", "hn"], now=now)
        sources.add_source(s, url="https://a.example.org/f", regions=[], every=60, lang="", now=now)
        bad = sources.add_source(
            s, url="https://b.example.org/f", regions=[], every=60, lang="", now=now
        )
        sources.save_source(s, source_id=bad.id or 0, values={"failures": 3})
    this_week = plain_digest(rt, region="gt", week="2026-W48")
    old = plain_digest(rt, region="gt", week="2026-W40")  # outside the four weeks shown
    with rt.session() as s:
        ids = [i for i, _ in gt]
        ledger.enqueue(s, digest_id=this_week, subscriber_ids=ids)
        ledger.enqueue(s, digest_id=old, subscriber_ids=ids)
        s.execute(sa.text("UPDATE deliveries SET state = 'sent' WHERE digest_id = :d"), {"d": old})
        rows = {
            sid: rid
            for rid, sid in s.execute(
                sa.text("SELECT id, subscriber_id FROM deliveries WHERE digest_id = :d"),
                {"d": this_week},
            )
        }
        for sid, state in zip(ids, ["sent", "sent", "sent", "unknown", "failed", "pending"]):
            s.execute(sa.text("UPDATE deliveries SET state = :s WHERE id = :i"),
                      {"s": state, "i": rows[sid]})  # fmt: skip
        report = BounceReport(key="k1", source="inbound", received=now, state="applied")
        s.add(report)
        s.flush()
        recent = [("hard", now, 4), ("complaint", now, 4), ("hard", now - timedelta(days=9), 3)]
        for kind, at, k in recent:
            s.add(BounceEvent(report_id=report.id or 0, delivery_id=rows[ids[k]], subscriber_id=1,
                              kind=kind, at=at, status="5.1.1"))  # fmt: skip
            s.flush()
            report = BounceReport(key=f"k-{kind}-{at}", source="inbound", received=now, state="x")
            s.add(report)
            s.flush()
    with rt.session() as s:
        board = gather(
            s, settings=rt.settings, tree=rt.tree, now=now,
        )  # fmt: skip
    assert dict(board.totals) == {"active": 7, "unsubscribed": 1, "bounced": 1, "pending": 1}
    by_region = {r.slug: dict(r.counts) for r in board.regions}
    assert by_region == {
        "gt": {"active": 4, "unsubscribed": 1, "bounced": 1, "pending": 1},
        "hn": {"active": 3, "pending": 1},
    }
    assert [r.slug for r in board.regions] == ["gt", "hn"]  # most active first
    assert [w.week for w in board.weeks] == ["2026-W48", "2026-W47", "2026-W46", "2026-W45"]
    assert dict(board.weeks[0].states) == {"sent": 3, "unknown": 1, "failed": 1, "pending": 1}
    assert board.weeks[0].digests == 1 and board.weeks[0].total == 6
    assert board.weeks[1].total == 0 and board.sent == 3
    assert (board.alerts.unknown, board.alerts.failed, board.alerts.sources_failing) == (1, 1, 1)
    assert dict(board.alerts.bounces) == {"hard": 1, "complaint": 1}  # the last 7 days only
    assert dict(board.sources) == {"total": 2, "paused": 0, "failing": 1}
    assert board.bounce_rate is None  # nothing was sent last week
    # readers of a country get its main zone by default
    assert [(z.zone, z.readers) for z in board.zones] == [
        ("America/Guatemala", 4),
        ("America/Tegucigalpa", 3),
    ]
    assert board.alerts.held == ()


def test_zones_and_holds_on_the_dashboard(runtime: Runtime) -> None:
    rt = runtime
    now = rt.now()
    readers = add_subscribers(rt, 5, region="gt")
    with rt.session() as s:
        zones_of = ["America/Guatemala"] * 3 + ["Europe/Madrid", None]  # None: TIMEZONE applies
        for sid, tz in zip([i for i, _ in readers], zones_of, strict=True):
            s.execute(
                sa.text("UPDATE subscribers SET timezone = :z WHERE id = :i"), {"z": tz, "i": sid}
            )
        holds.hold(s, week="2026-W48", by="ed\u202e<b>itor</b>@example.org", now=now)
        holds.hold(s, week="2026-W47", by="a@example.org", now=now)
        holds.approve(s, week="2026-W47", by="a@example.org", now=now)
    with rt.session() as s:
        zones = readers_per_zone(s)
        assert zones == readers_per_zone(s, live=True)
        board = gather(s, settings=rt.settings, tree=rt.tree, now=now)
    assert zones == {"America/Guatemala": 3, "Europe/Madrid": 1, None: 1}
    assert [(z.zone, z.readers) for z in board.zones] == [
        ("Europe/Madrid", 1),
        ("UTC", 1),
        ("America/Guatemala", 3),
    ]  # Monday 08:00 comes first in Madrid (07:00 UTC), last in Guatemala (14:00 UTC)
    assert [h.week for h in board.alerts.held] == ["2026-W48"]  # W47 was approved
    assert board.alerts.any
