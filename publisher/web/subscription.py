"""Subscription routes: POST /subscribe, /confirm, /preferences and /unsubscribe (RFC 8058).

Signed links are the only authority: a token carries the subscriber's opaque key, one salt per
purpose (publisher.tokens). Any bad token (forged, expired, truncated, wrong purpose) gets the
same generic 400 page and changes nothing.

CSRF on /preferences: the page is reached through a signed link, so there is no cookie session
to ride on, and the POST goes back to the same capability URL. The form also carries a second
signed value (salt "publisher.csrf.preferences", one day) bound to the subscriber key: a POST
must come from a page rendered for this very subscriber recently, a form cannot be replayed
against another subscriber's link, and a cross-site POST (Origin of another host) is refused.
The one-click unsubscribe POST needs none of this by design (RFC 8058: no cookies, no token in
the body; mail providers send it from their servers): it is idempotent and always answers 200.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from babel.dates import format_time, get_day_names
from fastapi import APIRouter, BackgroundTasks, Form, HTTPException, Request
from fastapi.responses import HTMLResponse
from itsdangerous import BadData, URLSafeTimedSerializer

from publisher.addresses import normalize_address
from publisher.errors import BadToken, InputError
from publisher.i18n import current_locale
from publisher.i18n import gettext as _
from publisher.i18n.context import base_language, set_locale
from publisher.models import Subscriber, SubscriberStatus
from publisher.pipeline import subscription as flow
from publisher.regions.zones import check_zone, default_zone
from publisher.schedule.times import parse_day, parse_time
from publisher.store.subscribers import get_by_key, regions_of, set_timezone
from publisher.store.subscribers import set_locale as set_subscriber_locale
from publisher.web.coverage import coverage_root, form_tree, refused
from publisher.web.deps import SessionDep, StateDep, WebState
from publisher.web.locale import reader_locale
from publisher.web.templating import render
from publisher.web.zone_choices import zone_groups, zone_label

router = APIRouter(include_in_schema=False)
AUTO_ZONE = "auto"
CSRF_MAX_AGE = 86_400
MAX_REGIONS = 300


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _notice(
    state: WebState,
    request: Request,
    title: str,
    *lines: str,
    links: list[tuple[str, str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {"page_title": title, "title": title, "lines": lines, "links": links or []}
    return render(state.templates, request, "notice.html", context, status_code=status_code)


def _subscriber(
    state: WebState, request: Request, session: SessionDep, purpose: str, token: str
) -> Subscriber | None:
    """The subscriber a valid token names (None if erased since); 400 for any bad token."""
    try:
        key = state.tokens.read(purpose, token, now=state.token_now())
    except BadToken:
        raise HTTPException(400, "bad token") from None
    return _speaking(state, request, get_by_key(session, key=key))


def _speaking(state: WebState, request: Request, sub: Subscriber | None) -> Subscriber | None:
    if sub is not None:  # a reader's own pages speak their language (unless ?lang= says otherwise)
        set_locale(reader_locale(request, state.settings, sub.locale))
    return sub


def _csrf(state: WebState) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        list(reversed(state.settings.secret_keys())), salt="publisher.csrf.preferences"
    )


def _same_origin(request: Request) -> bool:
    """False only for a POST that names another site as its origin.

    Our pages send Referrer-Policy: no-referrer (tokens live in URLs), so browsers send
    ``Origin: null`` for our own forms; that, or no Origin at all, is left to the CSRF token.
    """
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


@router.post("/subscribe", response_class=HTMLResponse)
def subscribe(
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    state: StateDep,
    email: Annotated[str, Form(max_length=400)] = "",
    regions: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    website: Annotated[str, Form(max_length=400)] = "",
    form_version: Annotated[str, Form(max_length=32)] = flow.FORM_VERSION,
    locale: Annotated[str, Form(max_length=16)] = "",
) -> HTMLResponse:
    """The same page, status and work for a new, pending or active address."""
    wait = state.ip_limit.hit(_ip(request))
    if wait:
        return _too_many(state, request, wait)
    if website:  # the honeypot: only bots fill in a field people cannot see
        return _check_inbox(state, request)
    try:
        address = normalize_address(email)
    except InputError:
        return _notice(
            state,
            request,
            _("Check the email address"),
            _("That does not look like an email address. Please go back and correct it."),
            links=[(_("Back to the form"), "/#subscribe")],
            status_code=400,
        )
    tree = state.runtime.tree
    outside = refused(tree, state.settings.coverage, regions[:MAX_REGIONS])
    if outside is not None:
        return _refused(state, request, outside, back="/#subscribe")
    chosen = sorted({tree.normalize(r) for r in regions[:MAX_REGIONS]})
    if not chosen:
        return _notice(
            state,
            request,
            _("Choose a region"),
            _("Please choose at least one region to follow."),
            links=[(_("Back to the form"), "/#subscribe")],
            status_code=400,
        )
    wait = state.address_limit.hit(address.lower())
    if wait:
        return _too_many(state, request, wait)
    language = state.settings.pick_locale(locale or None)
    if language != base_language(locale):  # not a language we speak: the page's own
        language = current_locale()
    # The outbox row commits with the signup, before the answer; the deliverer is woken after.
    flow.signup(
        session,
        email=address,
        regions=chosen,
        locale=language,
        ip=_ip(request),
        form_version=form_version or flow.FORM_VERSION,
        now=state.runtime.now(),
    )
    background.add_task(state.mailer.wake)
    return _check_inbox(state, request)


def _check_inbox(state: WebState, request: Request) -> HTMLResponse:
    return _notice(
        state,
        request,
        _("Check your inbox"),
        _(
            "If the address can receive our emails, "
            "a message with a confirmation link is on its way."
        ),
        _("Open the link within 7 days to start your subscription. No link, no emails."),
        links=[(_("Back to the news"), "/")],
    )


def _too_many(state: WebState, request: Request, wait: int) -> HTMLResponse:
    response = _notice(
        state,
        request,
        _("Too many requests"),
        _("Please wait a little and try again."),
        status_code=429,
    )
    response.headers["retry-after"] = str(wait)
    return response


@router.get("/confirm/{token}", response_class=HTMLResponse)
def confirm_page(
    token: str, request: Request, session: SessionDep, state: StateDep
) -> HTMLResponse:
    """A page with a button; link scanners follow GETs, so a GET never confirms."""
    if _subscriber(state, request, session, "confirm", token) is None:
        return _ended(state, request)
    context = {"page_title": _("Confirm your subscription"), "token": token}
    return render(state.templates, request, "confirm.html", context)


def _ended(state: WebState, request: Request) -> HTMLResponse:
    return _notice(
        state,
        request,
        _("This subscription has ended"),
        _("This confirmation link belongs to a subscription that was cancelled."),
        _("Subscribe again from the home page if you want the emails back."),
        links=[(_("Subscribe"), "/#subscribe")],
    )


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm(token: str, request: Request, session: SessionDep, state: StateDep) -> HTMLResponse:
    """The button: the subscription starts (or its new regions apply) if the link is newer
    than the person's leaving."""
    try:
        key, signed = state.tokens.read_signed("confirm", token, now=state.token_now())
    except BadToken:
        raise HTTPException(400, "bad token") from None
    sub = _speaking(state, request, get_by_key(session, key=key))
    regions = None
    if sub is not None:
        regions = flow.confirm(
            session,
            subscriber=sub,
            ip=_ip(request),
            now=state.runtime.now(),
            known=state.runtime.tree,
            signed=signed,
        )
    if sub is None or regions is None:
        return _ended(state, request)
    tree, here = state.runtime.tree, current_locale()
    names = ", ".join(tree.get(r).name(here) for r in regions if r in tree)
    prefs = state.tokens.url("", "preferences", sub.key)
    return _notice(
        state,
        request,
        _("You are subscribed"),
        _("Thank you. You will get one email a week for: %(regions)s.")
        % {"regions": names or _("no region yet")},
        links=[(_("Change your regions"), prefs), (_("Back to the news"), "/")],
    )


