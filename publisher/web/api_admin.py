"""Admin API routes for subscribers, digests and statistics (mounted under /api by ``api``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field

from publisher.digest.windows import parse_week
from publisher.errors import InputError, SuppressedError, UnknownRegionError
from publisher.models import Subscriber, SubscriberStatus
from publisher.pipeline import digests as digest_pipeline
from publisher.pipeline.edition_tools import preview_edition
from publisher.pipeline.subscribers import (
    add_subscriber,
    erase_subscriber,
    export_subscriber,
    queue_confirmations,
    set_subscriber_timezone,
)
from publisher.store import subscribers as store
from publisher.store.delivery_counts import counts as delivery_counts
from publisher.store.delivery_counts import per_state as delivery_per_state
from publisher.store.digests import list_digests as stored_digests
from publisher.store.items import count_items
from publisher.web.deps import SessionDep, StateDep

subscribers = APIRouter(prefix="/subscribers", tags=["subscribers"])
digests = APIRouter(prefix="/digests", tags=["digests"])
stats = APIRouter(prefix="/stats", tags=["stats"])

Email = Annotated[str, Path(max_length=320, description="The subscriber's address")]
Week = Annotated[str, Field(pattern=r"^\d{4}-W\d{2}$", examples=["2026-W48"])]


class SubscriberIn(BaseModel):
    email: str = Field(max_length=320)
    regions: list[str] = Field(min_length=1, max_length=300)
    status: Literal["pending", "active"] = "pending"
    locale: str = Field(default="en", max_length=16)
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA zone; omitted: from the regions",
        examples=["America/Guatemala"],
    )  # fmt: skip


class SubscriberPatch(BaseModel):
    timezone: str | None = Field(
        max_length=64, examples=["America/Guatemala"],
        description="IANA zone their edition follows; null: the main zone of their regions",
    )  # fmt: skip


class SubscriberOut(BaseModel):
    id: int
    email: str
    status: str
    locale: str
    created: datetime
    confirmed: datetime | None
    left: datetime | None
    regions: list[str]
    timezone: str | None = Field(description="IANA zone; null: the TIMEZONE setting")
    timezone_chosen: bool = Field(description="false: the zone follows their regions")


def _out(sub: Subscriber, regions: list[str]) -> SubscriberOut:
    assert sub.id is not None
    return SubscriberOut(
        id=sub.id,
        email=sub.email,
        status=sub.status,
        locale=sub.locale,
        created=sub.created,
        confirmed=sub.confirmed,
        left=sub.left,
        regions=regions,
        timezone=sub.timezone,
        timezone_chosen=sub.timezone_chosen,
    )


@subscribers.get("", response_model=list[SubscriberOut])
def list_subscribers(
    session: SessionDep,
    region: Annotated[str | None, Query(max_length=64)] = None,
    status: SubscriberStatus | None = None,
    after_id: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[SubscriberOut]:
    """Subscribers by id (keyset pages: pass the last id as ``after_id``)."""
    found = store.list_subscribers(
        session, region=region, status=status, after_id=after_id, limit=limit
    )
    return [_out(s, store.regions_of(session, subscriber_id=s.id or 0)) for s in found]


@subscribers.post("", response_model=SubscriberOut, status_code=201)
def add(
    body: SubscriberIn,
    request: Request,
    session: SessionDep,
    state: StateDep,
    background: BackgroundTasks,
    response: Response,
) -> SubscriberOut:
    """Add a subscriber (or regions to one); a pending one is sent a confirmation email."""
    rt = state.runtime
    try:
        sub, created = add_subscriber(
            session,
            email=body.email,
            regions=body.regions,
            confirmed=body.status == "active",
            locale=body.locale,
            tree=rt.tree,
            now=rt.now(),
            timezone=body.timezone,
        )
    except SuppressedError as e:  # suppressed people come back only by their own confirmation
        raise HTTPException(409, {"error": "suppressed", "detail": e.reason}) from e
    except InputError as e:
        raise HTTPException(422, e.reason) from e
    assert sub.id is not None
    regions = store.regions_of(session, subscriber_id=sub.id)
    if sub.status == SubscriberStatus.pending:
        queue_confirmations(session, subscriber_ids=[sub.id], now=rt.now())
        background.add_task(state.mailer.wake)
    session.commit()
    if not created:
        response.status_code = 200
    return _out(sub, regions)


@subscribers.patch(
    "/{email}", response_model=SubscriberOut,
    responses={404: {"description": "Unknown address"}, 422: {"description": "Not a zone"}},
)  # fmt: skip
def patch(email: Email, body: SubscriberPatch, session: SessionDep) -> SubscriberOut:
    """Set the time zone a reader's edition follows (DIGEST_DAY at DIGEST_TIME there)."""
    try:
        found = set_subscriber_timezone(session, email=email, zone=body.timezone)
    except InputError as e:
        raise HTTPException(422, e.reason) from e
    if found is None:
        raise HTTPException(404, "no subscriber with this address")
    sub, _zone = found
    assert sub.id is not None
    out = _out(sub, store.regions_of(session, subscriber_id=sub.id))
    session.commit()
    return out


