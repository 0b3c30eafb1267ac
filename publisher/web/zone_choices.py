"""The time-zone select of the preferences page: IANA zones grouped by area, named in a language.

A zone's label is its exemplar city in the page's language (CLDR through Babel) with its country
(from the region data) when that says something more: "Ciudad de México, México". Both are
data, like region names; the area headings are interface text in the catalogs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from babel.core import UnknownLocaleError
from babel.dates import get_timezone_location

from publisher.errors import UnknownRegionError
from publisher.i18n import N_
from publisher.i18n import gettext as _
from publisher.regions.tree import RegionTree
from publisher.regions.zones import UTC_NAME, offered_zones, zone_table

AREAS = {
    "Africa": N_("Africa"), "America": N_("The Americas"), "Antarctica": N_("Antarctica"),
    "Arctic": N_("Arctic"), "Asia": N_("Asia"), "Atlantic": N_("Atlantic Ocean"),
    "Australia": N_("Australia"), "Europe": N_("Europe"), "Indian": N_("Indian Ocean"),
    "Pacific": N_("Pacific Ocean"), "Etc": N_("Universal time"),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ZoneGroup:
    """One <optgroup>: the area's heading and its (zone, label) options, by label."""

    label: str
    options: tuple[tuple[str, str], ...]


@functools.cache
def _countries() -> dict[str, str]:
    return {name: country for country, name in zone_table()}


@functools.cache
def zone_label(tree: RegionTree, name: str, locale: str) -> str:
    """ "City, Country" of a zone in ``locale`` (the zone name itself when CLDR has no city)."""
    if name == UTC_NAME:
        return UTC_NAME
    try:
        city = str(get_timezone_location(name, locale=locale, return_city=True))
    except (LookupError, UnknownLocaleError, ValueError):
        city = name.rsplit("/", 1)[-1].replace("_", " ")
    code = _countries().get(name)
    try:
        country = tree.get(tree.normalize(code)).name(locale) if code else ""
    except UnknownRegionError:
        country = ""
    return city if not country or country in city else f"{city}, {country}"


def zone_groups(tree: RegionTree, locale: str, *, also: str | None = None) -> list[ZoneGroup]:
    """Every offered zone by area (``also``: a zone to offer even if it is not in zone.tab,
    such as a legacy name set through the API, so the page can show it selected)."""
    areas = [(area, list(names)) for area, names in offered_zones()]
    if also and not any(also in names for _a, names in areas):
        area = also.partition("/")[0] if "/" in also else "Etc"
        found = next((names for a, names in areas if a == area), None)
        if found is None:
            areas.append((area, [also]))
        else:
            found.append(also)
    groups = []
    for area, names in areas:
        options = sorted(
            ((n, zone_label(tree, n, locale)) for n in names), key=lambda o: o[1].casefold()
        )
        heading = _(AREAS[area]) if area in AREAS else area
        groups.append(ZoneGroup(heading, tuple(options)))
    return groups
