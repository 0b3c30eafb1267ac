"""What the scheduled jobs do, given a Runtime and the time: each idempotent, each safe to repeat.

- ``run_zone_fire``: for a time zone's latest fire time, assemble the editions of that zone's
  readers for the week just ended on its clock (``pipeline.editions.fire_editions``; delivery
  is the workers' part). A fire is recorded per (zone, week) in zone_fires; a finished one
  makes any later fire for the same week (a DST change, a second scheduler, a catch-up) a
  no-op, and the editions' unique keys make even two fires at once give each reader one.
- ``resume_unfinished``: fire again the (zone, week)s a dead (or failed) scheduler left
  unfinished, with the cutoff at that moment.
- ``rebuild_feeds_if_changed``: rebuild feeds/ when the items' fingerprint moved or an embargo
  lifted (the next lift time is part of the fingerprint).
- ``purge_signups``: delete signups left unconfirmed for seven days.
- ``poll_due_sources``: poll the upstream feeds whose time has come.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from publisher.errors import PublisherError
from publisher.logs import event
from publisher.pipeline.editions import fire_editions
from publisher.pipeline.feeds import build_store_feeds
from publisher.pipeline.sources import poll_sources
from publisher.runtime import Runtime
from publisher.schedule.times import (
    Cadence,
    fire_at_or_after,
    last_fire,
    week_of_fire,
    zone_cadence,
)
from publisher.store import schedule as store
from publisher.store.items import next_embargo_lift
from publisher.syndication import BuildReport

log = logging.getLogger(__name__)

UNCONFIRMED_FOR = timedelta(days=7)
Fingerprint = tuple[int, int, str, str]
FIRED, HELD, ALREADY_DONE = "fired", "held", "already_done"
RUNNER_PREFIX = "scheduler:"  # fire_editions treats such runners as scheduled (held weeks wait)


@dataclass(frozen=True, slots=True)
class ZoneOutcome:
    """What one fire did for (zone, week): ``status`` FIRED, HELD or ALREADY_DONE."""

    zone: str
    week: str
    status: str
    queued: int = 0
    editions: int = 0


def scheduled_zones(rt: Runtime) -> dict[str, Cadence]:
    """The cadence of every zone with an active reader; an unknown zone is logged, skipped."""
    with rt.session() as session:
        zones = store.zones_to_schedule(session, default=rt.settings.timezone)
    found: dict[str, Cadence] = {}
    for name in zones:
        try:
            found[name] = zone_cadence(rt.settings, name)
        except PublisherError as e:
            event(log, "schedule.bad_zone", level=logging.ERROR, zone=name, reason=str(e))
    return found


@dataclass(frozen=True, slots=True)
class NextFire:
    """When a zone's readers get their next edition (for the console's dashboard)."""

    zone: str
    at: datetime
    week: str
    readers: int


def next_fires(rt: Runtime, *, now: datetime) -> list[NextFire]:
    """Each zone with active readers and its next fire at or after ``now``, soonest first."""
    with rt.session() as session:
        counts = store.readers_per_zone(session, default=rt.settings.timezone)
    found = []
    for name, n in counts.items():
        try:
            cadence = zone_cadence(rt.settings, name)
        except PublisherError:
            continue  # logged by the scheduler's sync (schedule.bad_zone)
        at = fire_at_or_after(cadence, now)
        found.append(NextFire(name, at, week_of_fire(cadence, at), n))
    return sorted(found, key=lambda f: (f.at, f.zone))


def scheduled_runner(runner: str) -> str:
    """The runner name fire_editions gets from a scheduler (it skips held weeks for those)."""
    return runner if runner.startswith(RUNNER_PREFIX) else RUNNER_PREFIX + runner


def run_zone_fire(rt: Runtime, *, zone: str, now: datetime, runner: str) -> ZoneOutcome:
    """The weekly job of ``zone`` at ``now``: the editions of its latest fire time's week."""
    cadence = zone_cadence(rt.settings, zone)
    fire = last_fire(cadence, now)
    return fire_week(rt, zone=zone, week=week_of_fire(cadence, fire), fire=fire, now=now,
                     runner=runner)  # fmt: skip


def fire_week(
    rt: Runtime, *, zone: str, week: str, fire: datetime, now: datetime, runner: str
) -> ZoneOutcome:
    """Assemble the editions of ``zone``'s readers for ``week``, cutting at ``now``, once."""
    with rt.session() as session:
        started = store.start_fire(
            session, zone=zone, week=week, fire_time=fire, now=now, runner=runner
        )
    if started is None:
        event(log, "editions.already_done", zone=zone, week=week)
        return ZoneOutcome(zone, week, ALREADY_DONE)
    report = fire_editions(rt, now=now, zone=zone, week=week, runner=scheduled_runner(runner))
    status = HELD if report.held else FIRED
    outcome = ZoneOutcome(zone, week, status, queued=report.queued, editions=report.editions)
    with rt.session() as session:
        store.finish_fire(session, zone=zone, week=week, status=status, queued=outcome.queued,
                          now=rt.now())  # fmt: skip
    event(log, "editions." + status, zone=zone, week=week, queued=outcome.queued,
          editions=outcome.editions, fire_time=fire.isoformat())  # fmt: skip
    return outcome


def resume_unfinished(
    rt: Runtime, *, now: datetime, grace: timedelta, runner: str, busy: Collection[str] = ()
) -> list[ZoneOutcome]:
    """Fire again what was started within ``grace`` and never finished (zones in ``busy`` wait)."""
    with rt.session() as session:
        fires = store.unfinished_fires(session, started_after=now - grace)
    done = []
    for fire in fires:
        if fire.zone in busy:
            continue
        event(log, "editions.resumed", zone=fire.zone, week=fire.week, left_by=fire.runner)
        again = fire_week(
            rt, zone=fire.zone, week=fire.week, fire=fire.fire_time, now=now, runner=runner
        )
        done.append(again)
    return done


def rebuild_feeds_if_changed(
    rt: Runtime, last: Fingerprint | None
) -> tuple[Fingerprint, BuildReport | None]:
    """Rebuild feeds/ when the items changed since ``last`` (always when ``last`` is None)."""
    now = rt.now()
    with rt.session() as session:
        current = (*store.items_fingerprint(session), str(next_embargo_lift(session, now=now)))
        if current == last:
            return current, None
        report = build_store_feeds(session, settings=rt.settings, tree=rt.tree, now=now)
    event(log, "feeds.built", files=len(report.files), changed=len(report.changed),
          items=current[0])  # fmt: skip
    return current, report


def purge_signups(rt: Runtime, *, now: datetime, age: timedelta = UNCONFIRMED_FOR) -> int:
    """Delete signups left unconfirmed for ``age``; returns how many went."""
    with rt.session() as session:
        purged = store.purge_unconfirmed(session, before=now - age)
    event(log, "signups.purged", purged=purged, older_than_days=age.days)
    return purged


def poll_due_sources(rt: Runtime) -> int:
    """Poll the sources that are due; returns how many items were added or updated."""
    reports = poll_sources(rt, due_only=True)
    changed = sum(r.outcome.added + r.outcome.updated for r in reports)
    if reports:
        failed = sum(1 for r in reports if not r.outcome.ok)
        event(log, "sources.polled", sources=len(reports), failed=failed, items=changed)
    return changed
