"""The scheduler's per-region weekly job, recorded in digest_runs, firing readers' editions.

The scheduler still fires per region (its cadence and overrides) until it fires per time zone;
each fire gives the region's readers their editions (publisher.pipeline.editions). A region slug
is resolved once into a ``RegionTarget`` (slug, names, zone, schedule overrides).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from publisher.digest.windows import region_timezone
from publisher.pipeline.editions import fire_editions
from publisher.runtime import Runtime
from publisher.store import schedule as runs
from publisher.store.schedule import RegionSchedule

QUEUED, SKIPPED_WEEK, ALREADY_DONE = "queued", "skipped", "done"


@dataclass(frozen=True, slots=True)
class RegionTarget:
    """A region resolved once: its slug, names, time zone and digest schedule overrides."""

    slug: str
    name_en: str
    name_es: str
    zone: ZoneInfo
    schedule: RegionSchedule


def resolve_region(rt: Runtime, slug: str) -> RegionTarget:
    """The region ``slug`` names (UnknownRegionError if none), with its stored overrides."""
    slug = rt.tree.normalize(slug)
    node = rt.tree.get(slug)
    with rt.session() as session:
        schedule = runs.region_schedule(session, region=slug)
    return RegionTarget(
        slug, node.name_en, node.name_es, region_timezone(rt.settings, schedule.timezone), schedule
    )


@dataclass(slots=True)
class Published:
    """What a scheduled fire for (region, week) did: queued, skipped (no items), or done before."""

    region: str
    week: str
    status: str
    queued: int = 0
    editions: int = 0


def publish_week(
    rt: Runtime,
    region: RegionTarget,
    *,
    week: str,
    now: datetime,
    runner: str,
    fire: datetime | None = None,
    again: bool = True,
) -> Published:
    """The scheduler's weekly job of ``region``: fire the editions of its readers, recorded.

    The editions themselves are per reader (publisher.pipeline.editions); this keeps the
    per-region run record (digest_runs) that resumes a fire a dead scheduler left unfinished,
    until the scheduler fires per time zone. A run already finished for (region, week) is done:
    the scheduler (``again=False``) stops there.
    """
    with rt.session() as session:
        started = runs.start_run(
            session, region=region.slug, week=week, fire_time=fire or now, now=now,
            runner=runner,
        )  # fmt: skip
    if started is None and not again:
        return Published(region.slug, week, ALREADY_DONE)
    report = fire_editions(rt, now=now, zone=None, region=region.slug, runner=runner)
    status = QUEUED if report.queued else SKIPPED_WEEK
    result = Published(region.slug, week, status, report.queued, report.editions)
    if started is not None:
        with rt.session() as session:
            runs.finish_run(
                session, region=region.slug, week=week, status=result.status,
                queued=result.queued, now=rt.now(),
            )  # fmt: skip
    return result
