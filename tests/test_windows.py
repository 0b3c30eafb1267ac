"""ISO-week windows: ordinary weeks, year boundaries and both DST changes, north and south."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from publisher.digest.windows import (
    current_week,
    iso_week_of,
    parse_week,
    previous_week,
    shift_week,
    week_window,
    weeks_in_year,
    zone,
)
from publisher.errors import ConfigError, InputError

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
SANTIAGO = ZoneInfo("America/Santiago")
GUATEMALA = ZoneInfo("America/Guatemala")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("week", "tz", "start", "end", "hours"),
    [
        # ordinary weeks
        ("2026-W48", ZoneInfo("UTC"), utc(2026, 11, 23), utc(2026, 11, 30), 168),
        ("2026-W48", GUATEMALA, utc(2026, 11, 23, 6), utc(2026, 11, 30, 6), 168),
        ("2026-W48", BERLIN, utc(2026, 11, 22, 23), utc(2026, 11, 29, 23), 168),
        # year boundaries: 2026 has 53 weeks; 2027-W01 starts on 4 January
        ("2026-W53", ZoneInfo("UTC"), utc(2026, 12, 28), utc(2027, 1, 4), 168),
        ("2027-W01", ZoneInfo("UTC"), utc(2027, 1, 4), utc(2027, 1, 11), 168),
        ("2026-W01", ZoneInfo("UTC"), utc(2025, 12, 29), utc(2026, 1, 5), 168),
        ("2027-W01", NY, utc(2027, 1, 4, 5), utc(2027, 1, 11, 5), 168),
        # New York: spring forward 2026-03-08, fall back 2026-11-01
        ("2026-W10", NY, utc(2026, 3, 2, 5), utc(2026, 3, 9, 4), 167),
        ("2026-W44", NY, utc(2026, 10, 26, 4), utc(2026, 11, 2, 5), 169),
        # Berlin: 2026-03-29 and 2026-10-25
        ("2026-W13", BERLIN, utc(2026, 3, 22, 23), utc(2026, 3, 29, 22), 167),
        ("2026-W43", BERLIN, utc(2026, 10, 18, 22), utc(2026, 10, 25, 23), 169),
        # Santiago, southern hemisphere: clocks go back in April and forward in September
        ("2026-W14", SANTIAGO, utc(2026, 3, 30, 3), utc(2026, 4, 6, 4), 169),
        ("2026-W36", SANTIAGO, utc(2026, 8, 31, 4), utc(2026, 9, 7, 3), 167),
    ],
)
def test_week_window(week: str, tz: ZoneInfo, start: datetime, end: datetime, hours: int) -> None:
    got_start, got_end = week_window(week, tz)
    assert (got_start, got_end) == (start, end)
    assert got_start.tzinfo is UTC and got_end.tzinfo is UTC
    assert got_end - got_start == timedelta(hours=hours)
    # The window opens and closes at local midnight on Mondays.
    for edge in (got_start, got_end):
        local = edge.astimezone(tz)
        assert (local.weekday(), local.hour, local.minute) == (0, 0, 0)


@pytest.mark.parametrize("tz", [ZoneInfo("UTC"), NY, BERLIN, SANTIAGO, GUATEMALA])
def test_consecutive_windows_tile_the_year_without_gaps(tz: ZoneInfo) -> None:
    week = "2025-W50"
    for _ in range(70):
        nxt = shift_week(week, 1)
        assert week_window(week, tz)[1] == week_window(nxt, tz)[0]
        week = nxt
    assert week == "2027-W15"  # 2 weeks of 2025, 53 of 2026, 15 of 2027


@pytest.mark.parametrize(
    ("moment", "tz", "week"),
    [
        (utc(2026, 11, 27, 12), ZoneInfo("UTC"), "2026-W48"),
        # Sunday evening in New York is already Monday in UTC
        (utc(2026, 11, 30, 3), NY, "2026-W48"),
        (utc(2026, 11, 30, 3), ZoneInfo("UTC"), "2026-W49"),
        # Monday 00:30 in Berlin is still Sunday in UTC
        (utc(2026, 11, 29, 23, 30), BERLIN, "2026-W49"),
        (utc(2027, 1, 1, 12), ZoneInfo("UTC"), "2026-W53"),
        (utc(2027, 1, 4, 0), ZoneInfo("UTC"), "2027-W01"),
        (utc(2021, 1, 3, 12), ZoneInfo("UTC"), "2020-W53"),
    ],
)
def test_iso_week_of(moment: datetime, tz: ZoneInfo, week: str) -> None:
    assert iso_week_of(moment, tz) == week
    assert current_week(moment, tz) == week
    start, end = week_window(week, tz)
    assert start <= moment < end


@pytest.mark.parametrize(
    ("now", "tz", "week"),
    [
        (utc(2026, 11, 30, 8), ZoneInfo("UTC"), "2026-W48"),
        (utc(2027, 1, 4, 8), ZoneInfo("UTC"), "2026-W53"),
        (utc(2027, 1, 11, 8), ZoneInfo("UTC"), "2027-W01"),
        # the Monday after New York's fall-back week
        (utc(2026, 11, 2, 13), NY, "2026-W44"),
        (utc(2026, 3, 9, 12), NY, "2026-W10"),
        # Monday 08:00 in Santiago after the April change
        (utc(2026, 4, 6, 12), SANTIAGO, "2026-W14"),
    ],
)
def test_previous_week_is_the_week_just_ended(now: datetime, tz: ZoneInfo, week: str) -> None:
    assert previous_week(now, tz) == week
    assert week_window(week, tz)[1] <= now


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("2026-W48", (2026, 48)),
        ("2026-W53", (2026, 53)),
        ("2027-W01", (2027, 1)),
        (" 2020-W53 ", (2020, 53)),
    ],
)
def test_parse_week_accepts(text: str, parsed: tuple[int, int]) -> None:
    assert parse_week(text) == parsed


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2025-W53", "2025 has ISO weeks 01 to 52"),
        ("2026-W54", "2026 has ISO weeks 01 to 53"),
        ("2026-W00", "has ISO weeks 01 to 53"),
        ("2026-48", "must look like 2026-W48"),
        ("2026-W4", "must look like 2026-W48"),
        ("26-W48", "must look like 2026-W48"),
        ("2026-w48", "must look like 2026-W48"),
        ("", "must look like 2026-W48"),
    ],
)
def test_parse_week_refuses_with_a_clear_reason(text: str, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        parse_week(text)


def test_weeks_in_year() -> None:
    assert [weeks_in_year(y) for y in (2020, 2021, 2025, 2026, 2027, 2032)] == [
        53,
        52,
        52,
        53,
        52,
        53,
    ]


def test_naive_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        iso_week_of(datetime(2026, 11, 27), NY)


def test_zone_names_are_checked() -> None:
    assert zone("America/Guatemala") == GUATEMALA and zone("Europe/Berlin") == BERLIN
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")
