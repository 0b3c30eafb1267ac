"""The admin JSON API under /api: items, subscribers, digests and stats, behind a bearer token.

Every route needs ``Authorization: Bearer <ADMIN_TOKEN>``, compared in constant time. With no
ADMIN_TOKEN configured the API refuses everything (503): it is never open by default.
Item writes go through the same cleaning and region inference as any import, and the feed
files are rebuilt after each write (after the commit, so the build sees it).
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Path, Query, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from publisher.errors import InputError
from publisher.intake.records import RawRecord, clean_record
from publisher.models import ItemCreate, ItemPublic
from publisher.pipeline.edits import ItemChanges, delete_item, update_item
from publisher.pipeline.intake import import_records
from publisher.store.items import get_item, id_by_guid, list_items
from publisher.web import api_admin
from publisher.web.deps import SessionDep, StateDep

_bearer = HTTPBearer(auto_error=False, description="The ADMIN_TOKEN setting.")


def require_admin(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 without the right bearer token; 503 when no ADMIN_TOKEN is configured at all."""
    expected = state.settings.admin_token
    if not expected:
        raise HTTPException(503, "the admin API is off: set PUBLISHER_ADMIN_TOKEN to use it")
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise HTTPException(
            401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )


_responses: dict[int | str, dict[str, object]] = {
    401: {"description": "Missing or wrong bearer token"},
    503: {"description": "ADMIN_TOKEN is not configured"},
}
router = APIRouter(prefix="/api", dependencies=[Depends(require_admin)], responses=_responses)
items = APIRouter(prefix="/items", tags=["items"])
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The item's id")]


class ItemUpdate(BaseModel):
    """Fields to change; the guid never changes. ``regions: []`` asks for inference."""

    title: str | None = Field(default=None, max_length=500)
    summary: str | None = Field(default=None, max_length=20_000)
    link: str | None = Field(default=None, max_length=2_000)
    published: datetime | None = None
    regions: list[str] | None = Field(default=None, max_length=300)
    lang: str | None = Field(default=None, max_length=16)  # "" or null: detect from the text


class Problem(BaseModel):
    detail: str


def _rebuild_after(background: BackgroundTasks, state: StateDep) -> None:
    background.add_task(state.rebuild_feeds)


@items.get("", response_model=list[ItemPublic])
def list_(
    session: SessionDep,
    state: StateDep,
    region: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    embargoed: Annotated[bool, Query(description="Also items not yet public.")] = False,
) -> list[ItemPublic]:
    """Items newest first (public ones unless ``embargoed``); with ``region``, its feed's."""
    scope = None
    if region is not None:
        if region not in state.runtime.tree:
            raise HTTPException(404, f"unknown region {region!r}")
        scope = state.runtime.tree.related(region)
    visible_by = None if embargoed else state.runtime.now()
    return list_items(session, regions=scope, limit=limit, offset=offset, visible_by=visible_by)


@items.post(
    "",
    response_model=ItemPublic,
    status_code=201,
    responses={409: {"model": Problem}, 422: {"model": Problem}},
)
def create(
    body: ItemCreate, session: SessionDep, state: StateDep, background: BackgroundTasks
) -> ItemPublic:
    """Add an item; with no regions they are inferred from the title and summary."""
    raw = RawRecord(
        source="api",
        line=1,
        title=body.title,
        summary=body.summary,
        link=body.link,
        published=body.published,
        regions=list(body.regions),
        guid=body.guid,
        lang=body.lang or None,
        image_url=body.image_url,
        image_alt=body.image_alt,
    )
    try:
        guid = clean_record(raw).guid
    except InputError as e:
        raise HTTPException(422, e.reason) from e
    rt = state.runtime
    report = import_records(
        session, records=[raw], tree=rt.tree, inferrer=rt.inferrer, now=rt.now(), clock=rt.now
    )
    if report.errors:
        raise HTTPException(422, report.errors[0].reason)
    if not report.ids:
        existing = id_by_guid(session, guid=guid)
        raise HTTPException(409, f"an item with this guid already exists (id {existing})")
    session.commit()
    _rebuild_after(background, state)
    created = get_item(session, item_id=report.ids[0])
    assert created is not None
    return created


@items.get("/{item_id}", response_model=ItemPublic, responses={404: {"model": Problem}})
def read(item_id: ItemId, session: SessionDep) -> ItemPublic:
    found = get_item(session, item_id=item_id)
    if found is None:
        raise HTTPException(404, "no such item")
    return found


@items.patch(
    "/{item_id}",
    response_model=ItemPublic,
    responses={404: {"model": Problem}, 422: {"model": Problem}},
)
def update(
    item_id: ItemId,
    body: ItemUpdate,
    session: SessionDep,
    state: StateDep,
    background: BackgroundTasks,
) -> ItemPublic:
    """Change some fields of an item (the guid stays)."""
    given = body.model_dump(include=body.model_fields_set)
    rt = state.runtime
    try:
        found = update_item(
            session,
            item_id=item_id,
            changes=ItemChanges(**given),
            tree=rt.tree,
            inferrer=rt.inferrer,
            now=rt.now(),
            clock=rt.now,
        )
    except InputError as e:
        raise HTTPException(422, e.reason) from e
    if not found:
        raise HTTPException(404, "no such item")
    session.commit()
    _rebuild_after(background, state)
    changed = get_item(session, item_id=item_id)
    assert changed is not None
    return changed


@items.delete("/{item_id}", status_code=204, responses={404: {"model": Problem}})
def remove(
    item_id: ItemId, session: SessionDep, state: StateDep, background: BackgroundTasks
) -> Response:
    if not delete_item(session, item_id=item_id, now=state.runtime.now()):
        raise HTTPException(404, "no such item")
    session.commit()
    _rebuild_after(background, state)
    return Response(status_code=204)


router.include_router(items)
router.include_router(api_admin.subscribers)
router.include_router(api_admin.digests)
router.include_router(api_admin.stats)
