"""The console's items: list with filters, add and edit with region suggestions, withdraw, upload.

Every write goes through the same gates as the CLI and the API (``clean_record`` via
``import_records`` or ``update_item``), is audited in its own transaction, and rebuilds the
feeds after the commit, as the API's writes do. Pages work without JavaScript; the one script
(``/static/admin-items.js``) only fetches region suggestions while the editor types.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, get_args
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import Markup
from starlette.datastructures import FormData, UploadFile

from publisher.errors import InputError, UnknownRegionError
from publisher.i18n import N_, current_locale, gettext
from publisher.intake.language import clean_lang
from publisher.intake.records import RawRecord, clean_record
from publisher.intake.remote import read_feed
from publisher.links import check_link
from publisher.models import Item
from publisher.pipeline.edits import ItemChanges, delete_item, update_item
from publisher.pipeline.intake import Format, ImportReport, import_records, read_upload
from publisher.regions.tree import RegionTree
from publisher.store import audit
from publisher.store.item_search import Cursor, ItemFilter, Status, lock_item, search_items
from publisher.store.items import id_by_guid, item_row, tags_of
from publisher.web.admin.auth import EditorUser
from publisher.web.admin.render import flash, page
from publisher.web.coverage import FormNode, covered, form_tree
from publisher.web.deps import SessionDep, StateDep, WebState

router = APIRouter(prefix="/admin/items", include_in_schema=False)
PAGE = 50
MAX_UPLOAD = 5_000_000
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1)]
FORMATS: tuple[Format, ...] = ("seed", "csv", "json", "feed")
STATUSES: tuple[Status, ...] = get_args(Status)
LANGS = ("en", "es", "pt")


async def _form(request: Request) -> FormData:
    return await request.form(max_files=1, max_fields=400)


FormDep = Annotated[FormData, Depends(_form)]


@functools.cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone the machine knows, for the publish-at zone choice."""
    return tuple(sorted(available_timezones()))


@functools.cache
def _zone_rows() -> tuple[tuple[str, Markup, Markup], ...]:
    plain, chosen = Markup("<option>{}</option>"), Markup("<option selected>{}</option>")
    return tuple((z, plain.format(z), chosen.format(z)) for z in zone_names())


def zone_options(selected: str) -> Markup:
    """The publish-at zone <option>s (about 600, prebuilt) with ``selected`` marked."""
    return Markup("\n").join(on if name == selected else off for name, off, on in _zone_rows())


def _zone(name: str, fallback: str) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name in zone_names() else ZoneInfo(fallback)
    except ZoneInfoNotFoundError:
        return ZoneInfo("UTC")


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------------------------- the list


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def parse_cursor(value: str) -> Cursor | None:
    """``after=<ISO time>~<id>`` from an "older" link; anything else starts at the newest."""
    moment, _, key = value.rpartition("~")
    try:
        at = datetime.fromisoformat(moment)
        item_id = int(key)
    except ValueError:
        return None
    if at.tzinfo is None or not 0 < item_id < 2**31:
        return None
    return at.astimezone(UTC), item_id


def format_cursor(cursor: Cursor) -> str:
    return f"{cursor[0].isoformat()}~{cursor[1]}"


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The list's filters as the editor typed them (echoed back into the form)."""

    region: str = ""
    lang: str = ""
    q: str = ""
    start: str = ""
    end: str = ""
    status: str = ""

    def params(self) -> list[tuple[str, str]]:
        pairs = [("region", self.region), ("language", self.lang), ("q", self.q)]
        pairs += [("from", self.start), ("to", self.end), ("status", self.status)]
        return [(k, v) for k, v in pairs if v]