@subscribers.get("/{email}", responses={404: {"description": "Unknown address"}})
def export(email: Email, session: SessionDep) -> dict[str, Any]:
    """Everything stored about one person (a data access request)."""
    data = export_subscriber(session, email=email)
    if data is None:
        raise HTTPException(404, "no subscriber with this address")
    return data


@subscribers.delete("/{email}", status_code=204, responses={404: {"description": "Unknown"}})
def erase(email: Email, session: SessionDep, state: StateDep) -> Response:
    """Erase a person; only a hash stays, so no import can silently add them again."""
    if not erase_subscriber(session, email=email, now=state.runtime.now()):
        raise HTTPException(404, "no subscriber with this address")
    return Response(status_code=204)


class DigestOut(BaseModel):
    id: int
    region: str
    week: str
    status: str
    subject: str
    window_start: datetime
    window_end: datetime
    created: datetime
    items: int
    deliveries: dict[str, int]


@digests.get("", response_model=list[DigestOut])
def list_digests(
    session: SessionDep,
    region: Annotated[str | None, Query(max_length=64)] = None,
    week: Annotated[str | None, Query(pattern=r"^\d{4}-W\d{2}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DigestOut]:
    """Assembled digests, newest week first, with their ledger rows per state."""
    rows = stored_digests(session, region=region, week=week, limit=limit)
    per_state = delivery_counts(session, digest_ids=[d.id for d in rows if d.id is not None])
    return [
        DigestOut(
            id=d.id or 0,
            region=d.region,
            week=d.week,
            status=d.status,
            subject=d.subject,
            window_start=d.window_start,
            window_end=d.window_end,
            created=d.created,
            items=len(digest_pipeline.digest_item_ids(d)),
            deliveries=per_state.get(d.id or 0, {}),
        )
        for d in rows
    ]


@digests.get("/preview", responses={200: {"content": {"text/html": {}, "text/plain": {}}}})
def preview(
    state: StateDep,
    region: Annotated[list[str], Query(max_length=64)],
    week: Annotated[str | None, Query(pattern=r"^\d{4}-W\d{2}$")] = None,
    locale: Annotated[str | None, Query(max_length=16)] = None,
    format: Annotated[Literal["html", "text"], Query()] = "html",
) -> Response:
    """The edition a new reader of these regions (repeat ``region``) would get now, exactly as
    a send builds it, for a sample reader; writes nothing."""
    rt = state.runtime
    if len(region) > 50:
        raise HTTPException(422, "at most 50 regions")
    try:
        shown = preview_edition(
            rt, region, locale or state.settings.default_locale, rt.now(), week=checked_week(week)
        )
    except UnknownRegionError as e:
        raise HTTPException(404, str(e)) from e
    except (InputError, ValueError) as e:
        raise HTTPException(422, str(e)) from e
    if format == "text":
        return Response(shown.text, media_type="text/plain; charset=utf-8")
    return Response(shown.html, media_type="text/html; charset=utf-8")


class SendRequest(BaseModel):
    region: str | None = Field(
        default=None, max_length=64, description="Only readers who follow it (default: all)"
    )
    week: Week | None = Field(default=None, description="Default: the week just ended")
    early: bool = Field(default=False, description="Send the running week now")
    dry_run: bool = Field(default=False, description="Count, write and send nothing")


class DigestSendOut(BaseModel):
    region: str
    week: str
    status: str
    digest_id: int | None
    subject: str
    recipients: int
    deliveries: dict[str, int]


class SendOut(BaseModel):
    accepted: bool
    dry_run: bool
    editions: int = Field(default=0, description="Editions made (or, dry, that would be)")
    empty: int = Field(default=0, description="Of those, with no items: no email")
    waiting: int = Field(
        default=0,
        description="Readers on whose clock the given week has not begun, or still runs without "
        "early: their own time zone's fire sends it",
    )
    waiting_zones: list[str] = Field(default=[], description="Those readers' time zones")
    digests: list[DigestSendOut] = []
    status_url: str | None = Field(
        default=None, description="Where to follow a queued send (GET, the digests' ledger counts)"
    )


def checked_week(week: str | None) -> str | None:
    """``week`` if it is a real ISO week this service can compute windows for; 422 otherwise."""
    if week is None:
        return None
    try:
        year, _ = parse_week(week)
    except InputError as e:
        raise HTTPException(422, e.reason) from e
    if year > 2999:
        raise HTTPException(422, f"week {week!r} is too far ahead")
    return week


@digests.post("/send", response_model=SendOut, responses={202: {"model": SendOut}})
def send_now(body: SendRequest, state: StateDep, response: Response) -> SendOut:
    """Assemble and queue the week's editions now, as the scheduler does; never sends in here.

    A running week is refused (422) unless ``early``. A dry run answers with how many editions
    would be made. A real send assembles the editions and queues them in the ledger, then
    answers 202 with
    ``Location`` (and ``status_url``): the digests with their ledger rows per state. The
    deliverer (serve's delivery loop or `publisher worker`) sends them.
    """
    rt = state.runtime
    regions = None
    if body.region is not None:
        try:
            regions = [rt.tree.normalize(body.region)]
        except UnknownRegionError as e:
            raise HTTPException(404, str(e)) from e
    week = checked_week(body.week)
    try:
        report = state.send_digests(
            rt, regions=regions, week=week, early=body.early, dry_run=body.dry_run,
            deliver_now=False,
        )  # fmt: skip
    except InputError as e:
        raise HTTPException(422, str(e)) from e
    out = SendOut(
        accepted=True,
        dry_run=body.dry_run,
        editions=sum(f.editions for f in report.fires),
        empty=sum(f.empty for f in report.fires),
        waiting=sum(f.waiting for f in report.fires),
        waiting_zones=sorted({z for f in report.fires for z in f.waiting_zones}),
        digests=[
            DigestSendOut(
                region=d.region,
                week=d.week,
                status=d.status,
                digest_id=d.digest_id,
                subject=d.subject,
                recipients=d.queued,
                deliveries=d.counts,
            )
            for d in report.digests
        ],
    )
    if not body.dry_run:
        query = {"week": w} if (w := week or _only_week(report.digests)) else {}
        if regions:
            query["region"] = regions[0]
        out.status_url = "/api/digests" + (f"?{urlencode(query)}" if query else "")
        response.status_code = 202
        response.headers["location"] = out.status_url
    return out


def _only_week(reports: list[Any]) -> str | None:
    weeks = {r.week for r in reports}
    return weeks.pop() if len(weeks) == 1 else None


class StatsOut(BaseModel):
    items: int
    subscribers: dict[str, int]
    subscribers_per_region: dict[str, dict[str, int]]
    deliveries_per_state: dict[str, int]


@stats.get("", response_model=StatsOut)
def get_stats(session: SessionDep) -> StatsOut:
    """Subscribers per region and status, and ledger rows per delivery state."""
    return StatsOut(
        items=count_items(session),
        subscribers=store.status_counts(session),
        subscribers_per_region=store.counts(session),
        deliveries_per_state=delivery_per_state(session),
    )
