"""What the scheduled jobs do, given a Runtime and the time: each idempotent, each safe to repeat.

- ``run_weekly_digest``: for a region's latest fire time, assemble the digest of the week just
  ended and queue a ledger row per active subscriber (delivery is the workers' part). A run is
  recorded per (region, week) in digest_runs; a finished one makes any later fire for the same
  week (a DST change, a second scheduler, a catch-up) a no-op.
- ``resume_unfinished``: finish runs a dead (or failed) scheduler left unfinished.
- ``rebuild_feeds_if_changed``: rebuild feeds/ when the items' fingerprint moved or an embargo
  lifted (the next lift time is part of the fingerprint).
- ``purge_signups``: delete signups left unconfirmed for seven days.
- ``poll_due_sources``: poll the upstream feeds whose time has come.
- ``fold_tallies``: merge the trigger-kept counts (store.tallies) so reading them stays cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime, timedelta

from publisher.errors import PublisherError
from publisher.logs import event
from publisher.pipeline.feeds import build_store_feeds
from publisher.pipeline.publish import (
    ALREADY_DONE,
    QUEUED,
    SKIPPED_WEEK,
    Published,
    RegionTarget,
    publish_week,
    resolve_region,
)
from publisher.pipeline.sources import poll_sources
from publisher.runtime import Runtime
from publisher.schedule.times import Cadence, last_fire, region_cadence, week_of_fire
from publisher.settings import Settings
from publisher.store import schedule as store
from publisher.store import tallies
from publisher.store.items import next_embargo_lift
from publisher.store.schedule import RegionSchedule
from publisher.syndication import BuildReport

log = logging.getLogger(__name__)
__all__ = ["ALREADY_DONE", "QUEUED", "SKIPPED_WEEK"]

UNCONFIRMED_FOR = timedelta(days=7)
Fingerprint = tuple[int, int, str, str]


DigestOutcome = Published  # what one digest job did for (region, week)


def cadence_of(settings: Settings, region: RegionSchedule) -> Cadence:
    """A region's cadence from its overrides and the settings (ConfigError for a bad override)."""
    return region_cadence(
        settings, timezone=region.timezone, digest_day=region.digest_day,
        digest_time=region.digest_time,
    )  # fmt: skip


def scheduled_cadences(rt: Runtime) -> dict[str, Cadence]:
    """The cadence of every region with an active subscriber; a bad override is logged, skipped."""
    with rt.session() as session:
        regions = store.regions_to_schedule(session)
    found: dict[str, Cadence] = {}
    for region in regions:
        try:
            found[region.slug] = cadence_of(rt.settings, region)
        except PublisherError as e:
            event(log, "schedule.bad_override", level=logging.ERROR, region=region.slug,
                  reason=str(e))  # fmt: skip
    return found


def run_weekly_digest(rt: Runtime, *, region: str, now: datetime, runner: str) -> DigestOutcome:
    """The digest job of ``region`` at ``now``: queue the week of its latest fire time."""
    target = resolve_region(rt, region)
    cadence = cadence_of(rt.settings, target.schedule)
    fire = last_fire(cadence, now)
    return queue_week(
        rt, region=region, week=week_of_fire(cadence, fire), fire=fire, now=now, runner=runner,
        target=target,
    )  # fmt: skip


def queue_week(
    rt: Runtime, *, region: str, week: str, fire: datetime, now: datetime, runner: str,
    target: RegionTarget | None = None,
) -> DigestOutcome:  # fmt: skip
    """Assemble (region, week) and queue its recipients, unless a run already finished it."""
    target = target or resolve_region(rt, region)
    done = publish_week(rt, target, week=week, now=now, runner=runner, fire=fire, again=False)
    if done.status == ALREADY_DONE:
        event(log, "digest.already_done", region=region, week=week)
        return done
    outcome = done
    event(log, "digest." + outcome.status, region=region, week=week, editions=outcome.editions,
          queued=outcome.queued, fire_time=fire.isoformat())  # fmt: skip
    return outcome


def resume_unfinished(
    rt: Runtime, *, now: datetime, grace: timedelta, runner: str, busy: Collection[str] = ()
) -> list[DigestOutcome]:
    """Finish the runs started within ``grace`` that never finished (regions in ``busy`` wait)."""
    with rt.session() as session:
        runs = store.unfinished_runs(session, started_after=now - grace)
    done = []
    for run in runs:
        if run.region in busy:
            continue
        event(log, "digest.resumed", region=run.region, week=run.week, left_by=run.runner)
        done.append(
            queue_week(
                rt, region=run.region, week=run.week, fire=run.fire_time, now=now, runner=runner
            )
        )
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


def fold_tallies(rt: Runtime) -> None:
    """Merge each count's rows into one (PostgreSQL; nothing on SQLite)."""
    with rt.session() as session:
        tallies.fold(session)
