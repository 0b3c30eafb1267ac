"""The archive as part of the site: /archive, /archive/{slug}, /archive/{slug}/{week}.

A region's week lists the region's items (feed membership: the region, inside it, around it)
that became visible that week (``visible_at``, ISO weeks in TIMEZONE), withdrawn ones marked.
Bad week strings answer a clear 404 page. The email copy of a sent digest stays one click away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from publisher.digest.windows import format_week, iso_week_of, parse_week, week_window, zone
from publisher.errors import BadToken, InputError, UnknownRegionError
from publisher.i18n import current_locale, gettext
from publisher.models import ItemPublic, WithdrawnItem
from publisher.pipeline.digests import stored_rendition
from publisher.pipeline.edition_tools import web_copy as web_copy_of_edition
from publisher.store.archive import visible_between, visible_times
from publisher.store.withdrawn import withdrawn_between, withdrawn_times
from publisher.web.archive import find_digest, web_copy
from publisher.web.browse import tree_rows
from publisher.web.deps import SessionDep, StateDep
from publisher.web.security import ARCHIVE_CSP
from publisher.web.templating import render

router = APIRouter(include_in_schema=False)
_WEEK = re.compile(r"[0-9]{4}-W[0-9]{2}")
LAST_YEAR = 9998  # the week after 9999-W52 has no date


@dataclass(frozen=True, slots=True)
class ArchiveWeek:
    """One week of a region's archive: its label, its local Monday and Sunday, its item count."""

    week: str
    first: date
    last: date
    count: int


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """One line of a week page: a visible item, or the tombstone of a withdrawn one."""

    item_id: int
    title: str
    visible_at: datetime
    regions: list[str]
    item: ItemPublic | None = None
    withdrawn: WithdrawnItem | None = None


def valid_week(week: str) -> bool:
    """Whether ``week`` is a canonical ISO week label the archive can show (1970 to 9998)."""
    if not _WEEK.fullmatch(week):
        return False
    try:
        year, number = parse_week(week)
    except InputError:
        return False
    return year <= LAST_YEAR and format_week(year, number) == week


def _region(state: StateDep, slug: str, suffix: str = "") -> Response | None:
    """None for a known slug; a redirect to the canonical slug; 404 for an unknown one."""
    tree = state.runtime.tree
    if slug in tree:
        return None
    try:
        canonical = tree.normalize(slug)
    except UnknownRegionError:
        raise HTTPException(404, "no such region") from None
    return RedirectResponse(f"/archive/{canonical}{suffix}", status_code=301)


def region_weeks(session: SessionDep, state: StateDep, slug: str) -> list[ArchiveWeek]:
    """The ISO weeks (in TIMEZONE) in which items of ``slug`` became visible, newest first."""
    tz = zone(state.settings.timezone)
    related = state.runtime.tree.related(slug)
    moments = visible_times(session, regions=related, now=state.runtime.now())
    moments += withdrawn_times(session, regions=related)
    counts: dict[str, int] = {}
    for moment in moments:
        label = iso_week_of(moment, tz)
        counts[label] = counts.get(label, 0) + 1
    weeks = []
    for label in sorted(counts, reverse=True):
        year, number = parse_week(label)
        monday = date.fromisocalendar(year, number, 1)
        weeks.append(ArchiveWeek(label, monday, monday + timedelta(days=6), counts[label]))
    return weeks


@router.get("/archive", response_class=HTMLResponse)
def archive_index(request: Request, session: SessionDep, state: StateDep) -> HTMLResponse:
    tree = state.runtime.tree
    counts = state.region_counts.get(session, now=state.runtime.now())
    return render(
        state.templates,
        request,
        "archive_index.html",
        {"page_title": gettext("Archive"), "tree": tree_rows(tree, counts, include=set())},
    )


@router.get("/archive/{slug}", response_class=HTMLResponse)
def archive_region(request: Request, slug: str, session: SessionDep, state: StateDep) -> Response:
    moved = _region(state, slug)
    if moved is not None:
        return moved
    region = state.runtime.tree.get(slug)
    name = region.name(current_locale())
    return render(
        state.templates,
        request,
        "archive_region.html",
        {
            "page_title": gettext("%(region)s: archive") % {"region": name},
            "region": region,
            "weeks": region_weeks(session, state, slug),
        },
    )


@router.get("/archive/{slug}/{week}", response_class=HTMLResponse)
def archive_week(
    request: Request, slug: str, week: str, session: SessionDep, state: StateDep
) -> Response:
    moved = _region(state, slug, f"/{week}" if valid_week(week) else "")
    if moved is not None:
        return moved
    region = state.runtime.tree.get(slug)
    if not valid_week(week):
        context = {"page_title": gettext("No such week"), "region": region, "week": week}
        return render(state.templates, request, "archive_bad_week.html", context, status_code=404)
    tz = zone(state.settings.timezone)
    start, end = week_window(week, tz)
    related = state.runtime.tree.related(slug)
    now = state.runtime.now()
    entries = [
        ArchiveEntry(i.id, i.title, i.visible_at or i.published, i.regions, item=i)
        for i in visible_between(session, regions=related, start=start, end=end, now=now)
    ]
    entries += [
        ArchiveEntry(w.item_id, w.title, w.visible_at, w.regions.split(), withdrawn=w)
        for w in withdrawn_between(session, regions=related, start=start, end=end)
    ]
    entries.sort(key=lambda e: (e.visible_at, e.item_id))
    labels = [w.week for w in region_weeks(session, state, slug)]
    monday = start.astimezone(tz).date()
    return render(
        state.templates,
        request,
        "archive_week.html",
        {
            "page_title": gettext("%(region)s, week %(week)s")
            % {"region": region.name(current_locale()), "week": week},
            "region": region,
            "week": week,
            "first": monday,
            "last": monday + timedelta(days=6),
            "entries": entries,
            "previous": max((w for w in labels if w < week), default=None),
            "next": min((w for w in labels if w > week), default=None),
            "digest": find_digest(session, region=slug, week=week),
        },
    )


@router.get("/archive/{slug}/{week}/email", response_class=HTMLResponse)
def archive_email(slug: str, week: str, session: SessionDep, state: StateDep) -> Response:
    """The web copy of the digest email sent for (region, week), without anyone's details: in
    the reader's language when it was rendered for readers of it, else the first rendering."""
    digest = find_digest(session, region=slug, week=week)
    if digest is None:
        raise HTTPException(404, "no digest for this region and week")
    shown = stored_rendition(session, digest, current_locale())
    return HTMLResponse(
        web_copy(digest, settings=state.settings, html=shown.html),
        headers={"content-security-policy": ARCHIVE_CSP, "content-language": shown.language},
    )


@router.get("/editions/{token}", response_class=HTMLResponse)
def edition_copy(token: str, state: StateDep) -> Response:
    """An edition's web copy ("view in your browser"): signed id, every item, nobody's details."""
    if len(token) > 200:
        raise HTTPException(404, "no such edition")
    try:
        shown = web_copy_of_edition(state.runtime, token)
    except (BadToken, LookupError) as e:
        raise HTTPException(404, "no such edition") from e
    return HTMLResponse(
        shown.html,
        headers={"content-security-policy": ARCHIVE_CSP, "content-language": shown.language},
    )
