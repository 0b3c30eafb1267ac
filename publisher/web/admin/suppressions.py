"""The suppression list (admins): who gets no mail, why, since when; an address looked up.

The list holds hashes, not addresses (erasure keeps nothing else), so it shows a short hash,
the reason and the dates, and an admin looks a person up by typing their address. Policy on
lifting an entry: a bounce (soft or hard) may be lifted when the person says their mailbox
works again, which leaves the address as one that left (see pipeline.subscribers.clear_bounce);
a complaint, an unsubscribe or an erasure is never lifted here, only the person's own
confirmation brings such an address back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from publisher.addresses import normalize_address, suppression_hash
from publisher.errors import InputError
from publisher.i18n import gettext as _
from publisher.models import SuppressionReason
from publisher.pipeline.subscribers import CLEARABLE, clear_bounce
from publisher.store import audit
from publisher.store import subscriber_admin as admin_store
from publisher.store import subscribers as store
from publisher.web.admin.auth import AdminOnly
from publisher.web.admin.render import flash, page
from publisher.web.admin.subscribers import HELPERS, target
from publisher.web.deps import SessionDep, StateDep

router = APIRouter(include_in_schema=False)
PAGE = 50
REASONS = tuple(SuppressionReason)


def cursor(created: datetime, email_hash: str) -> str:
    """The ``before`` value of the next page."""
    return f"{created.isoformat()}_{email_hash}"


def parse_cursor(value: str) -> tuple[datetime, str] | None:
    """A ``before`` value back; anything malformed starts from the newest entry."""
    when, _sep, digest = value.partition("_")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        return None
    try:
        at = datetime.fromisoformat(when)
    except ValueError:
        return None
    return (at, digest) if at.tzinfo is not None else None


def _reason(value: str) -> SuppressionReason | None:
    try:
        return SuppressionReason(value)
    except ValueError:
        return None


@router.get("/admin/suppressions", response_class=HTMLResponse)
def suppressions_page(
    request: Request,
    session: SessionDep,
    user: AdminOnly,
    reason: str = "",
    before: Annotated[str, Query(max_length=120)] = "",
    address: Annotated[str, Query(max_length=400)] = "",
) -> HTMLResponse:
    """Newest first, 50 a page, with a filter by reason and a look-up by address."""
    wanted = _reason(reason)
    rows = admin_store.suppressions(
        session, reason=wanted, before=parse_cursor(before), limit=PAGE + 1
    )
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    looked_up, entry, subscriber, error = "", None, None, ""
    if address.strip():
        try:
            looked_up = normalize_address(address)
        except InputError:
            error = _("That does not look like an email address.")
        else:
            entry = store.suppression_of(session, email=looked_up)
            subscriber = store.get_by_email(session, email=looked_up)
    context = {
        **HELPERS,
        "page_title": _("Suppression list"), "rows": rows, "reason": wanted, "reasons": REASONS,
        "next_before": cursor(rows[-1].created, rows[-1].email_hash) if more and rows else None,
        "address": looked_up or address.strip(), "entry": entry, "subscriber": subscriber,
        "error": error, "clearable": CLEARABLE,
    }  # fmt: skip
    return page(request, "admin/subscribers_suppressions.html", context, user=user)


@router.post("/admin/suppressions/clear", response_model=None)
def clear(
    request: Request,
    session: SessionDep,
    state: StateDep,
    user: AdminOnly,
    address: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    """Lift a bounce; anything else is refused with the reason, and nothing changes."""
    try:
        email = normalize_address(address)
    except InputError:
        email = ""
    now = state.runtime.now()
    if email and clear_bounce(session, email=email, now=now):
        sub = store.get_by_email(session, email=email)
        name = target(sub.id) if sub is not None and sub.id is not None else "suppression"
        detail = f"bounce lifted; hash {suppression_hash(email)[:12]}"
        audit.record(session, actor=user.email, action="edit", target=name, detail=detail, at=now)
        flash(request, _("Bounce lifted: the person can confirm again from the site."))
    else:
        flash(
            request,
            _(
                "Nothing changed: only a bounce can be lifted here. Complaints, unsubscribes "
                "and erasures end only by the person's own confirmation."
            ),
        )
    return RedirectResponse("/admin/suppressions", status_code=303)
