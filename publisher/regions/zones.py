"""Readers' time zones: the IANA zones a reader may choose, and the default one for their regions.

A country's main zone is the first zone IANA's ``zone.tab`` lists for its ISO code (the file is
ordered so the most populous zone comes first where geography allows). ``zone.tab`` rather than
``zone1970.tab``: it lists every country under zones of its own (Luxembourg gets
Europe/Luxembourg, not Europe/Brussels), and both files put the same outlying zone first for a
few large countries, so those take their most populous zone instead (``MAIN_ZONE_OVERRIDES``:
Brazil's first entry is America/Noronha, islands of 3,000 people one hour off Sao Paulo).

The data comes from the pinned ``tzdata`` package (the same zones zoneinfo resolves), or the
system's zoneinfo directory when that package is absent. Pure functions, read once per process.
"""

from __future__ import annotations

import functools
import sysconfig
import zoneinfo
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from publisher.errors import InputError
from publisher.regions.tree import RegionTree

# The first zone.tab entry is an outlying area for these; their most populous zone instead.
MAIN_ZONE_OVERRIDES = {
    "AU": "Australia/Sydney",  # zone.tab: Australia/Lord_Howe (an island)
    "BR": "America/Sao_Paulo",  # America/Noronha (islands)
    "CA": "America/Toronto",  # America/St_Johns (Newfoundland)
    "RU": "Europe/Moscow",  # Europe/Kaliningrad (an exclave)
    "UA": "Europe/Kyiv",  # Europe/Simferopol (Crimea)
    "UZ": "Asia/Tashkent",  # Asia/Samarkand
}
UTC_NAME = "UTC"
_NOT_ZONES = frozenset({"Factory", "localtime", "posixrules", "leapseconds"})


def _zone_tab_text() -> str:
    try:
        return resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        pass
    for base in (*zoneinfo.TZPATH, sysconfig.get_config_var("TZPATH") or ""):
        path = Path(base) / "zone.tab"
        if base and path.is_file():
            return path.read_text("utf-8")
    raise FileNotFoundError("no zone.tab: install the tzdata package")


@functools.cache
def zone_table() -> tuple[tuple[str, str], ...]:
    """(ISO alpha-2 country code, zone name) rows in zone.tab's order."""
    rows = []
    for line in _zone_tab_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split("\t")
        rows.append((fields[0].upper(), fields[2]))
    return tuple(rows)


@functools.cache
def main_zones() -> dict[str, str]:
    """Country code -> its main zone (first zone.tab entry, or the override)."""
    found: dict[str, str] = {}
    for country, name in zone_table():
        found.setdefault(country, name)
    found.update(MAIN_ZONE_OVERRIDES)
    return found


def main_zone(iso2: str) -> str | None:
    """The main zone of a country (ISO alpha-2, any case), or None for an unknown code."""
    return main_zones().get(iso2.upper())


def default_zone(tree: RegionTree, followed: Iterable[str]) -> str | None:
    """The main zone of the first country among ``followed``, in the tree's order; None if none.

    Subscriptions keep no order of choice, so "first" is the tree's (geographic) order, the
    order the forms list regions in. A followed region that is not a country (Central America)
    does not count; None means the reader's zone is the TIMEZONE setting.
    """
    wanted = set(followed)
    for region in tree:
        if region.slug in wanted and region.level == "country" and region.iso2:
            found = main_zone(region.iso2)
            if found is not None:
                return found
    return None


@functools.cache
def known_zones() -> frozenset[str]:
    """Every zone name zoneinfo can load (links such as US/Eastern included)."""
    return frozenset(zoneinfo.available_timezones() - _NOT_ZONES) | {UTC_NAME}


def check_zone(name: str) -> str:
    """``name`` if it is an IANA zone zoneinfo knows, else InputError saying what to give."""
    cleaned = name.strip() if isinstance(name, str) else ""
    if cleaned not in known_zones():
        shown = repr(cleaned[:64]) if cleaned.isprintable() else "that value"
        raise InputError(f"{shown} is not an IANA time zone; use a name like America/Guatemala")
    return cleaned


@functools.cache
def offered_zones() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The zones a reader picks from, grouped by area: ((area, (zone, ...)), ...), sorted.

    zone.tab's zones (one per place, no legacy links) plus UTC, under "Etc".
    """
    by_area: dict[str, set[str]] = {}
    for _country, name in zone_table():
        area, _, _ = name.partition("/")
        by_area.setdefault(area, set()).add(name)
    by_area.setdefault("Etc", set()).add(UTC_NAME)
    return tuple((area, tuple(sorted(by_area[area]))) for area in sorted(by_area))
