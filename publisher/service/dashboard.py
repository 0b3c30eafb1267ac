"""What the console's dashboard shows: followers, the last four weeks' sends, the next send per
time zone and what needs a look, gathered from sources that stay cheap at a million readers.

Follower, zone and ledger counts come from ``store.tallies`` on PostgreSQL (exact: kept by
triggers in the writing transactions; SQLite counts live). Everything else here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from publisher.digest.windows import iso_week_of, zone
from publisher.errors import ConfigError
from publisher.models import DeliveryState, SubscriberStatus
from publisher.regions import RegionTree
from publisher.schedule.times import Cadence, fire_at_or_after, parse_day, parse_time, week_of_fire
from publisher.settings import Settings
from publisher.store import bounces, delivery_counts, sources, subscribers
from publisher.store import dashboard as store

STATUSES = (
    SubscriberStatus.active,
    SubscriberStatus.pending,
    SubscriberStatus.bounced,
    SubscriberStatus.unsubscribed,
)
STATES = tuple(DeliveryState)
WEEKS_SHOWN = 4
BOUNCES_SINCE = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class RegionFollowers:
    slug: str
    counts: Mapping[str, int]

    @property
    def active(self) -> int:
        return self.counts.get(SubscriberStatus.active, 0)


@dataclass(frozen=True, slots=True)
class WeekSends:
    week: str
    digests: int
    states: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.states.values())


@dataclass(frozen=True, slots=True)
class ZoneSend:
    """The next scheduled fire in one zone that has readers, and the week it will send."""

    zone: str
    readers: int
    fire: datetime
    week: str


@dataclass(frozen=True, slots=True)
class Alerts:
    unknown: int = 0
    failed: int = 0
    deferred: int = 0
    bounces: Mapping[str, int] = field(default_factory=dict)
    held: tuple[store.Hold, ...] = ()
    sources_failing: int = 0

    @property
    def any(self) -> bool:
        return bool(
            self.unknown or self.failed or self.held or self.sources_failing
            or self.bounces.get("hard") or self.bounces.get("complaint")
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Dashboard:
    now: datetime
    totals: Mapping[str, int]
    regions: tuple[RegionFollowers, ...]
    weeks: tuple[WeekSends, ...]
    zones: tuple[ZoneSend, ...]
    alerts: Alerts
    sources: Mapping[str, int]
    sent: int  # messages sent in the weeks shown
    bounce_rate: float | None  # hard bounces and complaints of the last week per message sent


def recent_weeks(now: datetime, tz_name: str, count: int = WEEKS_SHOWN) -> tuple[str, ...]:
    """The ISO week running at ``now`` and the ``count`` - 1 before it, newest first."""
    tz = zone(tz_name)
    return tuple(iso_week_of(now - timedelta(weeks=k), tz) for k in range(count))


def next_sends(
    readers: Mapping[str | None, int], settings: Settings, now: datetime
) -> tuple[ZoneSend, ...]:
    """The next fire per effective zone (a reader's own, else TIMEZONE), soonest first."""
    per_zone: dict[str, int] = {}
    for name, n in readers.items():
        key = name or settings.timezone
        per_zone[key] = per_zone.get(key, 0) + n
    day, at = parse_day(settings.digest_day), parse_time(settings.digest_time)
    found = []
    for name, n in per_zone.items():
        try:
            cadence = Cadence(day, at, name)
            fire = fire_at_or_after(cadence, now).astimezone(cadence.tz)
        except (ConfigError, ValueError, KeyError):
            continue  # a zone the tz database does not know: the scheduler skips it as well
        found.append(ZoneSend(name, n, fire, week_of_fire(cadence, fire)))
    return tuple(sorted(found, key=lambda z: (z.fire, z.zone)))


def followers(
    table: Mapping[str, Mapping[str, int]], tree: RegionTree
) -> tuple[RegionFollowers, ...]:
    """Regions with followers, most active followers first, then in the tree's order."""
    order = {slug: i for i, slug in enumerate(r.slug for r in tree)}
    rows = [RegionFollowers(slug, dict(counts)) for slug, counts in table.items()]
    return tuple(sorted(rows, key=lambda r: (-r.active, order.get(r.slug, len(order)), r.slug)))


def gather(
    session: Session,
    *,
    settings: Settings,
    tree: RegionTree,
    now: datetime,
) -> Dashboard:
    """The whole dashboard, as of ``now``."""
    weeks = recent_weeks(now, settings.timezone)
    ledger = delivery_counts.per_week_state(session, weeks=weeks)
    digests = delivery_counts.digests_per_week(session, weeks=weeks)
    sends = tuple(WeekSends(w, digests.get(w, 0), ledger.get(w, {})) for w in weeks)
    kinds = bounces.kinds_since(session, since=now - BOUNCES_SINCE)
    health = sources.health(session)
    alerts = Alerts(
        unknown=sum(s.states.get(DeliveryState.unknown, 0) for s in sends),
        failed=sum(s.states.get(DeliveryState.failed, 0) for s in sends),
        deferred=sum(s.states.get(DeliveryState.deferred, 0) for s in sends),
        bounces=kinds,
        held=tuple(store.open_holds(session)),
        sources_failing=health["failing"],
    )
    sent = sum(s.states.get(DeliveryState.sent, 0) for s in sends)
    last_sent = sends[1].states.get(DeliveryState.sent, 0) if len(sends) > 1 else 0
    bad = kinds.get("hard", 0) + kinds.get("complaint", 0)
    return Dashboard(
        now=now,
        totals=subscribers.status_counts(session),
        regions=followers(subscribers.counts(session), tree),
        weeks=sends,
        zones=next_sends(store.readers_per_zone(session), settings, now),
        alerts=alerts,
        sources=health,
        sent=sent,
        bounce_rate=bad / last_sent if last_sent else None,
    )
