"""/admin/bounces (admins): bounce and complaint reports as they arrived, and what they did.

The newest reports a page at a time (keyset on id, never OFFSET), suppressed addresses per
reason and the soft-bounce policy in force; the same store functions as `publisher bounces list`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from publisher.store import bounces as store
from publisher.web.admin.auth import AdminOnly
from publisher.web.admin.render import page
from publisher.web.deps import SessionDep, StateDep

router = APIRouter(include_in_schema=False)
PAGE = 50


def clean(value: str) -> str:
    """Text from a report as one safe line: no control or format characters (bidi overrides)."""
    return "".join(c for c in value if unicodedata.category(c) not in ("Cc", "Cf"))


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One report as the page shows it."""

    id: int
    received: datetime
    source: str
    state: str
    kind: str
    email: str
    status: str
    detail: str


@router.get("/admin/bounces", response_class=HTMLResponse)
def bounces_page(
    request: Request,
    session: SessionDep,
    state: StateDep,
    user: AdminOnly,
    before: int | None = None,
) -> HTMLResponse:
    """Recent reports (50 a page), suppressions per reason, reports per state, the policy."""
    lines = store.recent_reports(session, before_id=before, limit=PAGE + 1)
    rows = [
        ReportRow(r.id, r.received, clean(r.source), clean(r.state), clean(r.kind),
                  clean(r.email), clean(r.status), clean(r.detail))
        for r in lines[:PAGE]
    ]  # fmt: skip
    context = {
        "reports": rows,
        "older": rows[-1].id if len(lines) > PAGE else None,
        "paged": before is not None,
        "suppressions": store.suppressions_by_reason(session),
        "states": store.states(session),
        "soft_limit": state.settings.soft_bounce_limit,
        "soft_days": state.settings.soft_bounce_days,
        "raw_days": state.settings.bounce_raw_days,
    }
    return page(request, "admin/bounces.html", context, user=user)
