"""Editions end to end on SQLite and PostgreSQL: one email per reader per week, every item once,
nothing lost (late imports, embargoes, early sends), nothing twice (re-runs), dry runs inert."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from publisher.errors import InputError
from publisher.models import Delivery, Digest, DigestRendition, Edition
from publisher.pipeline.editions import EditionError, fire_editions
from publisher.pipeline.send import send_digests
from tests.conftest import FixedClockRuntime
from tests.delivery_data import use_smtp
from tests.edition_support import (
    MONDAY,
    NEXT_MONDAY,
    add_item,
    add_reader,
    editions_of,
    ledger,
    per_reader_week,
)
from tests.smtp_servers import Recorder, smtp_server

FRIDAY = MONDAY - timedelta(days=3)


def item_links(html: str) -> list[str]:
    return re.findall(r'href="https://news.example.org/items/(\d+)"', html)


def send(rt: FixedClockRuntime, recorder: Recorder, **kw: object) -> None:
    with smtp_server(recorder) as port:
        use_smtp(rt, port)
        send_digests(rt, regions=None, runner="test", **kw)  # type: ignore[arg-type]


def test_a_reader_of_three_countries_gets_one_email_with_every_item_once(
    runtime: FixedClockRuntime,
) -> None:
    ids = {
        "gt": add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY),
        "ca": add_item(
            runtime, "Central America route", ["central-america"], published=FRIDAY, arrives=FRIDAY
        ),
        "am": add_item(runtime, "Americas report", ["americas"], published=FRIDAY, arrives=FRIDAY),
        "both": add_item(
            runtime, "Guatemala and Honduras", ["gt", "hn"], published=FRIDAY, arrives=FRIDAY
        ),
        "mx": add_item(runtime, "Mexico only", ["mx"], published=FRIDAY, arrives=FRIDAY),
    }
    reader = add_reader(runtime, "three@example.org", ["gt", "sv", "hn"])
    runtime.fixed_now = MONDAY
    recorder = Recorder()
    send(runtime, recorder)
    assert recorder.received() == {"three@example.org": 1}
    msg = recorder.parsed("three@example.org")
    assert msg["Subject"] == "Your news: El Salvador, Guatemala, and Honduras, week 48 of 2026"
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    shown = item_links(html)
    assert sorted(shown) == sorted(str(ids[k]) for k in ("gt", "ca", "am", "both"))
    assert len(shown) == len(set(shown))  # no item twice
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.count(f"/items/{ids['am']}\r\n") == 1 and "Mexico only" not in text
    assert text.index("## El Salvador") < text.index("## Guatemala")  # the tree's order
    (edition,) = editions_of(runtime, reader)
    assert (edition.week, edition.cutoff, edition.regions) == ("2026-W48", MONDAY, "sv gt hn")
    assert edition.window_start == MONDAY - timedelta(days=7)


def test_a_region_and_its_ancestor_count_once(runtime: FixedClockRuntime) -> None:
    add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    reader = add_reader(runtime, "nested@example.org", ["central-america", "gt"])
    runtime.fixed_now = MONDAY
    report = fire_editions(runtime, now=MONDAY, zone=None, runner="test")
    assert report.editions == 1 and report.queued == 1
    (edition,) = editions_of(runtime, reader)
    assert edition.regions == "central-america"


def test_late_item_with_an_old_date_goes_into_the_next_edition(runtime: FixedClockRuntime) -> None:
    add_item(runtime, "On time", ["gt"], published=FRIDAY, arrives=FRIDAY)
    reader = add_reader(runtime, "late@example.org", ["gt"])
    recorder = Recorder()
    runtime.fixed_now = MONDAY
    send(runtime, recorder)
    # Imported on Tuesday, dated the week before last: visible now, so next week's edition.
    old = MONDAY - timedelta(days=12)
    late = add_item(runtime, "Late arrival", ["gt"], published=old, arrives=MONDAY + timedelta(1))
    runtime.fixed_now = NEXT_MONDAY
    again = Recorder()
    send(runtime, again)
    assert again.received() == {"late@example.org": 1}
    html = again.parsed("late@example.org").get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert item_links(html) == [str(late)]
    weeks = [e.week for e in editions_of(runtime, reader)]
    assert weeks == ["2026-W48", "2026-W49"]


def test_a_future_dated_item_waits_for_its_embargo(runtime: FixedClockRuntime) -> None:
    future = add_item(runtime, "Embargoed", ["gt"], published=MONDAY + timedelta(days=2),
                      arrives=FRIDAY)  # fmt: skip
    add_item(runtime, "Now", ["gt"], published=FRIDAY, arrives=FRIDAY)
    add_reader(runtime, "embargo@example.org", ["gt"])
    first, second = Recorder(), Recorder()
    runtime.fixed_now = MONDAY
    send(runtime, first)
    html = first.parsed("embargo@example.org").get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert str(future) not in item_links(html)
    runtime.fixed_now = NEXT_MONDAY
    send(runtime, second)
    html = second.parsed("embargo@example.org").get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert item_links(html) == [str(future)]


def test_early_send_then_the_fire_sends_nothing_more(runtime: FixedClockRuntime) -> None:
    add_item(runtime, "Monday item", ["gt"], published=MONDAY, arrives=MONDAY)
    reader = add_reader(runtime, "early@example.org", ["gt"])
    wednesday = MONDAY + timedelta(days=2)
    runtime.fixed_now = wednesday
    with pytest.raises(EditionError, match="still running"):
        send_digests(runtime, regions=None, week="2026-W49", runner="test")
    early = Recorder()
    send(runtime, early, week="2026-W49", early=True)
    assert early.received() == {"early@example.org": 1}
    later = add_item(runtime, "Thursday item", ["gt"], published=wednesday + timedelta(1),
                     arrives=wednesday + timedelta(1))  # fmt: skip
    runtime.fixed_now = NEXT_MONDAY  # the W49 fire
    fire = Recorder()
    send(runtime, fire)
    assert fire.received() == {}
    runtime.fixed_now = NEXT_MONDAY + timedelta(days=7)  # the W50 fire
    next_week = Recorder()
    send(runtime, next_week)
    html = next_week.parsed("early@example.org").get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert item_links(html) == [str(later)]
    assert [(e.week, e.early) for e in editions_of(runtime, reader)] == [
        ("2026-W49", True), ("2026-W50", False),
    ]  # fmt: skip


def test_rerunning_a_send_sends_nobody_anything_twice(runtime: FixedClockRuntime) -> None:
    add_item(runtime, "Item", ["gt"], published=FRIDAY, arrives=FRIDAY)
    for n in range(3):
        add_reader(runtime, f"r{n}@example.org", ["gt"], locale=["en", "es", "pt"][n])
    runtime.fixed_now = MONDAY
    recorder = Recorder()
    send(runtime, recorder)
    runtime.fixed_now = MONDAY + timedelta(hours=1)  # a later re-run: same week, new cutoff
    send(runtime, recorder)
    send(runtime, recorder, week="2026-W48")
    assert set(recorder.received().values()) == {1}
    assert set(per_reader_week(runtime).values()) == {1}
    with runtime.session() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Digest)).scalar() == 1
        renditions = session.execute(sa.select(DigestRendition.locale)).scalars().all()
        assert sorted(renditions) == ["es", "pt"]
    assert recorder.parsed("r1@example.org")["Content-Language"] == "es"


def test_a_reader_with_nothing_new_gets_no_email_and_the_window_moves(
    runtime: FixedClockRuntime,
) -> None:
    reader = add_reader(runtime, "quiet@example.org", ["gt"])
    runtime.fixed_now = MONDAY
    report = fire_editions(runtime, now=MONDAY, zone=None, runner="test")
    assert (report.editions, report.empty, report.queued) == (1, 1, 0)
    (edition,) = editions_of(runtime, reader)
    assert edition.digest_id is None and ledger(runtime) == []
    item = add_item(runtime, "Tuesday", ["gt"], published=MONDAY + timedelta(1),
                    arrives=MONDAY + timedelta(1))  # fmt: skip
    report = fire_editions(runtime, now=NEXT_MONDAY, zone=None, runner="test")
    assert report.queued == 1
    with runtime.session() as session:
        digest = session.get(Digest, editions_of(runtime, reader)[1].digest_id)
        assert digest is not None and digest.item_ids == f"[{item}]"
        assert digest.window_start == MONDAY and digest.window_end == NEXT_MONDAY


def _counts(rt: FixedClockRuntime) -> tuple[int, ...]:
    with rt.session() as session:
        return tuple(
            int(session.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in (Edition, Digest, Delivery, DigestRendition)
        )


def test_a_dry_run_writes_nothing(runtime: FixedClockRuntime) -> None:
    add_item(runtime, "Item", ["gt"], published=FRIDAY, arrives=FRIDAY)
    add_reader(runtime, "dry@example.org", ["gt"], locale="es")
    add_reader(runtime, "dry2@example.org", ["hn"])
    runtime.fixed_now = MONDAY
    before = _counts(runtime)
    report = send_digests(runtime, regions=None, dry_run=True, runner="test")
    (fire,) = report.fires
    assert (fire.editions, fire.empty, fire.queued) == (2, 1, 1)
    assert _counts(runtime) == before == (0, 0, 0, 0)


def test_a_week_not_begun_is_refused(runtime: FixedClockRuntime) -> None:
    runtime.fixed_now = MONDAY
    with pytest.raises(EditionError, match="not begun"):
        fire_editions(runtime, now=MONDAY, zone=None, week="2026-W51", early=True, runner="t")
    with pytest.raises(InputError):
        fire_editions(runtime, now=MONDAY, zone=None, week="2026-W99", runner="t")


def test_a_given_week_waits_for_readers_on_whose_clock_it_has_not_ended(
    runtime: FixedClockRuntime,
) -> None:
    """`digests send --week W` for all zones is judged on TIMEZONE's clock (UTC here); a reader
    west of it, whose W is still running, is not sent W early without --early: they wait for
    their zone's own fire, which then sends them W with every item."""
    item = add_item(runtime, "Salvador report", ["sv"], published=FRIDAY, arrives=FRIDAY)
    east = add_reader(runtime, "utc@example.org", ["sv"], timezone="UTC")
    west = add_reader(runtime, "la@example.org", ["sv"], timezone="America/Los_Angeles")
    early_hours = MONDAY.replace(hour=3)  # W48 ended in UTC, Sunday 19:00 in Los Angeles
    runtime.fixed_now = early_hours
    recorder = Recorder()
    with smtp_server(recorder) as port:
        use_smtp(runtime, port)
        report = send_digests(runtime, regions=None, week="2026-W48", runner="test")
    (fire,) = report.fires
    assert recorder.received() == {"utc@example.org": 1}
    assert (fire.waiting, fire.waiting_zones) == (1, {"America/Los_Angeles"})
    assert [e.week for e in editions_of(runtime, east)] == ["2026-W48"]
    assert editions_of(runtime, west) == []

    la_monday = MONDAY.replace(hour=16)  # 08:00 in Los Angeles: their W48 has ended
    runtime.fixed_now = la_monday
    later = fire_editions(runtime, now=la_monday, zone="America/Los_Angeles",
                          runner="scheduler-test")  # fmt: skip
    assert (later.waiting, later.queued) == (0, 1)
    (edition,) = editions_of(runtime, west)
    assert edition.week == "2026-W48"
    with runtime.session() as session:
        digest = session.get(Digest, edition.digest_id)
    assert digest is not None and str(item) in digest.item_ids


