"""The weekly fire: one edition per reader per ISO week, over the window since their last cutoff.

``fire_editions`` is the one path of the scheduler (per zone), `digests send`, the API and the
console's "send early". Readers are grouped by (region set, window start, week); the window's
items are read once per fire and planned per group in memory; each group's edition is frozen
once as a digest (per region set and window) and rendered once per language from fragments
rendered once per item. Edition rows and ledger rows go in together, one transaction per chunk,
guarded by UNIQUE(subscriber_id, week) on both: a re-run, a second scheduler or a crash mid-way
never gives anyone a second edition of a week. A dry run computes the same and writes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from publisher.batch_gc import fewer_collections
from publisher.digest.editions import Planner, first_window_start, region_set
from publisher.digest.windows import current_week, parse_week, previous_week, week_window, zone
from publisher.email.message import Body, SharedPieces
from publisher.email.outgoing import DigestMail
from publisher.email.render import RenderedEmail
from publisher.errors import InputError
from publisher.models import Digest, ItemPublic
from publisher.pipeline.digests import digest_mail
from publisher.pipeline.edition_render import EditionRenderer
from publisher.pipeline.edition_writer import EditionWriter, Replacing
from publisher.runtime import Runtime
from publisher.store import editions as store
from publisher.store.deliveries import refresh_statistics
from publisher.store.holds import is_held
from publisher.store.items import fence_stamps, visible_between
from publisher.store.notes import notes_of_week

PAGE = 5_000
ANALYZE_AFTER = 1_000

GroupKey = tuple[tuple[str, ...], datetime, str]  # (region set, window start, week)


class EditionError(InputError):
    """A fire that cannot run as asked (a running week without --early, a week not begun)."""


@dataclass(slots=True)
class FireReport:
    """What one fire did (or, dry, would do)."""

    cutoff: datetime
    zone: str | None
    region: str | None
    early: bool
    dry_run: bool
    weeks: set[str] = field(default_factory=set)
    readers: int = 0  # owed an edition by this fire
    already: int = 0  # had their edition of the week already
    editions: int = 0  # edition rows written (with items or not)
    empty: int = 0  # of those, with no items: no email
    queued: int = 0  # ledger rows written
    region_sets: int = 0
    digest_ids: list[int] = field(default_factory=list)
    queued_by_digest: dict[int, int] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    fragments: int = 0  # item fragments rendered
    waiting: int = 0  # readers on whose clock the given week has not begun, or runs (not early)
    waiting_zones: set[str] = field(default_factory=set)
    # the digests this fire froze, whole (columns by name), when the caller sends them next
    frozen: dict[int, dict[str, Any]] = field(default_factory=dict)


def mail_of(
    rt: Runtime, digest: Digest, *, rendered: RenderedEmail | None = None,
    language: str | None = None, bodies: tuple[Body, Body] | None = None,
    shared: SharedPieces | None = None,
) -> DigestMail:  # fmt: skip
    """The per-recipient message builder of a stored digest (in ``language``, default its own),
    signed with the Runtime's signer."""
    return digest_mail(
        digest, settings=rt.settings, tree=rt.tree, tokens=rt.tokens, rendered=rendered,
        language=language, clock=rt.now, bodies=bodies, shared=shared,
    )  # fmt: skip


def reader_week(now: datetime, tz: ZoneInfo, *, week: str | None, early: bool) -> str:
    """The week an edition cut at ``now`` is labelled with on a reader's clock."""
    if week is not None:
        return week
    return current_week(now, tz) if early else previous_week(now, tz)


def check_week(week: str | None, now: datetime, tz: ZoneInfo, *, early: bool) -> None:
    """Refuse a week that has not begun, and a running week without ``early``."""
    if week is None:
        return
    parse_week(week)
    start, end = week_window(week, tz)
    if start > now:
        raise EditionError(f"week {week} has not begun yet; nothing can be sent for it")
    if end > now and not early:
        raise EditionError(
            f"week {week} is still running; send it early with --early (its scheduled fire "
            "then sends those readers nothing more), or wait until it has ended"
        )


