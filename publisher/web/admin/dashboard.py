"""GET /admin: the dashboard, for editors and admins.

Followers per region and status, the last four weeks' sends with their ledger rows per state,
the next send per time zone that has readers, and alerts, each linking to the page that acts on
it. Every count comes from the tallies on PostgreSQL (exact, cheap at a million readers).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from babel.dates import format_skeleton
from babel.numbers import format_decimal, format_percent
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from publisher.i18n import current_locale
from publisher.service.dashboard import STATES, STATUSES, gather
from publisher.web.admin.auth import EditorUser
from publisher.web.admin.render import page
from publisher.web.deps import StateDep

router = APIRouter()


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
        board = gather(session, settings=state.settings, tree=rt.tree, now=rt.now())
    context: dict[str, Any] = {
        "board": board,
        "statuses": STATUSES,
        "states": STATES,
        "number": number,
        "percent": percent,
        "moment": moment,
    }
    return page(request, "admin/dashboard.html", context, user=user)
