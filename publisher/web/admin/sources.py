"""/admin/sources (admins): the upstream feeds, as `publisher sources ...` manages them.

The same store and pipeline functions as the CLI (add, pause/resume, poll now, remove); every
change is audited in its own transaction. Validation messages are the console's own translated
sentences (the CLI's reasons name flags); the fetcher's reasons are shown as data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from publisher.errors import InputError, UnknownRegionError
from publisher.i18n import gettext
from publisher.links import check_link
from publisher.models import Source
from publisher.pipeline.poll_policy import describe_every, parse_every
from publisher.pipeline.sources import poll_sources
from publisher.store import audit
from publisher.store import sources as store
from publisher.web.admin.auth import AdminOnly
from publisher.web.admin.render import flash, page
from publisher.web.coverage import form_tree
from publisher.web.deps import SessionDep, StateDep

router = APIRouter(include_in_schema=False)
PAGE = 100
_LANG = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")


@dataclass(frozen=True, slots=True)
class SourceLine:
    """One source as the list shows it."""

    id: int
    url: str
    regions: tuple[str, ...]
    every: str
    paused: bool
    last_result: str
    last_error: str
    next_poll: datetime | None
    lang: str

    @classmethod
    def of(cls, row: Source) -> SourceLine:
        assert row.id is not None
        return cls(
            row.id, row.url, tuple(row.regions.split()), describe_every(row.every), row.paused,
            row.last_result, row.last_error, row.next_poll, row.lang,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class NewSource:
    """What the add form held (to show it again next to an error)."""

    url: str = ""
    regions: tuple[str, ...] = ()
    every: str = "30m"
    lang: str = ""


def _list_page(
    request: Request,
    session: SessionDep,
    state: StateDep,
    user: AdminOnly,
    *,
    after: int = 0,
    form: NewSource | None = None,
    error: str = "",
) -> HTMLResponse:
    rows = store.page_sources(session, after_id=after, limit=PAGE + 1)
    lines = [SourceLine.of(row) for row in rows[:PAGE]]
    entered = form or NewSource()
    tree = form_tree(state.runtime.tree, state.settings.coverage, checked=entered.regions)
    context = {
        "sources": lines,
        "next_after": lines[-1].id if len(rows) > PAGE else None,
        "after": after,
        "form": entered,
        "error": error,
        "form_tree": tree,
        "checked": set(entered.regions),
    }
    return page(
        request, "admin/sources.html", context, user=user, status_code=422 if error else 200
    )


@router.get("/admin/sources", response_class=HTMLResponse)
def sources_page(
    request: Request, session: SessionDep, state: StateDep, user: AdminOnly, after: int = 0
) -> HTMLResponse:
    """Every source with its state and actions, a hundred per page, and the add form."""
    return _list_page(request, session, state, user, after=max(after, 0))


def _checked(state: StateDep, form: NewSource) -> tuple[str, list[str], int, str]:
    """(url, region slugs, seconds, lang) of the add form, or InputError (a translated reason)."""
    try:
        link = check_link(form.url.strip(), name="URL")
    except InputError as e:
        raise InputError(gettext("This is not a feed address the site accepts: %(reason)s")
                         % {"reason": e.reason}) from None  # fmt: skip
    if link is None:
        raise InputError(gettext("Enter the feed's address (http or https)."))
    try:
        seconds = parse_every(form.every)
    except InputError:
        raise InputError(
            gettext("Poll every: write an interval like 30m, 2h or 1d, from 1 minute to 7 days.")
        ) from None
    slugs = []
    for value in form.regions:
        try:
            slugs.append(state.runtime.tree.normalize(value))
        except UnknownRegionError:
            raise InputError(gettext("%(value)s is not a region.") % {"value": value}) from None
    lang = form.lang.strip()
    if lang and not _LANG.fullmatch(lang):
        raise InputError(gettext("Language: write a language tag like es or pt-BR, or nothing."))
    return link, list(dict.fromkeys(slugs)), seconds, lang


@router.post("/admin/sources", response_class=HTMLResponse)
def add_source(
    request: Request,
    session: SessionDep,
    state: StateDep,
    user: AdminOnly,
    url: Annotated[str, Form(max_length=4000)] = "",
    regions: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    every: Annotated[str, Form(max_length=32)] = "30m",
    lang: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Add a source, due at once (the scheduler polls it at its next round)."""
    form = NewSource(url, tuple(regions[:300]), every, lang)
    now = state.runtime.now()
    try:
        link, slugs, seconds, language = _checked(state, form)
        source = store.add_source(
            session, url=link, regions=slugs, every=seconds, lang=language, now=now
        )
    except InputError as e:
        already = str(e).endswith("is already a source")
        reason = gettext("This address is already a source.") if already else e.reason
        return _list_page(request, session, state, user, form=form, error=reason)
    assert source.id is not None
    audit.record(session, actor=user.email, action="add", target=f"source {source.id}",
                 detail=link, at=now)  # fmt: skip
    message = gettext("Source %(id)s added; it is polled within a minute.")
    flash(request, message % {"id": source.id})
    return RedirectResponse("/admin/sources", status_code=303)