def _refused(state: WebState, request: Request, value: str, *, back: str) -> HTMLResponse:
    """400: a submitted region is unknown or outside COVERAGE; nothing was changed."""
    tree, coverage = state.runtime.tree, state.settings.coverage
    context = {
        "page_title": _("Region not offered"),
        "value": value,
        "coverage": tree.get(coverage_root(tree, coverage)).name(current_locale()),
        "back": back,
    }
    return render(state.templates, request, "region_refused.html", context, status_code=400)


def _preferences_page(
    state: WebState,
    request: Request,
    session: SessionDep,
    sub: Subscriber,
    token: str,
    saved: str = "",
) -> HTMLResponse:
    assert sub.id is not None
    mine = regions_of(session, subscriber_id=sub.id)
    labels = {
        "active": _("subscribed"),
        "pending": _("waiting for confirmation"),
        "unsubscribed": _("unsubscribed"),
        "bounced": _("paused (emails bounced)"),
    }
    context = {
        "page_title": _("Your subscription"),
        "email": sub.email,
        "token": token,
        "status_label": labels.get(sub.status, sub.status),
        "saved": saved,
        "csrf": _csrf(state).dumps(sub.key),
        "checked": set(mine),
        "form_tree": form_tree(state.runtime.tree, state.settings.coverage, checked=mine),
        "subscriber_locale": state.settings.pick_locale(sub.locale),
        **_zone_context(state, sub, mine),
    }
    return render(state.templates, request, "preferences.html", context)


def _zone_context(state: WebState, sub: Subscriber, mine: list[str]) -> dict[str, object]:
    """The time-zone select: the zones by area, the reader's selected, and when mail comes."""
    tree, settings, here = state.runtime.tree, state.settings, current_locale()
    automatic = default_zone(tree, mine) or settings.timezone
    chosen = sub.timezone if sub.timezone_chosen and sub.timezone else None
    day = get_day_names("wide", locale=here)[parse_day(settings.digest_day)]
    at = format_time(parse_time(settings.digest_time), "short", locale=here)
    return {
        "zone_groups": zone_groups(tree, here, also=chosen),
        "zone_selected": chosen or AUTO_ZONE,
        "zone_automatic": zone_label(tree, automatic, here),
        "zone_when": _("Your weekly email comes on %(day)s at %(time)s in this time zone.")
        % {"day": day, "time": at},
    }


