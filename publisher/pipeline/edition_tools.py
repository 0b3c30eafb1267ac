"""Around the fire: previews, test copies, rebuilds, status and the web copy of an edition.

A preview is the edition of a NEW reader of the given regions cut at ``now``, built by the same
planner and renderer a send uses, writing nothing. A test copy is that preview sent once through
the durable outbox, marked "[Test]", with no edition and no ledger row. A rebuild re-assembles a
week's editions of which no message went out yet; anything sent stays frozen.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from publisher.addresses import normalize_address
from publisher.digest.assembly import pick_locale
from publisher.digest.editions import EditionPlan, Section, first_window_start, plan_edition
from publisher.digest.editions import region_set as canonical_set
from publisher.digest.windows import current_week, parse_week, zone
from publisher.email.dkim import DkimSigner
from publisher.email.message import MessageTemplate, list_id
from publisher.email.placeholders import Placeholders
from publisher.email.render import RenderedEmail, fill
from publisher.errors import InputError
from publisher.i18n import gettext, use_locale
from publisher.pipeline.edition_render import EditionRenderer, preview_url
from publisher.pipeline.editions import FireReport, fire_editions
from publisher.runtime import Runtime
from publisher.store import editions as store
from publisher.store import outbox
from publisher.store.digests import get_digest
from publisher.store.items import items_by_ids, visible_between
from publisher.store.notes import notes_of_week

PREVIEW_ADDRESS = "reader@example.org"
STATES = ("no items", "pending", "sending", "sent", "deferred", "failed", "unknown", "skipped")
OPEN = ("pending", "sending", "deferred")


@dataclass(frozen=True, slots=True)
class EditionPreview:
    """An edition as a new reader of ``regions`` would get it now, with sample reader parts."""

    regions: tuple[str, ...]
    week: str
    language: str
    subject: str
    html: str
    text: str
    item_ids: tuple[int, ...]

    @property
    def empty(self) -> bool:
        """No items: a send would send this reader nothing."""
        return not self.item_ids


def _sample(rt: Runtime, marks: Placeholders) -> dict[str, str]:
    base = rt.settings.base_url
    return marks.values(
        email=PREVIEW_ADDRESS, unsubscribe_url=f"{base}/unsubscribe/PREVIEW",
        preferences_url=f"{base}/preferences/PREVIEW",
    )  # fmt: skip


def preview_edition(
    rt: Runtime, regions: Sequence[str], language: str, now: datetime, *, week: str | None = None
) -> EditionPreview:
    """The edition a new reader of ``regions`` would get, cut at ``now`` (writes nothing)."""
    tree = rt.tree
    chosen = canonical_set(tree, [tree.normalize(r) for r in regions])
    if not chosen:
        raise InputError("give at least one region")
    label = week or current_week(now, zone(rt.settings.timezone))
    parse_week(label)
    lang = rt.settings.pick_locale(language)
    start = first_window_start(now)
    with rt.session() as session:
        related = frozenset().union(*(tree.related(region) for region in chosen))
        items = visible_between(session, after=start, until=now, regions=related)
        notes = notes_of_week(session, week=label)
    plan = plan_edition(tree, chosen, items, week=label, window_start=start, cutoff=now)
    marks = Placeholders.fresh()
    made = EditionRenderer(rt.settings, tree).render(
        plan, lang, marks=marks, web_url=preview_url(rt.settings), notes=notes
    )
    values = _sample(rt, marks)
    return EditionPreview(
        chosen, label, lang, made.subject, fill(made.html, values, html=True),
        fill(made.text, values, html=False), plan.item_ids,
    )  # fmt: skip


def preview_message(
    rt: Runtime, result: EditionPreview, *, now: datetime, to: str = PREVIEW_ADDRESS,
    subject: str | None = None,
) -> bytes:  # fmt: skip
    """The preview as a complete message (.eml) to ``to``; its bodies are already filled."""
    settings = rt.settings
    marks = Placeholders.fresh()  # occur nowhere in the filled bodies
    first = result.regions[0]
    template = MessageTemplate(
        subject=subject or result.subject, html=result.html, text=result.text,
        from_addr=settings.from_, language=result.language,
        list_id=list_id(slug=first, name=rt.tree.get(first).name_en,
                        site_title=settings.site_title, from_addr=settings.from_),
        dkim=DkimSigner.from_settings(settings), marks=marks,
    )  # fmt: skip
    values = _sample(rt, marks)
    stamp = int(now.timestamp())
    return template.for_recipient(
        to=to, unsubscribe_url=values[marks.unsubscribe_url],
        preferences_url=values[marks.preferences_url],
        message_id=f"<preview-{stamp}-{'.'.join(result.regions)[:60]}@{template.domain}>",
        date=format_datetime(now.replace(microsecond=0)),
    )  # fmt: skip


def marked_subject(subject: str, language: str) -> str:
    """The subject of a test copy, marked in the copy's language."""
    with use_locale(pick_locale(language)):
        return gettext("[Test] %(subject)s") % {"subject": subject}