def test_an_early_week_is_not_sent_where_it_has_not_begun(runtime: FixedClockRuntime) -> None:
    add_item(runtime, "Salvador report", ["sv"], published=FRIDAY, arrives=FRIDAY)
    east = add_reader(runtime, "utc@example.org", ["sv"], timezone="UTC")
    west = add_reader(runtime, "la@example.org", ["sv"], timezone="America/Los_Angeles")
    runtime.fixed_now = early_hours = MONDAY.replace(hour=3)  # W49 began in UTC, not in LA
    report = fire_editions(runtime, now=early_hours, zone=None, week="2026-W49", early=True,
                           runner="test")  # fmt: skip
    assert (report.queued, report.waiting) == (1, 1)
    assert [e.week for e in editions_of(runtime, east)] == ["2026-W49"]
    assert editions_of(runtime, west) == []
    # without a given week, an early send labels each reader's running week on their clock
    report = fire_editions(runtime, now=early_hours, zone=None, early=True, runner="test")
    assert (report.queued, report.waiting, report.already) == (1, 0, 1)
    assert [e.week for e in editions_of(runtime, west)] == ["2026-W48"]


def test_the_demo_sends_every_reader_their_running_week_at_any_hour(
    runtime: FixedClockRuntime,
) -> None:
    """At 03:00 UTC on a Monday the week has begun in UTC but not in Guatemala: the demo's
    early send still reaches every demo reader, each with the week running on their clock."""
    from publisher.pipeline.demo import READERS_PER_REGION, send_demo_digests

    add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    add_item(runtime, "Region route", ["central-america"], published=FRIDAY, arrives=FRIDAY)
    runtime.fixed_now = MONDAY.replace(hour=3)
    recorder = Recorder()
    with smtp_server(recorder) as port:
        use_smtp(runtime, port)
        mail = send_demo_digests(runtime)
    (report,) = mail.reports
    assert report.fires[0].waiting == 0
    assert sum(recorder.received().values()) == len(mail.regions) * READERS_PER_REGION > 0
    weeks = {(d.subscriber_id, d.week) for d in ledger(runtime)}
    assert {w for _, w in weeks} == {"2026-W48", "2026-W49"}  # Guatemala's, UTC's