@router.get("/preferences/{token}", response_class=HTMLResponse)
def preferences(token: str, request: Request, session: SessionDep, state: StateDep) -> HTMLResponse:
    sub = _subscriber(state, request, session, "preferences", token)
    if sub is None:
        return _gone(state, request)
    return _preferences_page(state, request, session, sub, token)


@router.post("/preferences/{token}", response_class=HTMLResponse)
def save_preferences(
    token: str,
    request: Request,
    session: SessionDep,
    state: StateDep,
    csrf: Annotated[str, Form(max_length=400)] = "",
    action: Annotated[str, Form(max_length=16)] = "save",
    regions: Annotated[list[str], Form()] = [],  # noqa: B006
    locale: Annotated[str, Form(max_length=16)] = "",
    timezone: Annotated[str, Form(max_length=64)] = "",
) -> HTMLResponse:
    sub = _subscriber(state, request, session, "preferences", token)
    if not _same_origin(request):
        raise HTTPException(400, "cross-site form")
    try:
        bound = _csrf(state).loads(csrf, max_age=CSRF_MAX_AGE)
    except BadData:
        raise HTTPException(400, "bad csrf token") from None
    if sub is None:
        return _gone(state, request)
    if bound != sub.key:
        raise HTTPException(400, "csrf token of another subscriber")
    now, ip, tree = state.runtime.now(), _ip(request), state.runtime.tree
    if action == "leave":
        flow.leave(session, subscriber=sub, ip=ip, now=now)
        return _left(state, request, sub)
    outside = refused(tree, state.settings.coverage, regions[:MAX_REGIONS])
    if outside is not None:
        return _refused(state, request, outside, back=request.url.path)
    try:
        zone = None if timezone in ("", AUTO_ZONE) else check_zone(timezone)
    except InputError:
        return _bad_zone(state, request, timezone, back=request.url.path)
    chosen = sorted({tree.normalize(r) for r in regions[:MAX_REGIONS]})
    if locale and locale in state.settings.locale_list and locale != sub.locale:
        assert sub.id is not None
        set_subscriber_locale(session, subscriber_id=sub.id, locale=locale)
        sub.locale = locale
        set_locale(reader_locale(request, state.settings, locale))
    flow.change_regions(session, subscriber=sub, regions=chosen, ip=ip, now=now)
    if not chosen:
        return _left(state, request, sub)
    if timezone:  # a form without the select (an older page) leaves the zone as it is
        assert sub.id is not None
        set_timezone(session, subscriber_id=sub.id, zone=zone)
        session.refresh(sub)
    return _preferences_page(
        state, request, session, sub, token, saved=_("Your choices are saved.")
    )


def _bad_zone(state: WebState, request: Request, value: str, *, back: str) -> HTMLResponse:
    """400: the submitted time zone is not one; nothing was changed."""
    return _notice(
        state,
        request,
        _("Unknown time zone"),
        _("%(value)s is not a time zone we know. Nothing was changed.")
        % {"value": value if value.isprintable() else "?"},
        _("Please go back and choose one from the list."),
        links=[(_("Back to your choices"), back)],
        status_code=400,
    )


def _gone(state: WebState, request: Request) -> HTMLResponse:
    return _notice(
        state,
        request,
        _("No subscription"),
        _("There is no subscription for this link any more."),
        links=[(_("Subscribe"), "/#subscribe")],
    )


def _left(state: WebState, request: Request, sub: Subscriber) -> HTMLResponse:
    prefs = state.tokens.url("", "preferences", sub.key)
    return _notice(
        state,
        request,
        _("You have unsubscribed"),
        _("You will not get any more weekly emails from us."),
        links=[(_("Changed your mind? Choose regions again"), prefs)],
    )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(
    token: str, request: Request, session: SessionDep, state: StateDep
) -> HTMLResponse:
    """A page with a button; link scanners follow GETs, so a GET never unsubscribes."""
    sub = _subscriber(state, request, session, "unsubscribe", token)
    if sub is None:
        return _gone(state, request)
    if sub.status == SubscriberStatus.unsubscribed:
        return _left(state, request, sub)
    context = {
        "page_title": _("Unsubscribe"),
        "token": token,
        "email": None,
        "preferences_url": state.tokens.url("", "preferences", sub.key),
    }
    return render(state.templates, request, "unsubscribe.html", context)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe(token: str, request: Request, session: SessionDep, state: StateDep) -> HTMLResponse:
    """RFC 8058 one-click (and the page's button): 200, never a redirect, idempotent."""
    sub = _subscriber(state, request, session, "unsubscribe", token)
    if sub is None:
        return _notice(
            state,
            request,
            _("You have unsubscribed"),
            _("There is no subscription for this link any more."),
        )
    flow.leave(session, subscriber=sub, ip=_ip(request), now=state.runtime.now())
    return _left(state, request, sub)
