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

import json
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from publisher.digest.editions import EditionPlan, first_window_start, plan_edition, region_set
from publisher.digest.windows import current_week, parse_week, previous_week, week_window, zone
from publisher.email.outgoing import DigestMail
from publisher.email.placeholders import Placeholders
from publisher.email.render import RenderedEmail
from publisher.errors import InputError, StoreError
from publisher.models import Digest, DigestRendition
from publisher.pipeline.digests import digest_mail
from publisher.pipeline.edition_render import EditionRenderer, web_url
from publisher.runtime import Runtime
from publisher.store import editions as store
from publisher.store.deliveries import batched, enqueue, refresh_statistics
from publisher.store.holds import is_held
from publisher.store.items import visible_between
from publisher.store.notes import notes_of_week
from publisher.store.renditions import add_rendition, find_rendition
from publisher.store.rows import add_unless_taken

PAGE = 5_000
CHUNK = 2_000
ANALYZE_AFTER = 1_000
ASSEMBLED = "assembled"

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


def mail_of(
    rt: Runtime, digest: Digest, *, rendered: RenderedEmail | None = None,
    language: str | None = None,
) -> DigestMail:  # fmt: skip
    """The per-recipient message builder of a stored digest (in ``language``, default its own),
    signed with the Runtime's signer."""
    return digest_mail(
        digest, settings=rt.settings, tree=rt.tree, tokens=rt.tokens, rendered=rendered,
        language=language, clock=rt.now,
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
) -> FireReport:
    """Assemble and queue the editions owed at ``now`` (the cutoff).

    ``zone``: only readers whose effective time zone (theirs, else TIMEZONE) it is; None: all.
    ``region``: only readers who follow that region. ``week``: the label (default: the week
    just ended on each reader's clock, or the running one with ``early``). A held week is
    skipped by scheduled fires (``runner`` starting with "scheduler") and reported in ``held``.
    """
    settings, tree = rt.settings, rt.tree
    slug = tree.normalize(region) if region is not None else None
    default_tz = _tz(settings.timezone)
    check_week(week, now, _tz(zone) if zone else default_tz, early=early)
    report = FireReport(now, zone, slug, early, dry_run)
    groups = _group_readers(
        rt,
        report,
        zone=zone,
        region=slug,
        week=week,
        early=early,
        runner=runner,
        subscriber_ids=subscriber_ids,
    )
    if not groups:
        return report
    report.region_sets = len({key[0] for key in groups})
    with rt.session() as session:
        items = visible_between(session, after=min(k[1] for k in groups), until=now)
        notes = {w: notes_of_week(session, week=w) for w in {k[2] for k in groups}}
    renderer = EditionRenderer(settings, tree)
    for (regions, start, label), by_language in sorted(groups.items()):
        plan = plan_edition(tree, regions, items, week=label, window_start=start, cutoff=now)
        _write_group(rt, report, plan, by_language, renderer, notes[label], early=early)
    report.fragments = renderer.fragments_rendered
    if report.queued >= ANALYZE_AFTER and not dry_run:
        with rt.session() as session:
            refresh_statistics(session)
    return report


