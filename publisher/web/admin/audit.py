"""/admin/audit (admins): the audit log newest first, 50 a page by id (keyset), by actor/action."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from publisher.i18n import gettext as _
from publisher.store import audit
from publisher.web.admin.auth import AdminOnly
from publisher.web.admin.render import page
from publisher.web.deps import SessionDep

router = APIRouter()
PAGE = 50


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_log(
    request: Request,
    user: AdminOnly,
    session: SessionDep,
    actor: Annotated[str, Query(max_length=320)] = "",
    action: Annotated[str, Query(max_length=32)] = "",
    before: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    actor, action = actor.strip(), action.strip()
    rows = list(audit.page(session, before=before, actor=actor, action=action, limit=PAGE + 1))
    filters = [(k, v) for k, v in (("actor", actor), ("action", action)) if v]
    older = None
    if len(rows) > PAGE:
        rows = rows[:PAGE]
        older = "/admin/audit?" + urlencode([*filters, ("before", str(rows[-1].id))])
    context = {
        "page_title": _("Audit log"),
        "entries": rows,
        "actor": actor,
        "action": action,
        "older": older,
        "first_page": before is None,
        "newest": "/admin/audit" + ("?" + urlencode(filters) if filters else ""),
    }
    return page(request, "admin/audit.html", context, user=user)
