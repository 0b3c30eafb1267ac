"""Fire times and digested weeks: pure functions of a tz-aware now, DST weeks north and south."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from publisher.errors import ConfigError
from publisher.schedule.times import (
    Cadence,
    digest_week,
    fire_at_or_after,
    fire_times,
    in_grace,
    last_fire,
    parse_day,
    week_of_fire,
    zone_cadence,
)
from publisher.service.jobs import WeeklyTrigger
from publisher.settings import Settings

NY, BERLIN, SANTIAGO, HAVANA, MADRID = (
    "America/New_York",
    "Europe/Berlin",
    "America/Santiago",
    "America/Havana",
    "Europe/Madrid",
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def cad(day: str, at: str, tz: str = "UTC") -> Cadence:
    hours, minutes = (int(x) for x in at.split(":"))
    return Cadence(parse_day(day), time(hours, minutes), tz)


@pytest.mark.parametrize(
    ("cadence", "now", "fire"),
    [
        # ordinary: at or after, same day or next week
        (cad("mon", "08:00"), utc(2026, 11, 30, 7, 59), utc(2026, 11, 30, 8)),
        (cad("mon", "08:00"), utc(2026, 11, 30, 8), utc(2026, 11, 30, 8)),
        (cad("mon", "08:00"), utc(2026, 11, 30, 8, 0, 1), utc(2026, 12, 7, 8)),
        (cad("mon", "08:00", "America/Guatemala"), utc(2026, 11, 27), utc(2026, 11, 30, 14)),
        # a zone's Monday starts before UTC's (Pacific/Auckland is UTC+13 in summer)
        (cad("mon", "08:00", "Pacific/Auckland"), utc(2026, 11, 29, 12), utc(2026, 11, 29, 19)),
        # New York, spring forward (Sun 8 Mar 02:00 -> 03:00): 02:30 does not exist, fires 03:30
        (cad("sun", "02:30", NY), utc(2026, 3, 7), utc(2026, 3, 8, 7, 30)),
        (cad("mon", "08:00", NY), utc(2026, 3, 7), utc(2026, 3, 9, 12)),
        (cad("mon", "08:00", NY), utc(2026, 3, 1), utc(2026, 3, 2, 13)),
        # New York, fall back (Sun 1 Nov 02:00 -> 01:00): 01:30 happens twice, fires the first
        (cad("sun", "01:30", NY), utc(2026, 10, 31), utc(2026, 11, 1, 5, 30)),
        (cad("sun", "01:30", NY), utc(2026, 11, 1, 5, 31), utc(2026, 11, 8, 6, 30)),
        # Berlin, both changes (29 Mar, 25 Oct)
        (cad("sun", "02:30", BERLIN), utc(2026, 3, 28), utc(2026, 3, 29, 1, 30)),
        (cad("sun", "02:30", BERLIN), utc(2026, 10, 24), utc(2026, 10, 25, 0, 30)),
        (cad("mon", "08:00", BERLIN), utc(2026, 10, 25), utc(2026, 10, 26, 7)),
        # Santiago (south): Sat 4 Apr 24:00 -> 23:00 repeats 23:30; Sun 6 Sep 00:00 -> 01:00
        (cad("sat", "23:30", SANTIAGO), utc(2026, 4, 4), utc(2026, 4, 5, 2, 30)),
        (cad("sun", "00:30", SANTIAGO), utc(2026, 9, 5), utc(2026, 9, 6, 4, 30)),
        # Havana skips midnight itself (Sun 8 Mar 00:00 -> 01:00)
        (cad("sun", "00:00", HAVANA), utc(2026, 3, 7), utc(2026, 3, 8, 5)),
    ],
)
def test_fire_at_or_after(cadence: Cadence, now: datetime, fire: datetime) -> None:
    assert fire_at_or_after(cadence, now) == fire
    assert last_fire(cadence, fire) == fire
    assert last_fire(cadence, fire + timedelta(days=6)) == fire
    assert last_fire(cadence, fire - timedelta(microseconds=1)) < fire


DST_CADENCES = [
    cad("mon", "08:00"),
    cad("mon", "08:00", NY),
    cad("sun", "01:30", NY),  # repeated in November
    cad("sun", "02:30", NY),  # skipped in March
    cad("sun", "02:30", BERLIN),
    cad("sun", "02:30", MADRID),  # skipped in March, repeated in October
    cad("mon", "08:00", MADRID),
    cad("mon", "08:00", SANTIAGO),
    cad("mon", "08:00", "America/Guatemala"),
    cad("sat", "23:30", SANTIAGO),  # repeated in April
    cad("sun", "00:30", SANTIAGO),  # skipped in September
    cad("sun", "00:00", HAVANA),
    cad("fri", "17:45", "Asia/Kolkata"),
]


@pytest.mark.parametrize("cadence", DST_CADENCES, ids=lambda c: c.describe())
def test_one_fire_per_week_all_year_each_for_the_week_before(cadence: Cadence) -> None:
    fires = fire_times(cadence, utc(2026, 1, 1), utc(2027, 1, 1))
    weeks = [week_of_fire(cadence, f) for f in fires]
    assert len(fires) in (52, 53)
    assert len(set(weeks)) == len(weeks)  # never two digests of one week
    gaps = {round((b - a) / timedelta(hours=1)) for a, b in itertools.pairwise(fires)}
    assert gaps <= {167, 168, 169}  # a week, give or take a DST hour
    for fire, week in zip(fires, weeks, strict=True):
        local = fire.astimezone(cadence.tz)
        assert local.weekday() == cadence.weekday
        assert digest_week(cadence, fire + timedelta(hours=3)) == week  # a late run: same week


@pytest.mark.parametrize("cadence", DST_CADENCES, ids=lambda c: c.describe())
def test_weekly_trigger_follows_the_pure_function(cadence: Cadence) -> None:
    trigger = WeeklyTrigger(cadence)
    start, end = utc(2026, 1, 1), utc(2027, 1, 1)
    fired, previous = [], None
    while True:
        nxt = trigger.get_next_fire_time(previous, previous or start)
        assert nxt is not None
        if nxt >= end:
            break
        fired.append(nxt.astimezone(UTC))
        previous = nxt
    assert fired == fire_times(cadence, start, end)


def test_cron_trigger_would_fire_twice_in_a_repeated_hour() -> None:
    """Why the weekly job uses WeeklyTrigger: CronTrigger fires at both 01:30s of 1 Nov."""
    cron = CronTrigger(day_of_week="sun", hour=1, minute=30, timezone=NY)
    first = cron.get_next_fire_time(None, utc(2026, 10, 31))
    second = cron.get_next_fire_time(first, first.astimezone(UTC) + timedelta(seconds=1))
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=1)
    weekly = WeeklyTrigger(cad("sun", "01:30", NY))
    first = weekly.get_next_fire_time(None, utc(2026, 10, 31))
    assert first is not None
    second = weekly.get_next_fire_time(first, first.astimezone(UTC) + timedelta(seconds=1))
    assert second is not None
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(days=7, hours=1)


@pytest.mark.parametrize(
    ("cadence", "fire", "week"),
    [
        (cad("mon", "08:00"), utc(2026, 11, 30, 8), "2026-W48"),
        (cad("mon", "00:00"), utc(2026, 11, 30), "2026-W48"),
        # on a Sunday the week in progress has not ended: the one before it is digested
        (cad("sun", "20:00"), utc(2026, 11, 29, 20), "2026-W47"),
        # the zone's wall clock decides: still Sunday in Guatemala, already Monday in UTC
        (cad("sun", "22:00", "America/Guatemala"), utc(2026, 11, 30, 4), "2026-W47"),
        # year boundaries: 2026 has 53 weeks
        (cad("mon", "08:00"), utc(2027, 1, 4, 8), "2026-W53"),
        (cad("mon", "08:00"), utc(2026, 1, 5, 8), "2026-W01"),
        # DST weeks
        (cad("mon", "08:00", NY), utc(2026, 3, 9, 12), "2026-W10"),
        (cad("mon", "08:00", NY), utc(2026, 11, 2, 13), "2026-W44"),
        (cad("sun", "01:30", NY), utc(2026, 11, 1, 5, 30), "2026-W43"),
    ],
)
def test_week_of_fire(cadence: Cadence, fire: datetime, week: str) -> None:
    assert week_of_fire(cadence, fire) == week


def test_a_late_run_digests_the_week_of_its_fire_not_of_its_clock() -> None:
    sunday_night = cad("sun", "23:00")
    late = utc(2026, 11, 30, 1)  # Monday 01:00: already the next ISO week
    assert last_fire(sunday_night, late) == utc(2026, 11, 29, 23)
    assert digest_week(sunday_night, late) == "2026-W47"
    assert in_grace(sunday_night, late, timedelta(hours=12))
    assert not in_grace(sunday_night, late, timedelta(hours=1))


def test_zone_cadence_and_errors() -> None:
    settings = Settings(_env_file=None, digest_day="tue", digest_time="09:15", timezone="UTC")  # type: ignore[call-arg]
    assert zone_cadence(settings) == Cadence(1, time(9, 15), "UTC")
    assert zone_cadence(settings, NY) == Cadence(1, time(9, 15), NY)
    with pytest.raises(ConfigError, match="time zone"):
        zone_cadence(settings, "Mars/Olympus")
    with pytest.raises(ConfigError, match="digest day"):
        zone_cadence(settings.model_copy(update={"digest_day": "someday"}))
    with pytest.raises(ConfigError, match="HH:MM"):
        zone_cadence(settings.model_copy(update={"digest_time": "25:00"}))
    with pytest.raises(ValueError, match="naive"):
        fire_at_or_after(Cadence(0, time(8), "UTC"), datetime(2026, 1, 1))


# The same Monday 08:00 in three zones: each zone's next fire, and the week each labels.
@pytest.mark.parametrize(
    ("tz", "now", "fire", "week"),
    [
        # Madrid, spring forward on Sun 29 Mar: Monday 08:00 CEST is 06:00 UTC
        (MADRID, utc(2026, 3, 28), utc(2026, 3, 30, 6), "2026-W13"),
        (MADRID, utc(2026, 3, 21), utc(2026, 3, 23, 7), "2026-W12"),
        # Madrid, fall back on Sun 25 Oct: Monday 08:00 CET is 07:00 UTC again
        (MADRID, utc(2026, 10, 20), utc(2026, 10, 26, 7), "2026-W43"),
        # Santiago: -03 until Sat 4 Apr, then -04; -03 again from Sun 6 Sep
        (SANTIAGO, utc(2026, 4, 1), utc(2026, 4, 6, 12), "2026-W14"),
        (SANTIAGO, utc(2026, 3, 28), utc(2026, 3, 30, 11), "2026-W13"),
        (SANTIAGO, utc(2026, 9, 5), utc(2026, 9, 7, 11), "2026-W36"),
        # Guatemala (no DST) fires 6 hours after UTC; Auckland the evening before, in UTC
        ("America/Guatemala", utc(2026, 11, 30, 9), utc(2026, 11, 30, 14), "2026-W48"),
        ("Pacific/Auckland", utc(2026, 11, 29, 12), utc(2026, 11, 29, 19), "2026-W48"),
    ],
)
def test_next_fire_per_zone_and_the_week_just_ended_there(
    tz: str, now: datetime, fire: datetime, week: str
) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]  # mon 08:00
    cadence = zone_cadence(settings, tz)
    assert fire_at_or_after(cadence, now) == fire
    assert week_of_fire(cadence, fire) == week
    assert fire.astimezone(ZoneInfo(tz)).strftime("%a %H:%M") == "Mon 08:00"
