"""Console pages for subscribers (admins): search, a person's record, add, erase.

Everything goes through the subscription pipeline, so the console cannot bypass suppression:
an erased, unsubscribed or bounced address is never re-activated here. An admin who adds an
address adds it *pending*: the person gets the confirmation email through the outbox and
starts receiving digests only after opening it (double opt-in). A newsroom that must show
consent under the GDPR cannot show it for an address somebody typed in; the person's own
click is the proof. Every change is audited in its own transaction, never with the address
itself (an erased person must not live on in the audit log): targets are "subscriber N".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from publisher.addresses import address_key, normalize_address
from publisher.errors import InputError, SuppressedError
from publisher.i18n import N_
from publisher.i18n import gettext as _
from publisher.models import Subscriber, SubscriberStatus, SuppressionReason
from publisher.pipeline.subscribers import (
    add_subscriber,
    erase_subscriber,
    queue_confirmations,
)
from publisher.store import audit
from publisher.store import subscriber_admin as admin_store
from publisher.store import subscribers as store
from publisher.store.subscriber_admin import Match
from publisher.web.admin.auth import AdminOnly
from publisher.web.admin.render import flash, page
from publisher.web.coverage import form_tree, refused
from publisher.web.deps import SessionDep, StateDep
from publisher.web.templating import autonym, day

router = APIRouter(include_in_schema=False)
PAGE = 50
MAX_ID = 2**31 - 1  # the id column is a 32-bit integer on PostgreSQL
MAX_REGIONS = 300
MIN_CONTAINS = 3
CONSOLE_FORM = "console-1"
STATUSES = tuple(SubscriberStatus)


STATUS_LABELS = {
    SubscriberStatus.active: N_("subscribed"),
    SubscriberStatus.pending: N_("waiting for confirmation"),
    SubscriberStatus.unsubscribed: N_("unsubscribed"),
    SubscriberStatus.bounced: N_("paused (emails bounced)"),
}


def status_label(value: str) -> str:
    """A subscriber status in the page's language (the words the reader's own page uses)."""
    try:
        return _(STATUS_LABELS[SubscriberStatus(value)])
    except ValueError:
        return value


REASON_LABELS = {
    SuppressionReason.erased: N_("erased at the person's request"),
    SuppressionReason.unsubscribed: N_("unsubscribed"),
    SuppressionReason.soft_bounce: N_("repeated soft bounces"),
    SuppressionReason.hard_bounce: N_("hard bounce"),
    SuppressionReason.complaint: N_("complaint (marked as spam)"),
}


def reason_label(value: str) -> str:
    """Why an address is suppressed, in the page's language."""
    try:
        return _(REASON_LABELS[SuppressionReason(value)])
    except ValueError:
        return value


def when(moment: datetime | None) -> str:
    """A stored time as admins read it everywhere in the console: UTC, to the minute."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if moment else ""


# What the templates of these pages call, besides the site's globals.
HELPERS = {
    "status_label": status_label, "reason_label": reason_label, "when": when, "day": day,
    "autonym": autonym,
}  # fmt: skip


def status_of(value: str) -> SubscriberStatus | None:
    """A status filter from a query string; anything else means no filter."""
    try:
        return SubscriberStatus(value)
    except ValueError:
        return None


def target(subscriber_id: int) -> str:
    """How the audit log names a subscriber: by id, never by address."""
    return f"subscriber {subscriber_id}"


def subscriber_or_404(session: SessionDep, subscriber_id: int) -> Subscriber:
    """The subscriber, or the 404 page for an unknown, erased or impossible id."""
    sub = None
    if 0 < subscriber_id <= MAX_ID:
        sub = store.get_subscriber(session, subscriber_id=subscriber_id)
    if sub is None or sub.id is None:
        raise HTTPException(404)
    return sub


@router.get("/admin/subscribers", response_class=HTMLResponse)
def subscribers_page(
    request: Request,
    session: SessionDep,
    user: AdminOnly,
    q: Annotated[str, Query(max_length=320)] = "",
    match: str = "prefix",
    status: str = "",
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> HTMLResponse:
    """Newest first, 50 a page; prefix and substring searches read an index on PostgreSQL."""
    text = q.strip()
    # Trigrams need three characters; shorter text would scan every address (see README).
    mode: Match = "contains" if match == "contains" and len(text) >= MIN_CONTAINS else "prefix"
    wanted = status_of(status)
    rows = admin_store.search(
        session, text=text, match=mode, status=wanted, before_id=before, limit=PAGE + 1
    )
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    context = {
        **HELPERS,
        "page_title": _("Subscribers"), "q": text, "match": mode, "status": wanted,
        "statuses": STATUSES, "rows": rows, "before": before,
        "next_before": rows[-1].id if more and rows else None,
    }  # fmt: skip
    return page(request, "admin/subscribers.html", context, user=user)


def _add_form(
    request: Request, state: StateDep, user: AdminOnly, *, email: str = "",
    checked: tuple[str, ...] = (), locale: str = "", error: str = "", status_code: int = 200,
) -> HTMLResponse:  # fmt: skip
    settings = state.settings
    context = {
        **HELPERS,
        "page_title": _("Add a subscriber"), "email": email, "error": error,
        "form_tree": form_tree(state.runtime.tree, settings.coverage, checked=checked),
        "checked": checked, "locales": settings.locale_list,
        "locale": locale or settings.default_locale,
    }  # fmt: skip
    response = page(request, "admin/subscribers_add.html", context, user=user)
    response.status_code = status_code
    return response


@router.get("/admin/subscribers/new", response_class=HTMLResponse)
def add_page(request: Request, state: StateDep, user: AdminOnly) -> HTMLResponse:
    """The add form: address, regions, language; the person confirms by email."""
    return _add_form(request, state, user)


@router.post("/admin/subscribers/new", response_model=None)
def add(
    request: Request,
    session: SessionDep,
    state: StateDep,
    user: AdminOnly,
    background: BackgroundTasks,
    email: Annotated[str, Form(max_length=400)] = "",
    regions: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    locale: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Add a pending subscriber and queue their confirmation; a known address is not changed."""
    tree, settings = state.runtime.tree, state.settings
    chosen = tuple(sorted({tree.normalize(r) for r in regions[:MAX_REGIONS] if r in tree}))
    language = settings.pick_locale(locale or None)

    def again(error: str) -> HTMLResponse:
        return _add_form(
            request, state, user, email=email, checked=chosen, locale=language, error=error,
            status_code=400,
        )  # fmt: skip

    try:
        address = normalize_address(email)
    except InputError:
        return again(_("That does not look like an email address."))
    if refused(tree, settings.coverage, regions[:MAX_REGIONS]) is not None or not chosen:
        return again(_("Choose at least one region readers can follow."))
    known = store.get_by_email(session, email=address)
    if known is not None and known.id is not None:
        flash(request, _("This address is already known; nothing was changed."))
        return RedirectResponse(f"/admin/subscribers/{known.id}", status_code=303)
    now = state.runtime.now()
    try:
        sub, _created = add_subscriber(
            session, email=address, regions=list(chosen), confirmed=False, locale=language,
            tree=tree, now=now, form_version=CONSOLE_FORM,
        )  # fmt: skip
    except SuppressedError:
        return again(
            _(
                "This address is on the suppression list (erased, unsubscribed or bounced). "
                "Only the person's own confirmation can bring it back: they can sign up on the "
                "site."
            )
        )
    assert sub.id is not None
    queue_confirmations(session, subscriber_ids=[sub.id], now=now)
    audit.record(
        session, actor=user.email, action="add", target=target(sub.id),
        detail=" ".join(chosen), at=now,
    )  # fmt: skip
    background.add_task(state.mailer.wake)
    flash(request, _("Added as pending: a confirmation email is on its way."))
    return RedirectResponse(f"/admin/subscribers/{sub.id}", status_code=303)


