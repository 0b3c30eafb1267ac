"""How an edition shows items and labels its week: pure, no store, no templates.

The item as every edition shows it (``DigestItem``), the order items come in, the email's item
cap, the supported email languages and the labels (counts, the week's dates) that
publisher.digest.edition_content builds an edition's content from.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from babel.support import NullTranslations

from publisher.digest.windows import week_start_date
from publisher.i18n.context import pick_locale as pick_supported
from publisher.i18n.context import translations_of
from publisher.i18n.formats import format_range
from publisher.models import ItemPublic

MAX_ITEMS = 30  # more would push the HTML past Gmail's ~102 KB clipping limit
SUMMARY_CHARS = 480
PREHEADER_CHARS = 140
LOCALES = ("en", "es", "pt")


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One item as an edition shows it."""

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


def count_label(n: int, locale: str) -> str:
    """E.g. "3 new items" / "3 noticias nuevas"."""
    return _count_label(n, translations_of(pick_locale(locale)))


@functools.lru_cache(maxsize=1024)
def _count_label(n: int, translations: NullTranslations) -> str:
    """Cached per catalog: every section of ten thousand editions is labelled."""
    return translations.ngettext("%(num)d new item", "%(num)d new items", n) % {"num": n}


@functools.lru_cache(maxsize=256)
def period_label(week: str, locale: str) -> str:
    """Monday to Sunday of the week, e.g. "Nov 23 – 29, 2026" (CLDR data, no catalog: cached)."""
    monday = week_start_date(week)
    return format_range(monday, monday + timedelta(days=6), pick_locale(locale))