def item_filter(query: ListQuery, state: WebState) -> tuple[ItemFilter, list[str]]:
    """The store filter for ``query``, and the problems with it (shown, never a 500)."""
    tree, zone = state.runtime.tree, _zone(state.settings.timezone, "UTC")
    problems: list[str] = []
    regions = None
    if query.region:
        try:
            slug = tree.normalize(query.region)
            regions = tree.descendants(slug) | {slug}
        except UnknownRegionError:
            problems.append(gettext("There is no region %(slug)s.") % {"slug": query.region})
    lang = ""
    if query.lang:
        try:
            lang = clean_lang(query.lang)
        except InputError:
            problems.append(gettext("The language must be a code such as en, es or pt-BR."))
    bounds: list[datetime | None] = []
    for value, extra in ((query.start, 0), (query.end, 1)):
        day = _day(value)
        if value and day is None:
            problems.append(gettext("Dates are written as YYYY-MM-DD."))
        at = None
        if day is not None and day < date.max:
            at = datetime.combine(day + timedelta(days=extra), time(), zone).astimezone(UTC)
        bounds.append(at)
    status: Status = query.status if query.status in STATUSES else ""
    wanted = ItemFilter(
        regions=regions, lang=lang, text=query.q.strip()[:200], since=bounds[0],
        until=bounds[1], status=status,
    )  # fmt: skip
    return wanted, problems


@functools.lru_cache(maxsize=32)
def _region_options(
    tree: RegionTree, coverage: str, locale: str
) -> tuple[tuple[str, Markup, Markup], ...]:
    """(slug, <option>, selected <option>) for every COVERAGE region, indented by depth; built
    once per language: 280 options through the template cost more than the page's query."""
    plain, chosen = (
        Markup('<option value="{}">{}</option>'),
        Markup('<option value="{}" selected>{}</option>'),
    )
    options: list[tuple[str, Markup, Markup]] = []

    def walk(node: FormNode, depth: int) -> None:
        label = "\u2003" * depth + tree.get(node.slug).name(locale)
        options.append((node.slug, plain.format(node.slug, label), chosen.format(node.slug, label)))
        for child in node.children:
            walk(child, depth + 1)

    walk(form_tree(tree, coverage, checked=()), 0)
    return tuple(options)


def region_options(state: WebState, selected: str) -> Markup:
    """The filter's region <option>s with ``selected`` marked."""
    rows = _region_options(state.runtime.tree, state.settings.coverage, current_locale())
    return Markup("\n").join(on if slug == selected else off for slug, off, on in rows)


@router.get("", response_class=HTMLResponse)
def list_items(
    request: Request, user: EditorUser, session: SessionDep, state: StateDep
) -> HTMLResponse:
    """Items newest first with filters; "older" pages by keyset, never by offset."""
    params = request.query_params
    query = ListQuery(
        region=params.get("region", "")[:64], lang=params.get("language", "")[:16],
        q=params.get("q", "")[:200], start=params.get("from", "")[:10],
        end=params.get("to", "")[:10], status=params.get("status", "")[:16],
    )  # fmt: skip
    wanted, problems = item_filter(query, state)
    after = parse_cursor(params.get("after", "")[:80])
    now = state.runtime.now()
    found = search_items(session, wanted=wanted, now=now, after=after, limit=PAGE)
    older = None
    if found.after is not None:
        older = "?" + urlencode([*query.params(), ("after", format_cursor(found.after))])
    return page(
        request,
        "admin/items.html",
        {
            "page_title": gettext("Items"),
            "rows": found.rows,
            "older": older,
            "first": "?" + urlencode(query.params()) if after else None,
            "scanned_to": found.scanned_to,
            "query": query,
            "problems": problems,
            "now": now,
            "region_options": region_options(state, query.region),
            "langs": LANGS,
            "statuses": STATUS_LABELS,
            "zone": state.settings.timezone,
            "local": functools.partial(_local, zone=_zone(state.settings.timezone, "UTC")),
        },
        user=user,
    )


STATUS_LABELS = (
    ("visible", N_("Visible")),
    ("embargoed", N_("Embargoed")),
    ("withdrawn", N_("Withdrawn")),
)


