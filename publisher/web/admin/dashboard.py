"""GET /admin: the dashboard, for editors and admins.

Followers per region and status, the last four weeks' sends with their ledger rows per state,
the next send per time zone that has readers, and alerts, each linking to the page that acts on
it. Counts come from the tallies (exact, cheap); readers per zone take one pass over the
subscribers, so on PostgreSQL that part is kept for ZONES_FOR and the page says since when.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from babel.dates import format_skeleton
from babel.numbers import format_decimal, format_percent
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from publisher.i18n import current_locale
from publisher.runtime import Runtime
from publisher.service.dashboard import STATES, STATUSES, gather, reader_zones
from publisher.store import tallies
from publisher.web.admin.auth import EditorUser
from publisher.web.admin.render import page
from publisher.web.deps import StateDep

router = APIRouter()
ZONES_FOR = timedelta(minutes=5)


def _zones(
    request: Request, rt: Runtime, session: Session
) -> tuple[dict[str | None, int], datetime]:
    """Readers per zone: live on SQLite; on PostgreSQL kept per app for ZONES_FOR."""
    now = rt.now()
    if not tallies.kept(session):
        return reader_zones(session), now
    kept: tuple[dict[str | None, int], datetime] | None = getattr(
        request.app.state, "dashboard_zones", None
    )
    if kept is None or not (kept[1] <= now < kept[1] + ZONES_FOR):
        kept = (reader_zones(session), now)
        request.app.state.dashboard_zones = kept
    return kept


def number(value: int) -> str:
    return format_decimal(value, locale=current_locale())


def percent(value: float) -> str:
    return format_percent(value, "#,##0.0%", locale=current_locale())


def moment(value: datetime, skeleton: str = "MMMEd") -> str:
    """A date (and time: skeleton "Hm") on ``value``'s own clock, in the page's language."""
    return format_skeleton(
        skeleton, value, tzinfo=value.tzinfo, locale=current_locale(), fuzzy=True
    )


@router.get("/admin", response_class=HTMLResponse)
def dashboard(request: Request, user: EditorUser, state: StateDep) -> HTMLResponse:
    """The dashboard: what the newsroom's readers and sends look like right now."""
    rt = state.runtime
    with rt.session() as session:
        zones, as_of = _zones(request, rt, session)
        board = gather(
            session, settings=state.settings, tree=rt.tree, now=rt.now(), zones=zones,
            zones_as_of=as_of,
        )  # fmt: skip
    context: dict[str, Any] = {
        "board": board,
        "statuses": STATUSES,
        "states": STATES,
        "number": number,
        "percent": percent,
        "moment": moment,
        "zones_cached": as_of < board.now,
    }
    return page(request, "admin/dashboard.html", context, user=user)