def send_test_edition(
    rt: Runtime, regions: Sequence[str], to: str, language: str, now: datetime
) -> tuple[int, EditionPreview]:
    """Queue the preview of ``regions`` as a marked test copy to ``to`` in the outbox (durable,
    sent within seconds by the outbox deliverer); no edition, no ledger row. (outbox id, preview)"""
    to = normalize_address(to)  # one address, no line breaks: nothing to inject into headers
    result = preview_edition(rt, regions, language, now)
    message = preview_message(rt, result, now=now, to=to,
                              subject=marked_subject(result.subject, result.language))  # fmt: skip
    with rt.session() as session:
        row = outbox.add_finished(session, address=to, body=message, now=now)
    return row, result


@dataclass(slots=True)
class RebuildReport:
    """What a rebuild did: editions dropped (nobody sent anything), frozen ones kept, the fire."""

    week: str
    dropped: int
    frozen: int
    fire: FireReport | None


def rebuild_week(
    rt: Runtime, *, week: str, now: datetime, region: str | None = None, runner: str
) -> RebuildReport:
    """Re-assemble ``week``'s editions of which no message went out, with cutoff ``now``: only
    a reader's latest edition (an older one is frozen by the one after it), re-cut from its
    own window start so nothing between is lost.

    The old editions are dropped in the very transaction that writes the new ones (see
    ``fire_editions(replace=...)``): a crash at any point leaves either all of them or none
    replaced, so the rebuild can just run again, and a first edition keeps its window start."""
    parse_week(week)
    slug = rt.tree.normalize(region) if region is not None else None
    with rt.session() as session:
        unsent = store.unsent_editions(session, week=week, region=slug)
        total = len(store.editions_of_week(session, week=week))
    if not unsent:
        return RebuildReport(week, 0, total, None)
    starts = {s: start for _, s, _, start in unsent}
    replace = {s: e for e, s, _, _ in unsent}
    fire = fire_editions(rt, now=now, zone=None, week=week, early=True, runner=runner,
                         subscriber_ids=list(starts), starts=starts, replace=replace)  # fmt: skip
    dropped = len(unsent) - fire.already
    return RebuildReport(week, dropped, total - dropped, fire)


@dataclass(frozen=True, slots=True)
class WeekStatus:
    """One week's editions by state; ``sent`` once none is pending, sending or deferred."""

    week: str
    counts: dict[str, int]

    @property
    def editions(self) -> int:
        return sum(self.counts.values())

    @property
    def state(self) -> str:
        if any(self.counts.get(s) for s in OPEN):
            return "sending"
        if self.counts.get("sent"):
            return "sent"
        return "no items" if set(self.counts) <= {"no items"} else "done"


def edition_status(rt: Runtime, *, week: str | None = None) -> list[WeekStatus]:
    """Per week (newest first), editions by state."""
    with rt.session() as session:
        table = store.week_states(session, weeks=None if week is None else [week])
    return [WeekStatus(w, table[w]) for w in sorted(table, reverse=True)]


def web_copy(rt: Runtime, token: str) -> RenderedEmail:
    """An edition's web copy from its token: every item, no reader's details, no footer links.

    Items deleted since are left out (their permalinks say "withdrawn"). BadToken or
    LookupError when there is no such edition.
    """
    digest_id, language = rt.tokens.read_edition(token)
    with rt.session() as session:
        digest = get_digest(session, digest_id=digest_id)
        if digest is None or not digest.regions:
            raise LookupError("no such edition")
        ids = [int(i) for i in json.loads(digest.item_ids or "[]")]
        items = {it.id: it for it in items_by_ids(session, item_ids=ids)}
        notes = notes_of_week(session, week=digest.week)
    regions = tuple(digest.regions.split())
    placed: dict[str, list[int]] = defaultdict(list)
    for item_id in ids:
        if item_id in items:
            for region in regions:
                if rt.tree.related(region).intersection(items[item_id].regions):
                    placed[region].append(item_id)
                    break
    sections = tuple(
        Section(r, tuple(items[i] for i in placed[r])) for r in regions if placed.get(r)
    )
    plan = EditionPlan(regions, digest.week, digest.window_start, digest.window_end, sections)
    lang = pick_locale(language) if language else digest.locale
    renderer = EditionRenderer(rt.settings, rt.tree)
    url = f"{rt.settings.base_url}/editions/{token}"
    return renderer.render(
        plan, lang, marks=Placeholders.fresh(), web_url=url, notes=notes, footer=False,
        max_items=None,
    )  # fmt: skip
