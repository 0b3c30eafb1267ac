"""ISO-week windows in a region's time zone: pure functions of a tz-aware moment.

A digest for week W covers [Monday 00:00, next Monday 00:00) of W on the region's wall clock,
returned in UTC so the store can compare it with item times; across a DST change that
window is 167 or 169 hours long, which is why the arithmetic is done on local dates.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from publisher.errors import ConfigError, InputError

_WEEK = re.compile(r"(\d{4})-W(\d{2})")


def weeks_in_year(year: int) -> int:
    """52 or 53: 28 December always falls in the last ISO week of its year."""
    return date(year, 12, 28).isocalendar().week


def parse_week(week: str) -> tuple[int, int]:
    """(year, week number) of "YYYY-Www", or InputError naming what is wrong."""
    match = _WEEK.fullmatch(week.strip()) if isinstance(week, str) else None
    if match is None:
        raise InputError(f"week must look like 2026-W48, not {week!r}")
    year, number = int(match.group(1)), int(match.group(2))
    if year < 1970:
        raise InputError(f"week {week!r} is before 1970")
    last = weeks_in_year(year)
    if not 1 <= number <= last:
        raise InputError(f"{year} has ISO weeks 01 to {last}; {week!r} does not exist")
    return year, number


def format_week(year: int, number: int) -> str:
    """The canonical label, e.g. 2026-W08."""
    return f"{year:04d}-W{number:02d}"


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a naive datetime was given; attach a time zone")


def iso_week_of(moment: datetime, tz: ZoneInfo) -> str:
    """The ISO week that ``moment`` falls in on the wall clock of ``tz``."""
    _require_aware(moment)
    year, number, _ = moment.astimezone(tz).isocalendar()
    return format_week(year, number)


def week_start_date(week: str) -> date:
    """The Monday that opens ``week``."""
    year, number = parse_week(week)
    return date.fromisocalendar(year, number, 1)


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    # fold=0: in the rare zone where midnight is skipped, this is the first instant after the gap
    # and the same rule gives the next week's start, so consecutive windows never overlap.
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def week_window(week: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) of ``week`` in ``tz``, as aware UTC datetimes."""
    monday = week_start_date(week)
    return _local_midnight(monday, tz), _local_midnight(monday + timedelta(days=7), tz)


def shift_week(week: str, weeks: int) -> str:
    """The week ``weeks`` later (or earlier when negative)."""
    year, number, _ = (week_start_date(week) + timedelta(weeks=weeks)).isocalendar()
    return format_week(year, number)


def previous_week(now: datetime, tz: ZoneInfo) -> str:
    """The week that has just ended in ``tz``: the one the scheduler sends on Monday."""
    return shift_week(iso_week_of(now, tz), -1)


def current_week(now: datetime, tz: ZoneInfo) -> str:
    """The week in progress in ``tz``: what `digests preview` shows by default."""
    return iso_week_of(now, tz)


def zone(name: str) -> ZoneInfo:
    """A ZoneInfo for an IANA name, or ConfigError saying the name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as e:  # OSError: a name too long for a path
        raise ConfigError(
            f"unknown time zone {name!r}; use an IANA name like America/Guatemala"
        ) from e
