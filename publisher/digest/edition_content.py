"""What an edition says in one language, from its plan: pure, no store, no templates.

Items are turned into ``DigestItem`` once per (item, language) (``item_view``), so a fire that
builds thousands of editions shows each item the same way in all of them; an edition's content
adds its subject, labels, the editors' notes and the section headings around them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo

from publisher.digest.assembly import (
    MAX_ITEMS,
    PREHEADER_CHARS,
    SUMMARY_CHARS,
    DigestItem,
    count_label,
    period_label,
    pick_locale,
    shorten,
)
from publisher.digest.editions import EditionPlan
from publisher.digest.windows import parse_week
from publisher.i18n import gettext, use_locale
from publisher.i18n.formats import format_names, format_short_day
from publisher.models import ItemPublic

NameOf = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class SectionContent:
    """One region's section: heading, the region's note, and the items shown."""

    region: str
    name: str
    note: str
    count_label: str
    items: tuple[DigestItem, ...]


@dataclass(frozen=True, slots=True)
class EditionContent:
    """An edition in one language: everything the templates need but per-recipient parts."""

    regions: tuple[str, ...]
    regions_label: str
    week: str
    locale: str
    subject: str
    preheader: str
    period_label: str
    count_label: str
    web_url: str
    note: str
    sections: tuple[SectionContent, ...]
    item_ids: tuple[int, ...]
    more: int

    @property
    def empty(self) -> bool:
        return not self.item_ids


def item_view(item: ItemPublic, *, locale: str, base_url: str, name_of: NameOf,
              tz: tzinfo) -> DigestItem:  # fmt: skip
    """One item as every edition in ``locale`` shows it."""
    return DigestItem(
        id=item.id, title=item.title, summary=shorten(item.summary, SUMMARY_CHARS),
        url=f"{base_url}/items/{item.id}",
        region_names=tuple(name_of(slug) for slug in item.regions), published=item.published,
        date_label=format_short_day(item.published.astimezone(tz).date(), pick_locale(locale)),
        lang=item.lang, image_url=item.image_url, image_alt=item.image_alt,
    )  # fmt: skip


def edition_subject(names: list[str], week: str, locale: str) -> str:
    """E.g. "Your news: Guatemala, El Salvador and Honduras, week 50 of 2026"."""
    year, number = parse_week(week)
    loc = pick_locale(locale)
    with use_locale(loc):
        text = gettext("Your news: %(regions)s, week %(number)s of %(year)s")
    return text % {"regions": format_names(names, loc), "number": number, "year": year}


def build_edition(
    plan: EditionPlan,
    *,
    locale: str,
    name_of: NameOf,
    view: Callable[[ItemPublic], DigestItem],
    web_url: str,
    notes: Mapping[str, str] | None = None,
    max_items: int | None = MAX_ITEMS,
) -> EditionContent:
    """The edition of ``plan`` in ``locale``; ``notes`` maps '' (the week) and region slugs to
    the editors' notes; at most ``max_items`` items are shown (Gmail clips long emails)."""
    loc = pick_locale(locale)
    notes = notes or {}
    names = [name_of(region) for region in plan.regions]
    budget = max_items if max_items is not None else len(plan.item_ids)
    sections = []
    for section in plan.sections:
        shown = tuple(view(it) for it in section.items[: max(0, budget)])
        budget -= len(shown)
        sections.append(
            SectionContent(
                region=section.region,
                name=name_of(section.region),
                note=notes.get(section.region, ""),
                count_label=count_label(len(section.items), loc),
                items=shown,
            )
        )
    total = len(plan.item_ids)
    counted = count_label(total, loc)
    titles = "; ".join(it.title for s in plan.sections for it in s.items[:2])
    with use_locale(loc):
        regions_label = format_names(names, loc)
    return EditionContent(
        regions=plan.regions, regions_label=regions_label, week=plan.week, locale=loc,
        subject=edition_subject(names, plan.week, loc),
        preheader=shorten(f"{counted}: {titles}" if titles else counted, PREHEADER_CHARS),
        period_label=period_label(plan.week, loc), count_label=counted, web_url=web_url,
        note=notes.get("", ""), sections=tuple(s for s in sections if s.items or s.note),
        item_ids=plan.item_ids, more=max(0, total - sum(len(s.items) for s in sections)),
    )  # fmt: skip
