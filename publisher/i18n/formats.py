"""Dates, date ranges and numbers in the current language, through Babel's CLDR data."""

from __future__ import annotations

import functools
from datetime import date, datetime

from babel import Locale
from babel.dates import format_date, format_interval
from babel.lists import format_list

from publisher.i18n.context import current_locale


def format_day(moment: datetime | date | None, locale: str | None = None) -> str:
    """E.g. "November 27, 2026" / "27 de noviembre de 2026" (the date as given, no zone shift)."""
    if moment is None:
        return ""
    day = moment.date() if isinstance(moment, datetime) else moment
    return format_date(day, "long", locale=locale or current_locale())


def format_short_day(day: date, locale: str | None = None) -> str:
    """E.g. "Nov 24, 2026" / "24 nov 2026"."""
    return format_date(day, "medium", locale=locale or current_locale())


def format_range(start: date, end: date, locale: str | None = None) -> str:
    """E.g. "Nov 30 – Dec 6, 2026" / "30 nov – 6 dic 2026"."""
    return format_interval(start, end, "yMMMd", locale=locale or current_locale())


def format_names(names: list[str], locale: str | None = None) -> str:
    """E.g. "Guatemala, El Salvador and Honduras" / "Guatemala, El Salvador y Honduras"."""
    return _names(tuple(names), locale or current_locale()) if names else ""


@functools.lru_cache(maxsize=1024)
def _names(names: tuple[str, ...], locale: str) -> str:
    """Cached: an edition's subject and heading both name its regions, and Babel is slow."""
    return format_list(list(names), locale=_locale(locale))


@functools.cache
def _locale(tag: str) -> Locale:
    """Parsed once: parsing the tag was most of formatting a list of region names."""
    return Locale.parse(tag)