def _group_readers(
    rt: Runtime, report: FireReport, *, zone: str | None, region: str | None, week: str | None,
    early: bool, runner: str, subscriber_ids: Collection[int] | None,
) -> dict[GroupKey, dict[str, list[int]]]:  # fmt: skip
    """The readers owed an edition, in keyset pages, grouped by (region set, start, week) and
    then by language."""
    settings, tree, now = rt.settings, rt.tree, report.cutoff
    groups: dict[GroupKey, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    zones: dict[str | None, ZoneInfo] = {}
    held: dict[str, bool] = {}
    scheduled = runner.startswith("scheduler")
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
            taken = store.weeks_taken(session, subscriber_ids=ids, weeks=set(weeks.values()))
            for label in set(weeks.values()) - set(held):
                held[label] = is_held(session, week=label)
        for r in page:
            label = weeks[r.id]
            report.weeks.add(label)
            if (r.id, label) in taken:
                report.already += 1
                continue
            if scheduled and held[label]:
                report.held.add(label)
                continue
            regions = region_set(tree, [x for x in follows.get(r.id, []) if x in tree])
            start = cutoffs.get(r.id) or first_window_start(now)
            if not regions or start >= now:
                continue
            report.readers += 1
            groups[(regions, start, label)][settings.pick_locale(r.locale)].append(r.id)
        after = page[-1].id


def _write_group(
    rt: Runtime, report: FireReport, plan: EditionPlan, by_language: dict[str, list[int]],
    renderer: EditionRenderer, notes: dict[str, str], *, early: bool,
) -> None:  # fmt: skip
    """Write one group's editions (and, with items, its frozen digest and ledger rows)."""
    count = sum(len(ids) for ids in by_language.values())
    if report.dry_run:
        report.editions += count
        report.empty += count if plan.empty else 0
        report.queued += 0 if plan.empty else count
        return
    regions = " ".join(plan.regions)
    base = {"week": plan.week, "window_start": plan.window_start, "cutoff": plan.cutoff,
            "regions": regions, "created": report.cutoff, "early": early}  # fmt: skip
    if plan.empty:
        for ids in by_language.values():
            for part in batched(ids, CHUNK):
                with rt.session() as session:
                    rows = [{**base, "subscriber_id": sid, "digest_id": None} for sid in part]
                    store.add_editions(session, rows=rows)
        report.editions += count
        report.empty += count
        return
    with rt.session() as session:
        digest = _frozen_digest(rt, session, plan, renderer, notes)
        for language in by_language:
            _rendition(rt, session, digest, plan, language, renderer, notes)
    assert digest.id is not None
    if digest.id not in report.digest_ids:
        report.digest_ids.append(digest.id)
        report.queued_by_digest[digest.id] = 0
    mail = mail_of(rt, digest)
    for language, ids in sorted(by_language.items()):
        for part in batched(ids, CHUNK):
            with rt.session() as session:
                rows = [{**base, "subscriber_id": sid, "digest_id": digest.id} for sid in part]
                store.add_editions(session, rows=rows)
                mine = store.owners(
                    session, week=plan.week, digest_id=digest.id, subscriber_ids=part
                )
                report.editions += len(mine)
                added = enqueue(
                    session,
                    digest_id=digest.id,
                    subscriber_ids=mine,
                    week=plan.week,
                    message_id=mail.message_id,
                    locale=language,
                )
                report.queued += added
                report.queued_by_digest[digest.id] += added


def _frozen_digest(
    rt: Runtime, session: Session, plan: EditionPlan, renderer: EditionRenderer,
    notes: dict[str, str],
) -> Digest:  # fmt: skip
    """Get or create the frozen digest of ``plan``'s region set and window (default language)."""
    regions = " ".join(plan.regions)
    found = store.find_edition_digest(
        session, regions=regions, week=plan.week, window_start=plan.window_start, cutoff=plan.cutoff
    )
    if found is not None:
        return found
    language = rt.settings.default_locale
    marks = Placeholders.fresh()
    digest = Digest(
        region=plan.regions[0],
        regions=regions,
        week=plan.week,
        status=ASSEMBLED,
        window_start=plan.window_start,
        window_end=plan.cutoff,
        item_ids=json.dumps(list(plan.item_ids)),
        created=plan.cutoff,
        locale=language,
        placeholder_key=marks.key,
    )
    if not add_unless_taken(session, digest):
        winner = store.find_edition_digest(
            session,
            regions=regions,
            week=plan.week,
            window_start=plan.window_start,
            cutoff=plan.cutoff,
        )
        if winner is None:
            raise StoreError(f"edition {regions} {plan.week} was taken, then could not be read")
        return winner
    assert digest.id is not None
    made = renderer.render(
        plan,
        language,
        marks=marks,
        notes=notes,
        web_url=web_url(rt.settings, rt.tokens, digest.id, language),
    )
    digest.subject, digest.html, digest.text = made.subject[:300], made.html, made.text
    session.add(digest)
    session.flush()
    return digest


def _rendition(
    rt: Runtime, session: Session, digest: Digest, plan: EditionPlan, language: str,
    renderer: EditionRenderer, notes: dict[str, str],
) -> None:  # fmt: skip
    """Store ``digest`` in ``language`` once (the digest row holds its own language)."""
    assert digest.id is not None
    if language == digest.locale or find_rendition(session, digest_id=digest.id, locale=language):
        return
    made = renderer.render(
        plan,
        language,
        marks=Placeholders.of(digest.placeholder_key),
        notes=notes,
        web_url=web_url(rt.settings, rt.tokens, digest.id, language),
    )
    add_rendition(
        session,
        DigestRendition(
            digest_id=digest.id,
            locale=language,
            subject=made.subject[:300],
            html=made.html,
            text=made.text,
            created=digest.created,
        ),
    )


def _tz(name: str | None) -> ZoneInfo:
    return zone(name or "UTC")