def _source(session: SessionDep, source_id: int) -> Source:
    row = store.get_source(session, source_id=source_id)
    if row is None:
        raise HTTPException(404)
    return row


@router.post("/admin/sources/{source_id}/pause")
def pause_source(
    source_id: int, request: Request, session: SessionDep, state: StateDep, user: AdminOnly
) -> Response:
    """Stop polling a source until it is resumed (its items stay)."""
    return _set_paused(source_id, request, session, state, user, paused=True)


@router.post("/admin/sources/{source_id}/resume")
def resume_source(
    source_id: int, request: Request, session: SessionDep, state: StateDep, user: AdminOnly
) -> Response:
    """Poll a paused source again, starting now."""
    return _set_paused(source_id, request, session, state, user, paused=False)


def _set_paused(
    source_id: int,
    request: Request,
    session: SessionDep,
    state: StateDep,
    user: AdminOnly,
    *,
    paused: bool,
) -> Response:
    row = _source(session, source_id)
    now = state.runtime.now()
    store.set_paused(session, source_id=source_id, paused=paused, now=now)
    action = "pause" if paused else "resume"
    audit.record(session, actor=user.email, action=action, target=f"source {source_id}",
                 detail=row.url, at=now)  # fmt: skip
    message = gettext("Source %(id)s paused.") if paused else gettext("Source %(id)s resumed.")
    flash(request, message % {"id": source_id})
    return RedirectResponse("/admin/sources", status_code=303)


@router.post("/admin/sources/{source_id}/poll")
def poll_source(
    source_id: int, request: Request, session: SessionDep, state: StateDep, user: AdminOnly
) -> Response:
    """Poll one source now, once (even a paused one: a success un-pauses it, as the CLI does)."""
    row = _source(session, source_id)
    url = row.url
    session.commit()  # the poll writes in its own transactions; hold no lock meanwhile
    try:
        reports = poll_sources(state.runtime, source_id=source_id, due_only=False)
    except InputError:
        raise HTTPException(404) from None
    outcome = reports[0].outcome if reports else None
    if outcome is not None and outcome.ok:
        result = gettext("Source %(id)s polled: %(added)s new, %(updated)s updated.") % {
            "id": source_id, "added": outcome.added, "updated": outcome.updated}  # fmt: skip
    else:
        error = outcome.error if outcome is not None else ""
        result = gettext("Source %(id)s could not be polled: %(error)s") % {
            "id": source_id, "error": error}  # fmt: skip
    said = (outcome.summary if outcome.ok else f"error: {outcome.error}") if outcome else "gone"
    audit.record(session, actor=user.email, action="poll", target=f"source {source_id}",
                 detail=f"{url} {said}"[:1000], at=state.runtime.now())  # fmt: skip
    flash(request, result)
    return RedirectResponse("/admin/sources", status_code=303)


@router.get("/admin/sources/{source_id}/remove", response_class=HTMLResponse)
def remove_page(
    source_id: int, request: Request, session: SessionDep, user: AdminOnly
) -> HTMLResponse:
    """Ask before removing (a page, so it works without JavaScript)."""
    row = _source(session, source_id)
    return page(request, "admin/source_remove.html", {"source": SourceLine.of(row)}, user=user)


@router.post("/admin/sources/{source_id}/remove")
def remove_source(
    source_id: int, request: Request, session: SessionDep, state: StateDep, user: AdminOnly
) -> Response:
    """Forget a source; the items it brought in stay."""
    row = _source(session, source_id)
    url = row.url
    store.remove_source(session, source_id=source_id)
    audit.record(session, actor=user.email, action="delete", target=f"source {source_id}",
                 detail=url, at=state.runtime.now())  # fmt: skip
    flash(request, gettext("Source %(id)s removed; its items stay.") % {"id": source_id})
    return RedirectResponse("/admin/sources", status_code=303)
