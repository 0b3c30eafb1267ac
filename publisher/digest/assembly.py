"""What a region's weekly digest says, decided once from its items: pure, no store, no templates.

The result (DigestContent) is everything the email templates need except the per-recipient
parts, so rendering is a function of it and the branding alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from publisher.digest.windows import parse_week, week_start_date
from publisher.i18n import gettext, ngettext, use_locale
from publisher.i18n.context import pick_locale as pick_supported
from publisher.i18n.formats import format_range, format_short_day
from publisher.models import ItemPublic

MAX_ITEMS = 30  # more would push the HTML past Gmail's ~102 KB clipping limit
SUMMARY_CHARS = 480
PREHEADER_CHARS = 140
LOCALES = ("en", "es", "pt")


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One item as the digest shows it."""

    id: int
    title: str
    summary: str
    url: str
    region_names: tuple[str, ...]
    published: datetime
    date_label: str
    lang: str = ""  # the language the item is written in (shown as written)
    image_url: str | None = None
    image_alt: str = ""


@dataclass(frozen=True, slots=True)
class DigestContent:
    """A digest's frozen content: the items in order, subject, preheader and labels."""

    region: str
    region_name: str
    week: str
    locale: str
    subject: str
    preheader: str
    period_label: str
    count_label: str
    archive_url: str
    item_ids: tuple[int, ...]
    items: tuple[DigestItem, ...]
    more: int

    @property
    def empty(self) -> bool:
        """No items in the window: the digest is skipped and nobody gets an email."""
        return not self.item_ids


def pick_locale(locale: str) -> str:
    """A supported locale for ``locale`` ("es-CL" -> "es"), English otherwise."""
    return pick_supported(locale, LOCALES, "en")


def shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "…"


def order_items(items: Sequence[ItemPublic]) -> list[ItemPublic]:
    """Newest first, ties broken by id so the order never depends on the query plan."""
    return sorted(items, key=lambda it: (it.published, it.id), reverse=True)


def subject_for(region_name: str, week: str, locale: str) -> str:
    """E.g. "Central America news, week 48 of 2026"."""
    year, number = parse_week(week)
    with use_locale(pick_locale(locale)):
        text = gettext("%(region)s news, week %(number)s of %(year)s")
    return text % {"region": region_name, "number": number, "year": year}


def count_label(n: int, locale: str) -> str:
    """E.g. "3 new items" / "3 noticias nuevas"."""
    with use_locale(pick_locale(locale)):
        return ngettext("%(num)d new item", "%(num)d new items", n) % {"num": n}


@functools.lru_cache(maxsize=256)
def period_label(week: str, locale: str) -> str:
    """Monday to Sunday of the week, e.g. "Nov 23 – 29, 2026" (CLDR data, no catalog: cached)."""
    monday = week_start_date(week)
    return format_range(monday, monday + timedelta(days=6), pick_locale(locale))


def build_content(
    items: Sequence[ItemPublic],
    *,
    region: str,
    week: str,
    base_url: str,
    name_of: Callable[[str], str],
    locale: str = "en",
    tz: tzinfo = UTC,
    max_items: int = MAX_ITEMS,
) -> DigestContent:
    """The digest of ``region`` for ``week`` from the items published in its window."""
    loc = pick_locale(locale)
    ordered = order_items(items)
    shown = tuple(
        DigestItem(
            id=it.id,
            title=it.title,
            summary=shorten(it.summary, SUMMARY_CHARS),
            url=f"{base_url}/items/{it.id}",
            region_names=tuple(name_of(slug) for slug in it.regions),
            published=it.published,
            date_label=format_short_day(it.published.astimezone(tz).date(), loc),
            lang=it.lang,
            image_url=it.image_url,
            image_alt=it.image_alt,
        )
        for it in ordered[:max_items]
    )
    counted = count_label(len(ordered), loc)
    titles = "; ".join(it.title for it in ordered[:5])
    region_name = name_of(region)
    return DigestContent(
        region=region,
        region_name=region_name,
        week=week,
        locale=loc,
        subject=subject_for(region_name, week, loc),
        preheader=shorten(f"{counted}: {titles}" if titles else counted, PREHEADER_CHARS),
        period_label=period_label(week, loc),
        count_label=counted,
        archive_url=f"{base_url}/archive/{region}/{week}",
        item_ids=tuple(it.id for it in ordered),
        items=shown,
        more=max(0, len(ordered) - len(shown)),
    )
