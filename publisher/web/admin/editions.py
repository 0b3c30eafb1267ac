"""/admin/editions (editors and admins): the next edition before it goes, and the week's send.

The preview is the editions pipeline's own ``preview_edition`` (the bytes a send sends), shown in
sandboxed frames from /admin/editions/preview under a strict CSP. Notes, hold/approve, test and
early sends call the same store and pipeline functions as the CLI and the scheduler; every change
is audited in the transaction that makes it. Fires that may touch many readers (approve, send
early) run after the answer (a background task): progress has its own page.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import escape

from publisher.digest.windows import parse_week, shift_week, week_window
from publisher.errors import ConfigError, InputError, UnknownRegionError
from publisher.i18n import N_, current_locale, gettext
from publisher.logs import event
from publisher.models import DeliveryState
from publisher.pipeline.edition_tools import preview_edition, send_test_edition
from publisher.pipeline.editions import EditionError, fire_editions
from publisher.runtime import Runtime
from publisher.schedule.times import fire_at_or_after, week_of_fire, zone_cadence
from publisher.settings import Settings
from publisher.store import audit, holds, notes
from publisher.store.delivery_counts import counts
from publisher.store.edition_progress import reader_zones, week_digest_ids
from publisher.web.admin.auth import AdminUser, EditorUser
from publisher.web.admin.render import flash, page
from publisher.web.coverage import covered, form_tree
from publisher.web.deps import SessionDep, StateDep, WebState

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
MAX_REGIONS = 300
MAX_NOTE = notes.MAX_NOTE
STATES = tuple(s.value for s in DeliveryState)
STATE_LABELS = {
    "pending": N_("pending"),
    "sending": N_("sending"),
    "sent": N_("sent"),
    "deferred": N_("deferred"),
    "failed": N_("failed"),
    "unknown": N_("unknown"),
    "skipped": N_("skipped"),
}
# The console's CSP lets its pages frame /admin; the preview is email HTML (inline styles only).
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "frame-ancestors 'self'; form-action 'none'; base-uri 'none'; sandbox"
)
# Bidi embeddings, overrides and isolates: in a note they could reorder the text around them.
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
_WEEK = re.compile(r"[0-9]{4}-W[0-9]{2}")


class Refused(Exception):
    """A request the page answers with a translated reason (and nothing changed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def next_week(settings: Settings, now: datetime) -> str:
    """The week the next scheduled fire (DIGEST_DAY DIGEST_TIME in TIMEZONE) sends."""
    cadence = zone_cadence(settings)
    return week_of_fire(cadence, fire_at_or_after(cadence, now))


def fire_time(settings: Settings, week: str, tz_name: str) -> datetime:
    """When ``week``'s scheduled fire comes in zone ``tz_name``: the first after the week ends."""
    cadence = zone_cadence(settings, tz_name)
    return fire_at_or_after(cadence, week_window(week, cadence.tz)[1])


def clean_note(text: str) -> str:
    """A note as plain text: lines end in \\n, no other control characters, no bidi controls."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_BIDI)
    return "".join(c for c in text if c == "\n" or unicodedata.category(c) != "Cc").strip()


def valid_week(value: str) -> str:
    """``value`` if it is a canonical ISO week label, else Refused."""
    try:
        if not _WEEK.fullmatch(value):
            raise InputError(value)
        parse_week(value)
    except InputError:
        reason = gettext("%(value)s is not a week like 2026-W50.") % {"value": value[:40]}
        raise Refused(reason) from None
    return value


def chosen_regions(state: WebState, values: list[str]) -> list[str]:
    """Canonical slugs of the chosen regions (readers can follow each), or Refused."""
    tree, allowed = state.runtime.tree, covered(state.runtime.tree, state.settings.coverage)
    found: list[str] = []
    for value in values[:MAX_REGIONS]:
        try:
            slug = tree.normalize(value)
        except UnknownRegionError:
            slug = ""
        if slug not in allowed:
            raise Refused(gettext("%(value)s is not a region readers can follow.")
                          % {"value": value[:64]})  # fmt: skip
        found.append(slug)
    return list(dict.fromkeys(found))


def chosen_language(state: WebState, value: str) -> str:
    """The edition language asked for, else the console's own."""
    return value if value in state.settings.locale_list else current_locale()


def _back(regions: list[str], language: str, week: str = "") -> str:
    query = [("regions", r) for r in regions] + [("language", language)]
    if week:
        query.append(("week", week))
    return f"/admin/editions?{urlencode(query)}"


@dataclass(frozen=True, slots=True)
class HoldView:
    """A week's hold as the page shows it."""

    week: str
    held: bool
    held_by: str
    held_at: datetime | None
    approved_by: str | None
    approved_at: datetime | None


def _hold_view(session: SessionDep, week: str) -> HoldView:
    found = holds.get_hold(session, week=week)
    if found is None:
        return HoldView(week, False, "", None, None, None)
    return HoldView(week, found.approved_at is None, found.held_by, found.held_at,
                    found.approved_by, found.approved_at)  # fmt: skip


def _editions_page(
    request: Request,
    session: SessionDep,
    state: WebState,
    user: AdminUser,
    *,
    regions: list[str],
    language: str,
    week: str,
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    now = state.runtime.now()
    upcoming = next_week(state.settings, now)
    preview: Any = None
    if regions and not error:
        preview = preview_edition(state.runtime, regions, language, now, week=week)
    context = {
        "regions": regions,
        "language": language,
        "edition_languages": state.settings.locale_list,
        "week": week,
        "weeks": [shift_week(upcoming, -1), upcoming, shift_week(upcoming, 1)],
        "upcoming": upcoming,
        "notes": notes.notes_of_week(session, week=week),
        "max_note": MAX_NOTE,
        "hold": _hold_view(session, week),
        "preview": preview,
        "preview_query": urlencode(
            [("regions", r) for r in regions] + [("language", language), ("week", week)]
        ),
        "form_tree": form_tree(state.runtime.tree, state.settings.coverage, checked=regions),
        "checked": set(regions),
        "error": error,
        "user_email": user.email,
    }
    return page(request, "admin/editions.html", context, user=user, status_code=status_code)


@router.get("/admin/editions", response_class=HTMLResponse)
def editions_page(
    request: Request,
    session: SessionDep,
    state: StateDep,
    user: EditorUser,
    regions: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI copies defaults)
    language: str = "",
    week: str = "",
) -> HTMLResponse:
    """Choose regions and a language; see that edition as it would go now; notes and the send."""
    lang = chosen_language(state, language)
    upcoming = next_week(state.settings, state.runtime.now())
    try:
        slugs = chosen_regions(state, regions)
        chosen = valid_week(week) if week else upcoming
    except Refused as e:
        return _editions_page(request, session, state, user, regions=[], language=lang,
                              week=upcoming, error=e.reason, status_code=422)  # fmt: skip
    return _editions_page(request, session, state, user, regions=slugs, language=lang, week=chosen)


@router.get("/admin/editions/preview", response_class=HTMLResponse)
def preview_frame(
    request: Request,
    state: StateDep,
    user: EditorUser,
    regions: Annotated[list[str], Query()] = [],  # noqa: B006
    language: str = "",
    week: str = "",
) -> HTMLResponse:
    """The edition's HTML alone, for the page's sandboxed frames (a strict CSP of its own)."""
    headers = {
        "content-security-policy": PREVIEW_CSP,
        "x-frame-options": "SAMEORIGIN",
        "cache-control": "no-store",
    }
    lang = chosen_language(state, language)
    try:
        slugs = chosen_regions(state, regions)
        chosen = valid_week(week) if week else next_week(state.settings, state.runtime.now())
    except Refused as e:
        return HTMLResponse(_bare(e.reason, lang), status_code=422, headers=headers)
    if not slugs:
        message = gettext("Choose one or more regions to see their edition.")
        return HTMLResponse(_bare(message, lang), headers=headers)
    rendered = preview_edition(state.runtime, slugs, lang, state.runtime.now(), week=chosen)
    return HTMLResponse(rendered.html, headers={**headers, "content-language": lang})


def _bare(message: str, lang: str) -> str:
    """A minimal page for the frame when there is no edition to show."""
    return (f'<!doctype html><html lang="{escape(lang)}"><meta charset="utf-8">'
            f"<title>{escape(message)}</title><p>{escape(message)}</p></html>")  # fmt: skip


def _form_context(state: WebState, regions: list[str], language: str) -> tuple[list[str], str]:
    """The preview the form came from (to go back to), from its hidden fields."""
    try:
        return chosen_regions(state, regions), chosen_language(state, language)
    except Refused:
        return [], chosen_language(state, language)


@router.post("/admin/editions/notes")
def save_note(
    request: Request,
    session: SessionDep,
    state: StateDep,
    user: EditorUser,
    week: Annotated[str, Form(max_length=16)],
    region: Annotated[str, Form(max_length=64)] = "",
    text: Annotated[str, Form()] = "",
    regions: Annotated[list[str], Form()] = [],  # noqa: B006
    language: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Write, change or (blank) remove the week's note or a region's note; plain text, short."""
    back_regions, lang = _form_context(state, regions, language)
    now = state.runtime.now()
    try:
        valid_week(week)
        slug = chosen_regions(state, [region])[0] if region else ""
        note = clean_note(text)
        if len(note) > MAX_NOTE:
            raise Refused(gettext("A note has at most %(max)s characters; this one has %(n)s.")
                          % {"max": MAX_NOTE, "n": len(note)})  # fmt: skip
        notes.set_note(session, week=week, region=slug, text=note, by=user.email, now=now)
    except Refused as e:
        return _editions_page(request, session, state, user, regions=back_regions, language=lang,
                              week=upcoming_or(state, week), error=e.reason,
                              status_code=422)  # fmt: skip
    target = f"edition {week}" + (f" {slug}" if slug else "")
    audit.record(session, actor=user.email, action="note", target=target,
                 detail=note[:300] if note else "(removed)", at=now)  # fmt: skip
    flash(request, gettext("Note saved.") if note else gettext("Note removed."))
    return RedirectResponse(_back(back_regions, lang, week), status_code=303)


def upcoming_or(state: WebState, week: str) -> str:
    """``week`` when it is a valid label, else the next edition's week."""
    try:
        return valid_week(week)
    except Refused:
        return next_week(state.settings, state.runtime.now())


@router.post("/admin/editions/hold")
def hold_week(
    request: Request,
    session: SessionDep,
    state: StateDep,
    user: EditorUser,
    week: Annotated[str, Form(max_length=16)],
    regions: Annotated[list[str], Form()] = [],  # noqa: B006
    language: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Hold a week's send: its scheduled fires assemble nothing until it is approved."""
    back_regions, lang = _form_context(state, regions, language)
    try:
        valid_week(week)
    except Refused as e:
        return _editions_page(request, session, state, user, regions=back_regions, language=lang,
                              week=upcoming_or(state, week), error=e.reason,
                              status_code=422)  # fmt: skip
    now = state.runtime.now()
    holds.hold(session, week=week, by=user.email, now=now)
    audit.record(session, actor=user.email, action="hold", target=f"edition {week}", at=now)
    flash(request, gettext("The send of %(week)s is held until it is approved.") % {"week": week})
    return RedirectResponse(_back(back_regions, lang, week), status_code=303)


def passed_zones(rt: Runtime, week: str, now: datetime) -> list[str]:
    """Reader zones whose scheduled fire for ``week`` has already come (and was skipped)."""
    settings = rt.settings
    with rt.session() as session:
        zones = reader_zones(session, default_zone=settings.timezone)
    found = []
    for name in zones:
        try:
            if fire_time(settings, week, name) <= now:
                found.append(name)
        except ConfigError:  # a zone name tzdata does not know: the scheduler skips it too
            continue
    return found


def fire_approved(rt: Runtime, week: str, zones: list[str], now: datetime, runner: str) -> None:
    """Assemble and queue ``week`` for the readers of ``zones`` (after an approval)."""
    for name in zones:
        try:
            report = fire_editions(rt, now=now, zone=name, week=week, runner=runner)
        except EditionError as e:
            event(log, "console.fire_refused", level=logging.WARNING, zone=name, week=week,
                  reason=str(e))  # fmt: skip
            continue
        event(log, "console.fired", zone=name, week=week, report=repr(report))


@router.post("/admin/editions/approve")
def approve_week(
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    state: StateDep,
    user: EditorUser,
    week: Annotated[str, Form(max_length=16)],
    regions: Annotated[list[str], Form()] = [],  # noqa: B006
    language: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Approve a held week: zones whose fire has passed are assembled now, others at their time."""
    back_regions, lang = _form_context(state, regions, language)
    now = state.runtime.now()
    try:
        valid_week(week)
        if not holds.approve(session, week=week, by=user.email, now=now):
            raise Refused(gettext("The send of %(week)s is not held: there is nothing to approve.")
                          % {"week": week})  # fmt: skip
    except Refused as e:
        return _editions_page(request, session, state, user, regions=back_regions, language=lang,
                              week=upcoming_or(state, week), error=e.reason,
                              status_code=409)  # fmt: skip
    zones = passed_zones(state.runtime, week, now)
    audit.record(session, actor=user.email, action="approve", target=f"edition {week}",
                 detail=("fire now: " + " ".join(zones)) if zones else "", at=now)  # fmt: skip
    session.commit()  # the approval is in before any fire reads the hold
    if zones:
        background.add_task(fire_approved, state.runtime, week, zones, now,
                            f"console:{user.email}"[:64])  # fmt: skip
        flash(request, gettext("Approved: %(week)s is being assembled and sent now; "
                               "readers whose send time has not come get it then.")
              % {"week": week})  # fmt: skip
    else:
        message = gettext("Approved: %(week)s goes out at its scheduled time.")
        flash(request, message % {"week": week})
    return RedirectResponse(_back(back_regions, lang, week), status_code=303)


@router.post("/admin/editions/test")
def send_test(
    request: Request,
    session: SessionDep,
    state: StateDep,
    user: EditorUser,
    regions: Annotated[list[str], Form()] = [],  # noqa: B006
    language: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Send the previewed edition to the editor's own address, marked as a test (no ledger row)."""
    lang = chosen_language(state, language)
    now = state.runtime.now()
    try:
        slugs = chosen_regions(state, regions)
        if not slugs:
            raise Refused(gettext("Choose one or more regions first."))
    except Refused as e:
        return _editions_page(request, session, state, user, regions=[], language=lang,
                              week=next_week(state.settings, now), error=e.reason,
                              status_code=422)  # fmt: skip
    session.commit()
    send_test_edition(state.runtime, slugs, user.email, lang, now)
    audit.record(session, actor=user.email, action="test-send", target=" ".join(slugs),
                 detail=f"{lang} to {user.email}", at=now)  # fmt: skip
    state.mailer.wake()
    flash(request, gettext("A test copy is on its way to %(email)s.") % {"email": user.email})
    return RedirectResponse(_back(slugs, lang), status_code=303)


@router.get("/admin/editions/early", response_class=HTMLResponse)
def early_page(
    request: Request,
    state: StateDep,
    user: EditorUser,
    region: str = "",
) -> HTMLResponse:
    """Ask before sending the running week now (a page, so it works without JavaScript)."""
    try:
        slug = chosen_regions(state, [region])[0] if region else ""
    except Refused:
        slug = ""
    return _early(request, state, user, region=slug)


def _early(
    request: Request, state: WebState, user: AdminUser, *, region: str, error: str = ""
) -> HTMLResponse:
    tree = state.runtime.tree
    root = form_tree(tree, state.settings.coverage, checked=[])
    choices: list[tuple[str, str]] = []

    def walk(node: Any, depth: int) -> None:
        choices.append((node.slug, "\u2003" * depth))
        for child in node.children:
            walk(child, depth + 1)

    walk(root, 0)
    context = {"week": next_week(state.settings, state.runtime.now()), "region": region,
               "choices": choices, "error": error}  # fmt: skip
    return page(request, "admin/edition_early.html", context, user=user,
                status_code=422 if error else 200)  # fmt: skip


@router.post("/admin/editions/early")
def send_early(
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    state: StateDep,
    user: EditorUser,
    region: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Send the running week's editions now: that week's scheduled fire then sends them nothing."""
    now = state.runtime.now()
    try:
        slug = chosen_regions(state, [region])[0] if region else None
    except Refused as e:
        return _early(request, state, user, region="", error=e.reason)
    audit.record(session, actor=user.email, action="send", target=f"edition early {slug or 'all'}",
                 at=now)  # fmt: skip
    session.commit()
    background.add_task(_fire_early, state.runtime, slug, now, f"console:{user.email}"[:64])
    flash(request, gettext("Sending early: the editions are being assembled and queued."))
    return RedirectResponse("/admin/editions/progress", status_code=303)


def _fire_early(rt: Runtime, region: str | None, now: datetime, runner: str) -> None:
    try:
        report = fire_editions(rt, now=now, zone=None, region=region, early=True, runner=runner)
    except EditionError as e:
        event(log, "console.fire_refused", level=logging.WARNING, reason=str(e))
        return
    event(log, "console.fired", early=True, region=region or "", report=repr(report))


@dataclass(frozen=True, slots=True)
class WeekProgress:
    """A week's ledger rows by state."""

    week: str
    states: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.states.values())

    @property
    def done(self) -> bool:
        busy = ("pending", "sending", "deferred")
        return self.total > 0 and not any(self.states.get(s) for s in busy)


def week_progress(session: SessionDep, week: str) -> WeekProgress:
    """Rows per state over the week's frozen editions (the ledger's tallies where kept)."""
    ids = week_digest_ids(session, week=week)
    found = dict.fromkeys(STATES, 0)
    for per_state in counts(session, digest_ids=ids).values() if ids else ():
        for name, n in per_state.items():
            found[name] = found.get(name, 0) + n
    return WeekProgress(week, found)


def _progress_weeks(state: WebState, week: str) -> list[str]:
    if week:
        return [valid_week(week)]
    upcoming = next_week(state.settings, state.runtime.now())
    return [upcoming, shift_week(upcoming, -1)]


@router.get("/admin/editions/progress", response_class=HTMLResponse)
def progress_page(
    request: Request, session: SessionDep, state: StateDep, user: EditorUser, week: str = ""
) -> HTMLResponse:
    """Ledger counts by state for the running and the last week, refreshing by itself."""
    error = ""
    try:
        weeks = _progress_weeks(state, week)
    except Refused as e:
        weeks, error = _progress_weeks(state, ""), e.reason
    context = {
        "weeks": [week_progress(session, w) for w in weeks],
        "states": STATES,
        "state_labels": STATE_LABELS,
        "error": error,
        "json_url": "/admin/editions/progress.json?" + urlencode([("week", w) for w in weeks]),
    }
    return page(request, "admin/edition_progress.html", context, user=user)


@router.get("/admin/editions/progress.json")
def progress_json(
    session: SessionDep,
    state: StateDep,
    user: EditorUser,
    week: Annotated[list[str], Query()] = [],  # noqa: B006
) -> JSONResponse:
    """The same counts for the page's small script (polled; no JavaScript is needed)."""
    try:
        weeks = [valid_week(w) for w in week[:4]] or _progress_weeks(state, "")
    except Refused as e:
        return JSONResponse({"detail": e.reason}, status_code=422)
    body = {}
    for w in weeks:
        progress = week_progress(session, w)
        body[w] = {"states": progress.states, "total": progress.total, "done": progress.done}
    return JSONResponse(body, headers={"cache-control": "no-store"})