@fewer_collections()
def fire_editions(
    rt: Runtime,
    *,
    now: datetime,
    zone: str | None,
    region: str | None = None,
    week: str | None = None,
    early: bool = False,
    dry_run: bool = False,
    runner: str,
    subscriber_ids: Collection[int] | None = None,
    starts: Mapping[int, datetime] | None = None,
    replace: Mapping[int, int] | None = None,
    keep_frozen: bool = False,
) -> FireReport:
    """Assemble and queue the editions owed at ``now`` (the cutoff).

    ``zone``: only readers whose effective time zone (theirs, else TIMEZONE) it is; None: all.
    ``region``: only readers who follow that region. ``week``: the label (default: the week
    just ended on each reader's clock, or the running one with ``early``). A held week is
    skipped by scheduled fires (``runner`` starting with "scheduler") and reported in ``held``.
    ``starts``: where given readers' windows start (a rebuild keeps the dropped edition's).
    ``replace``: a rebuild of ``week``: subscriber id -> their edition of it to replace. Those
    editions are dropped in the one transaction that writes the new ones (the whole fire is
    then one transaction), so a crash leaves them in place; a reader no longer owed one
    (left, follows nothing) just loses theirs. ``keep_frozen``: the digests this fire froze
    stay in ``report.frozen``, for a send in the same process that need not read them back.

    Windows are half-open, [start, cutoff). ``now`` must not be later than the clock: the fence
    below waits for every import that stamped items before it, and any import after it stamps
    at or after ``now``, so nothing stamped before the cutoff commits after the items are read.
    """
    settings, tree = rt.settings, rt.tree
    slug = tree.normalize(region) if region is not None else None
    default_tz = _tz(settings.timezone)
    if replace is None:  # a rebuild's week has editions: it began on those readers' clocks
        check_week(week, now, _tz(zone) if zone else default_tz, early=early)
    report = FireReport(now, zone, slug, early, dry_run)
    replacing = None
    if replace:
        if week is None or dry_run:
            raise ValueError("a rebuild replaces the editions of one given week, for real")
        replacing = Replacing(week, dict(replace))
    groups = _group_readers(
        rt,
        report,
        zone=zone,
        region=slug,
        week=week,
        early=early,
        runner=runner,
        subscriber_ids=subscriber_ids,
        starts=starts or {},
        replacing=replacing,
    )
    if not groups and replacing is None:
        return report
    report.region_sets = len({key[0] for key in groups})
    items: list[ItemPublic] = []
    with rt.session() as session:
        fence_stamps(session)
    with rt.session() as session:
        if groups:
            items = visible_between(session, after=min(k[1] for k in groups), until=now)
        notes = {w: notes_of_week(session, week=w) for w in {k[2] for k in groups}}
    writer = EditionWriter(rt, report, EditionRenderer(settings, tree), notes, early=early,
                           replacing=replacing, keep_frozen=keep_frozen)  # fmt: skip
    planner = Planner(tree, items)
    try:
        for (regions, start, label), by_language in sorted(groups.items()):
            plan = planner.plan(regions, week=label, window_start=start, cutoff=now)
            writer.add(plan, by_language)
        writer.flush()
    finally:
        writer.close()
    renderer = writer.renderer
    report.fragments = renderer.fragments_rendered
    if report.queued >= ANALYZE_AFTER and not dry_run:
        with rt.session() as session:
            refresh_statistics(session)
    return report


def _group_readers(
    rt: Runtime, report: FireReport, *, zone: str | None, region: str | None, week: str | None,
    early: bool, runner: str, subscriber_ids: Collection[int] | None,
    starts: Mapping[int, datetime], replacing: Replacing | None = None,
) -> dict[GroupKey, dict[str, list[int]]]:  # fmt: skip
    """The readers owed an edition, in keyset pages, grouped by (region set, start, week) and
    then by language. Labels only move forward: a reader whose latest edition is of this
    week or a later one (an early send) has theirs already, unless it is the one a rebuild
    replaces."""
    settings, tree, now = rt.settings, rt.tree, report.cutoff
    groups: dict[GroupKey, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    zones: dict[str | None, ZoneInfo] = {}
    held: dict[str, bool] = {}
    canonical: dict[frozenset[str], tuple[str, ...]] = {}  # a fire sees few distinct sets
    scheduled = runner.startswith("scheduler")
    ready: dict[str | None, bool] = {}  # time zone -> may the given week be sent there now
    after = 0
    while True:
        with rt.session() as session:
            page = store.reader_page(
                session,
                after_id=after,
                limit=PAGE,
                zone=zone,
                default_zone=settings.timezone,
                region=region,
                subscriber_ids=subscriber_ids,
            )
            if not page:
                return groups
            ids = [r.id for r in page]
            follows = store.followed(session, subscriber_ids=ids)
            cutoffs = store.last_cutoffs(session, subscriber_ids=ids)
            weeks = {}
            for r in page:
                if r.timezone not in zones:
                    zones[r.timezone] = _tz(r.timezone or settings.timezone)
                weeks[r.id] = reader_week(now, zones[r.timezone], week=week, early=early)
            latest = store.latest_weeks(session, subscriber_ids=ids)
            for label in set(weeks.values()) - set(held):
                held[label] = is_held(session, week=label)
        for r in page:
            label = weeks[r.id]
            report.weeks.add(label)
            replaced = replacing is not None and r.id in replacing.editions
            if (
                r.id in latest
                and latest[r.id] >= label
                and not (replaced and latest[r.id] == label)
            ):
                report.already += 1
                continue
            if scheduled and held[label]:
                report.held.add(label)
                continue
            if week is not None and replacing is None:
                if r.timezone not in ready:
                    ready[r.timezone] = _week_ready(week, now, zones[r.timezone], early=early)
                if not ready[r.timezone]:
                    report.waiting += 1
                    report.waiting_zones.add(r.timezone or settings.timezone)
                    continue
            followed = frozenset(follows.get(r.id, ()))
            regions = canonical.get(followed)
            if regions is None:
                regions = canonical[followed] = region_set(tree, followed)
            start = starts.get(r.id) or cutoffs.get(r.id) or first_window_start(now)
            if not regions or start >= now:
                continue
            report.readers += 1
            groups[(regions, start, label)][settings.pick_locale(r.locale)].append(r.id)
        after = page[-1].id


def _week_ready(week: str, now: datetime, tz: ZoneInfo, *, early: bool) -> bool:
    """Whether ``week`` may be sent at ``now`` to a reader in ``tz``: begun on their clock,
    and ended unless early. A send of a given week for all zones is checked on TIMEZONE's
    clock first; readers west of it wait for their own zone's fire instead of being sent
    a week that is still running where they live."""
    start, end = week_window(week, tz)
    return start <= now and (early or end <= now)


def _tz(name: str | None) -> ZoneInfo:
    return zone(name or "UTC")
