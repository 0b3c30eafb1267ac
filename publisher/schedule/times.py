"""When each time zone's weekly editions fire, and which week a fire labels: pure functions of time.

Readers get their edition at DIGEST_DAY and DIGEST_TIME on their own wall clock, so there is one
``Cadence`` per zone that has readers (``zone_cadence``). Its fire times are the instants whose
wall clock in the zone reads that weekday and time:

- a wall time skipped by a spring-forward change (02:30 on the night clocks jump 02:00 -> 03:00)
  fires as if the clock had not changed, i.e. that many minutes later (03:30), once;
- a wall time repeated by a fall-back change (01:30 twice) fires at its first occurrence only.

So there is exactly one fire per week in every zone, and a fire labels its editions with the
ISO week that has just ended on the zone's wall clock (``week_of_fire``), computed from the fire
time itself, not from when the job happened to run, so a late run (after a misfire) keeps the
week of the fire it stands for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from publisher.digest.windows import previous_week, zone
from publisher.errors import ConfigError
from publisher.settings import Settings

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_day(value: str) -> int:
    """0 (Monday) to 6 (Sunday) for a three-letter day name, or ConfigError."""
    try:
        return WEEKDAYS.index(value.strip().lower()[:3])
    except ValueError as e:
        raise ConfigError(f"digest day must be one of {', '.join(WEEKDAYS)}, not {value!r}") from e


def parse_time(value: str) -> time:
    """A wall-clock time from "HH:MM", or ConfigError."""
    hours, _, minutes = value.strip().partition(":")
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise ConfigError(f"digest time must be HH:MM, e.g. 08:00, not {value!r}")
    return time(int(hours), int(minutes))


@dataclass(frozen=True, slots=True)
class Cadence:
    """A weekly fire time on a zone's wall clock: weekday (0 = Monday), time, IANA zone name."""

    weekday: int
    at: time
    tz_name: str

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.tz_name)

    def describe(self) -> str:
        return f"{WEEKDAYS[self.weekday]} {self.at:%H:%M} {self.tz_name}"


def zone_cadence(settings: Settings, zone_name: str | None = None) -> Cadence:
    """The weekly fire of a zone's readers: DIGEST_DAY at DIGEST_TIME on that zone's clock.

    ``zone_name`` None is the TIMEZONE setting (the zone of readers who have none of their own);
    ConfigError for an unknown zone or a malformed day or time.
    """
    tz_name = zone_name or settings.timezone
    zone(tz_name)  # fail early on an unknown zone
    return Cadence(
        weekday=parse_day(settings.digest_day), at=parse_time(settings.digest_time),
        tz_name=tz_name,
    )  # fmt: skip


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a naive datetime was given; attach a time zone")


def _fire_on(day: date, cadence: Cadence, tz: ZoneInfo) -> datetime:
    # fold=0: a repeated wall time means its first occurrence; a skipped one keeps the offset in
    # force before the change, which lands the same number of minutes past the gap.
    return datetime.combine(day, cadence.at, tzinfo=tz).astimezone(UTC)


def _candidates(cadence: Cadence, moment: datetime, days: range) -> list[datetime]:
    tz = cadence.tz
    local = moment.astimezone(tz).date()
    found = []
    for offset in days:
        day = local + timedelta(days=offset)
        if day.weekday() == cadence.weekday:
            found.append(_fire_on(day, cadence, tz))
    return found


def fire_at_or_after(cadence: Cadence, moment: datetime) -> datetime:
    """The first fire time at or after ``moment`` (aware UTC)."""
    _require_aware(moment)
    return min(t for t in _candidates(cadence, moment, range(-1, 9)) if t >= moment)


def last_fire(cadence: Cadence, now: datetime) -> datetime:
    """The latest fire time at or before ``now`` (aware UTC)."""
    _require_aware(now)
    return max(t for t in _candidates(cadence, now, range(-8, 2)) if t <= now)


def fire_times(cadence: Cadence, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time in [start, end), in order."""
    found: list[datetime] = []
    moment = start
    while (fire := fire_at_or_after(cadence, moment)) < end:
        found.append(fire)
        moment = fire + timedelta(microseconds=1)
    return found


def week_of_fire(cadence: Cadence, fire: datetime) -> str:
    """The ISO week a fire at ``fire`` labels: the one just ended on the zone's clock."""
    return previous_week(fire, cadence.tz)


def digest_week(cadence: Cadence, now: datetime) -> str:
    """The week the zone's job labels when it runs at ``now`` (that of the latest fire time)."""
    return week_of_fire(cadence, last_fire(cadence, now))


def in_grace(cadence: Cadence, now: datetime, grace: timedelta) -> bool:
    """Whether ``now`` is within ``grace`` after the latest fire time (a late run still counts)."""
    return now - last_fire(cadence, now) <= grace