def _local(moment: datetime, *, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


# ----------------------------------------------------------------------------- add and edit


@dataclass
class ItemForm:
    """The form's fields as text, as shown and as posted."""

    title: str = ""
    summary: str = ""
    link: str = ""
    lang: str = ""
    image_url: str = ""
    image_alt: str = ""
    publish_at: str = ""
    zone: str = "UTC"
    regions: list[str] = field(default_factory=list)


@dataclass
class Suggestion:
    regions: list[str]
    default_only: bool


def _posted(form: FormData, zone_default: str) -> ItemForm:
    regions = [v for v in form.getlist("regions") if isinstance(v, str)][:300]
    zone = _text(form, "zone")
    return ItemForm(
        title=_text(form, "title"), summary=_text(form, "summary"),
        link=_text(form, "link").strip(), lang=_text(form, "lang").strip(),
        image_url=_text(form, "image_url").strip(), image_alt=_text(form, "image_alt"),
        publish_at=_text(form, "publish_at").strip(),
        zone=zone if zone in zone_names() else zone_default,
        regions=list(dict.fromkeys(r.strip().lower() for r in regions if r.strip())),
    )  # fmt: skip


def _from_item(item: Item, regions: list[str], zone: str) -> ItemForm:
    here = _zone(zone, "UTC")
    return ItemForm(
        title=item.title, summary=item.summary, link=item.link or "", lang=item.lang,
        image_url=item.image_url or "", image_alt=item.image_alt,
        publish_at=item.published.astimezone(here).strftime("%Y-%m-%dT%H:%M"), zone=zone,
        regions=regions,
    )  # fmt: skip


def publish_time(form: ItemForm) -> datetime | None:
    """The publish-at moment in UTC (the editor typed it in their zone), None when empty."""
    if not form.publish_at:
        return None
    try:
        local = datetime.fromisoformat(form.publish_at)
    except ValueError:
        raise InputError(gettext("Publish at must be a date and time.")) from None
    if local.tzinfo is not None or not 1970 <= local.year <= 2999:
        raise InputError(gettext("Publish at must be a date and time."))
    return local.replace(tzinfo=_zone(form.zone, "UTC")).astimezone(UTC)


def _check_regions(form: ItemForm, state: WebState) -> list[str]:
    tree = state.runtime.tree
    try:
        return list(dict.fromkeys(tree.normalize(r) for r in form.regions))
    except UnknownRegionError as e:
        slug = str(e.args[0])[:64]
        raise InputError(gettext("There is no region %(slug)s.") % {"slug": slug}) from e


def suggest(form: ItemForm, state: WebState) -> Suggestion:
    """Regions inference finds in the text (the default region when it names none)."""
    inferrer = state.runtime.inferrer
    named = inferrer.mentions(form.title) or inferrer.mentions(form.summary)
    return Suggestion(inferrer.infer(form.title, form.summary), default_only=not named)


def _form_page(
    request: Request,
    user: Any,
    state: WebState,
    form: ItemForm,
    *,
    item_id: int | None,
    error: str = "",
    suggestion: Suggestion | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    tree = state.runtime.tree
    coverage = covered(tree, state.settings.coverage)
    checked = set(form.regions)
    return page(
        request,
        "admin/item_form.html",
        {
            "page_title": gettext("Edit item") if item_id else gettext("Add an item"),
            "item_id": item_id,
            "form": form,
            "error": error,
            "suggestion": suggestion,
            "form_tree": form_tree(tree, state.settings.coverage, checked=checked),
            "checked": checked,
            "others": [r for r in form.regions if r in tree and r not in coverage],
            "zone_options": zone_options(form.zone),
            "langs": LANGS,
        },
        user=user,
        status_code=status_code,
    )


@router.get("/new", response_class=HTMLResponse)
def new_item(request: Request, user: EditorUser, state: StateDep) -> HTMLResponse:
    return _form_page(request, user, state, ItemForm(zone=state.settings.timezone), item_id=None)


@router.post("/new", response_class=HTMLResponse)
def create_item(
    request: Request,
    user: EditorUser,
    session: SessionDep,
    state: StateDep,
    form_data: FormDep,
    background: BackgroundTasks,
) -> Response:
    """Save a new item, or (action=suggest) show the form again with suggested regions."""
    form = _posted(form_data, state.settings.timezone)
    if _text(form_data, "action") == "suggest":
        return _with_suggestion(request, user, state, form, item_id=None)
    rt = state.runtime
    try:
        published = publish_time(form)
        regions = _check_regions(form, state)
    except InputError as e:
        return _form_page(request, user, state, form, item_id=None, error=e.reason, status_code=422)
    record = RawRecord(
        source="console", line=1, title=form.title, summary=form.summary, link=form.link or None,
        published=published, regions=regions, lang=form.lang or None,
        image_url=form.image_url or None, image_alt=form.image_alt,
    )  # fmt: skip
    report = import_records(
        session, records=[record], tree=rt.tree, inferrer=rt.inferrer, now=rt.now(), clock=rt.now
    )
    if report.errors:
        error = report.errors[0].reason
        return _form_page(request, user, state, form, item_id=None, error=error, status_code=422)
    if not report.ids:
        existing = id_by_guid(session, guid=clean_record(record).guid)
        error = gettext("An item with the same title and summary exists already (item %(id)s).")
        return _form_page(
            request, user, state, form, item_id=None,
            error=error % {"id": existing or "?"}, status_code=409,
        )  # fmt: skip
    return _saved(request, session, user, state, background, "add", report.ids[0], form.title)


def _audit(session: Any, user: Any, action: str, item_id: int, title: str, at: datetime) -> None:
    audit.record(
        session, actor=user.email, action=action, target=f"item {item_id}",
        detail=title[:200], at=at,
    )  # fmt: skip


def _with_suggestion(
    request: Request, user: Any, state: WebState, form: ItemForm, *, item_id: int | None
) -> HTMLResponse:
    """The add or edit form again, with the regions suggested for its text added."""
    found = suggest(form, state)
    form.regions = list(dict.fromkeys([*form.regions, *found.regions]))
    return _form_page(request, user, state, form, item_id=item_id, suggestion=found)


def _saved(
    request: Request, session: Any, user: Any, state: WebState, background: BackgroundTasks,
    action: str, item_id: int, title: str,
) -> RedirectResponse:  # fmt: skip
    """After an add or an edit: audit it, commit, rebuild the feeds, back to the edit form."""
    _audit(session, user, action, item_id, title, state.runtime.now())
    session.commit()
    background.add_task(state.rebuild_feeds)
    flash(request, gettext("Item %(id)s saved.") % {"id": item_id})
    return RedirectResponse(f"/admin/items/{item_id}/edit", status_code=303)


@router.get("/{item_id}/edit", response_class=HTMLResponse)
def edit_item(
    request: Request, item_id: ItemId, user: EditorUser, session: SessionDep, state: StateDep
) -> HTMLResponse:
    item = item_row(session, item_id=item_id)
    if item is None:
        raise HTTPException(404, "no such item")
    regions = tags_of(session, item_ids=[item_id]).get(item_id, [])
    form = _from_item(item, regions, state.settings.timezone)
    return _form_page(request, user, state, form, item_id=item_id)


@router.post("/{item_id}/edit", response_class=HTMLResponse)
def save_item(
    request: Request,
    item_id: ItemId,
    user: EditorUser,
    session: SessionDep,
    state: StateDep,
    form_data: FormDep,
    background: BackgroundTasks,
) -> Response:
    """Save an edit (same cleaning as the API's PATCH), or suggest regions for the new text."""
    if lock_item(session, item_id=item_id) is None:
        raise HTTPException(404, "no such item")
    form = _posted(form_data, state.settings.timezone)
    if _text(form_data, "action") == "suggest":
        return _with_suggestion(request, user, state, form, item_id=item_id)
    rt = state.runtime
    try:
        published = publish_time(form)
        changes = ItemChanges(
            title=form.title, summary=form.summary, link=form.link or None,
            regions=_check_regions(form, state), lang=form.lang or None,
            image_url=form.image_url or None, image_alt=form.image_alt,
        )  # fmt: skip
        if published is not None:
            changes = replace(changes, published=published)
        exists = update_item(
            session, item_id=item_id, changes=changes, tree=rt.tree, inferrer=rt.inferrer,
            now=rt.now(), clock=rt.now,
        )  # fmt: skip
    except InputError as e:
        session.rollback()
        return _form_page(
            request, user, state, form, item_id=item_id, error=e.reason, status_code=422
        )
    if not exists:  # withdrawn by someone else since the check above
        raise HTTPException(404, "no such item")
    return _saved(request, session, user, state, background, "edit", item_id, form.title)


@router.post("/suggest")
def suggest_json(user: EditorUser, state: StateDep, form_data: FormDep) -> JSONResponse:
    """Suggested regions for the text being typed (the form's script asks, same origin)."""
    form = _posted(form_data, state.settings.timezone)
    found = suggest(form, state)
    tree, locale = state.runtime.tree, current_locale()
    return JSONResponse(
        {
            "regions": [{"slug": s, "name": tree.get(s).name(locale)} for s in found.regions],
            "default_only": found.default_only,
        }
    )


# -------------------------------------------------------------------------------- withdraw


@router.get("/{item_id}/withdraw", response_class=HTMLResponse)
def confirm_withdraw(
    request: Request, item_id: ItemId, user: EditorUser, session: SessionDep, state: StateDep
) -> HTMLResponse:
    """The confirmation page: a public item is withdrawn (its link says so), an embargoed one
    deleted without a trace."""
    item = item_row(session, item_id=item_id)
    if item is None:
        raise HTTPException(404, "no such item")
    return page(
        request,
        "admin/item_withdraw.html",
        {
            "page_title": gettext("Withdraw an item"),
            "item": item,
            "public": item.visible_at <= state.runtime.now(),
        },
        user=user,
    )


@router.post("/{item_id}/withdraw")
def withdraw(
    request: Request,
    item_id: ItemId,
    user: EditorUser,
    session: SessionDep,
    state: StateDep,
    background: BackgroundTasks,
) -> Response:
    now = state.runtime.now()
    item = lock_item(session, item_id=item_id)
    if item is None:
        raise HTTPException(404, "no such item")
    public, title = item.visible_at <= now, item.title
    delete_item(session, item_id=item_id, now=now)
    _audit(session, user, "withdraw" if public else "delete", item_id, title, now)
    session.commit()
    background.add_task(state.rebuild_feeds)
    message = gettext("Item %(id)s withdrawn.") if public else gettext("Item %(id)s deleted.")
    flash(request, message % {"id": item_id})
    return RedirectResponse("/admin/items", status_code=303)


# ---------------------------------------------------------------------------------- upload


def _upload_page(
    request: Request,
    user: Any,
    *,
    error: str = "",
    report: ImportReport | None = None,
    source: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    return page(
        request,
        "admin/item_upload.html",
        {
            "page_title": gettext("Upload items"),
            "error": error,
            "report": report,
            "source": source,
            "formats": FORMATS,
            "max_mb": MAX_UPLOAD // 1_000_000,
        },
        user=user,
        status_code=status_code,
    )


@router.get("/upload", response_class=HTMLResponse)
def upload_form(request: Request, user: EditorUser) -> HTMLResponse:
    return _upload_page(request, user)


@router.post("/upload", response_class=HTMLResponse)
def upload(
    request: Request,
    user: EditorUser,
    session: SessionDep,
    state: StateDep,
    form_data: FormDep,
    background: BackgroundTasks,
) -> HTMLResponse:
    """Import an uploaded file or a feed URL; the answer is the per-line report."""
    fmt_given = _text(form_data, "format")
    fmt: Format | None = fmt_given if fmt_given in FORMATS else None
    url = _text(form_data, "url").strip()[:2000]
    upload = form_data.get("file")
    rt = state.runtime
    try:
        if url:
            source = check_link(url, name="feed address") or url
            records = read_feed(source, allow_private=state.settings.sources_allow_private)
            rows = import_records(
                session,
                records=records,
                tree=rt.tree,
                inferrer=rt.inferrer,
                now=rt.now(),
                clock=rt.now,
            )
        elif isinstance(upload, UploadFile) and upload.filename:
            source = "".join(c for c in upload.filename[-200:] if c.isprintable())
            data = upload.file.read(MAX_UPLOAD + 1)
            if len(data) > MAX_UPLOAD:
                error = gettext("The file is larger than %(mb)s MB; split it and upload the parts.")
                return _upload_page(
                    request, user, error=error % {"mb": MAX_UPLOAD // 1_000_000}, status_code=413
                )
            rows = import_records(
                session, records=read_upload(data, name=source, fmt=fmt), tree=rt.tree,
                inferrer=rt.inferrer, now=rt.now(), clock=rt.now,
            )  # fmt: skip
        else:
            error = gettext("Choose a file or give a feed address.")
            return _upload_page(request, user, error=error, status_code=422)
    except InputError as e:
        session.rollback()
        return _upload_page(request, user, error=str(e), status_code=422)
    detail = f"added {rows.added}, present {rows.existing}, skipped {len(rows.errors)}"
    audit.record(
        session, actor=user.email, action="import", target=source[:300], detail=detail,
        at=rt.now(),
    )  # fmt: skip
    session.commit()
    if rows.added:
        background.add_task(state.rebuild_feeds)
    return _upload_page(request, user, report=rows, source=source)