@router.get("/admin/subscribers/{subscriber_id:int}", response_class=HTMLResponse)
def detail_page(
    subscriber_id: int, request: Request, session: SessionDep, user: AdminOnly
) -> HTMLResponse:
    """One person: regions, language, status, consents, deliveries, suppression, bounces."""
    sub = subscriber_or_404(session, subscriber_id)
    sid = subscriber_id
    suppression = store.suppression_of(session, email=sub.email)
    context = {
        **HELPERS,
        "page_title": sub.email, "sub": sub,
        "timezone": sub.timezone,
        "regions": store.regions_of(session, subscriber_id=sid),
        "consents": store.consents_of(session, subscriber_id=sid),
        "deliveries": admin_store.recent_deliveries(session, subscriber_id=sid),
        "bounces": admin_store.bounce_events(session, subscriber_id=sid),
        "confirmations": admin_store.outbox_messages(session, subscriber_id=sid),
        "suppression": suppression,
    }  # fmt: skip
    return page(request, "admin/subscribers_detail.html", context, user=user)


def _erase_form(
    request: Request, sub: Subscriber, user: AdminOnly, *, error: str = "", status_code: int = 200
) -> HTMLResponse:
    context = {**HELPERS, "page_title": _("Erase a subscriber"), "sub": sub, "error": error}
    response = page(request, "admin/subscribers_erase.html", context, user=user)
    response.status_code = status_code
    return response


@router.get("/admin/subscribers/{subscriber_id:int}/erase", response_class=HTMLResponse)
def erase_page(
    subscriber_id: int, request: Request, session: SessionDep, user: AdminOnly
) -> HTMLResponse:
    """Asks to type the address: an erase cannot be undone."""
    return _erase_form(request, subscriber_or_404(session, subscriber_id), user)


@router.post("/admin/subscribers/{subscriber_id:int}/erase", response_model=None)
def erase(
    subscriber_id: int,
    request: Request,
    session: SessionDep,
    state: StateDep,
    user: AdminOnly,
    confirm: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    """The erase of the CLI and the API: everything goes but a hashed suppression entry."""
    sub = subscriber_or_404(session, subscriber_id)
    try:
        same = address_key(confirm) == sub.email.lower()
    except InputError:
        same = False
    if not same:
        error = _("The address you typed is not this subscriber's; nothing was erased.")
        return _erase_form(request, sub, user, error=error, status_code=400)
    now = state.runtime.now()
    if not erase_subscriber(session, email=sub.email, now=now):
        raise HTTPException(404)  # erased by someone else a moment ago
    audit.record(session, actor=user.email, action="erase", target=target(subscriber_id), at=now)
    flash(request, _("Erased. Only a hashed entry remains, so no import can add it again."))
    return RedirectResponse("/admin/subscribers", status_code=303)
