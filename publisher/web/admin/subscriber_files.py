"""Console pages for subscriber files (admins): CSV import with its per-line report, CSV export.

The import is `publisher subscribers import` behind a form: the same parser and rules (bad
lines reported and skipped, suppressed addresses reported and never re-added, new pending
subscribers sent a confirmation through the outbox). The export streams keyset pages, so a
million rows never sit in memory; it is a POST (CSRF-checked, audited before the first byte)
because a GET would let a link or a crawler pull the whole list.
"""

from __future__ import annotations

import io
import unicodedata
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, StreamingResponse

from publisher.errors import InputError
from publisher.i18n import gettext as _
from publisher.models import SubscriberStatus
from publisher.pipeline.subscriber_export import Pages, export_csv, export_filename
from publisher.pipeline.subscribers import (
    SubscriberImportReport,
    import_subscriber_rows,
    queue_confirmations,
    read_subscriber_rows,
)
from publisher.runtime import Runtime
from publisher.store import audit
from publisher.store import subscriber_admin as admin_store
from publisher.store.subscriber_admin import ExportLine
from publisher.web.admin.auth import AdminOnly
from publisher.web.admin.render import page
from publisher.web.admin.subscribers import HELPERS, STATUSES, status_of
from publisher.web.deps import SessionDep, StateDep

router = APIRouter(include_in_schema=False)
IMPORT_PATH = "/admin/subscribers/import"
# About 20,000 lines: bench/bench_subscriber_search.py measured 55 s for 20,000 new pending
# addresses (each owed a confirmation) on a 2-core box at load average 12; a re-import of the
# same file 5 s. Larger lists: the CLI, which has no proxy timeout.
MAX_IMPORT = 1024 * 1024
SHOWN_ERRORS = 1_000
EXPORT_PAGE = 1_000


def clean_name(name: str | None) -> str:
    """An uploaded file's name as the report and the audit log show it: no control, format
    (bidi) or line-break characters, at most 100 characters."""
    kept = "".join(c for c in name or "" if unicodedata.category(c)[0] not in "CZ" or c == " ")
    return kept.strip()[:100] or "upload.csv"


def _form(
    request: Request, user: AdminOnly, *, error: str = "", status_code: int = 200
) -> HTMLResponse:
    context = {
        **HELPERS, "page_title": _("Import subscribers"), "error": error,
        "limit_mb": MAX_IMPORT >> 20,
    }  # fmt: skip
    response = page(request, "admin/subscribers_import.html", context, user=user)
    response.status_code = status_code
    return response


@router.get(IMPORT_PATH, response_class=HTMLResponse)
def import_page(request: Request, user: AdminOnly) -> HTMLResponse:
    """The upload form, with the columns the file needs."""
    return _form(request, user)


def _run_import(
    session: SessionDep, rt: Runtime, upload: UploadFile, name: str
) -> SubscriberImportReport:
    # Undecodable bytes become U+FFFD, so such a line fails as an address, not the whole file.
    text = io.TextIOWrapper(upload.file, encoding="utf-8-sig", errors="replace", newline="")
    rows = read_subscriber_rows(text, source=name, tree=rt.tree)
    return import_subscriber_rows(session, rows=rows, source=name, now=rt.now())


@router.post(IMPORT_PATH, response_class=HTMLResponse)
def import_file(
    request: Request,
    session: SessionDep,
    state: StateDep,
    user: AdminOnly,
    background: BackgroundTasks,
    file: Annotated[UploadFile, File()],
) -> HTMLResponse:
    """Import an uploaded CSV and show what happened to every line."""
    if file.size is not None and file.size > MAX_IMPORT:
        error = _("The file is larger than %(mb)s MB; split it, or use the command line.") % {
            "mb": MAX_IMPORT >> 20
        }
        return _form(request, user, error=error, status_code=413)
    rt, name = state.runtime, clean_name(file.filename)
    try:
        report = _run_import(session, rt, file, name)
    except InputError as e:
        return _form(request, user, error=e.reason, status_code=400)
    queue_confirmations(session, subscriber_ids=report.pending_ids, now=rt.now())
    skipped = len(report.errors)
    detail = (
        f"{name}: added {report.added}, updated {report.updated}, "
        f"already present {report.unchanged}, skipped {skipped}"
    )
    audit.record(
        session, actor=user.email, action="import", target="subscribers", detail=detail,
        at=rt.now(),
    )  # fmt: skip
    if report.pending_ids:
        background.add_task(state.mailer.wake)
    context = {
        **HELPERS,
        "page_title": _("Import report"), "name": name, "report": report, "skipped": skipped,
        "errors": report.errors[:SHOWN_ERRORS], "hidden": max(0, skipped - SHOWN_ERRORS),
    }  # fmt: skip
    return page(request, "admin/subscribers_report.html", context, user=user)


@router.get("/admin/subscribers/export", response_class=HTMLResponse)
def export_page(request: Request, user: AdminOnly) -> HTMLResponse:
    """The export form: everyone, or one status."""
    context = {
        **HELPERS,
        "page_title": _("Export subscribers"), "statuses": STATUSES,
    }  # fmt: skip
    return page(request, "admin/subscribers_export.html", context, user=user)


def _pages(rt: Runtime, status: SubscriberStatus | None) -> Pages:
    """Each page in its own short session: a long download holds no transaction open."""

    def next_page(after: int) -> list[ExportLine]:
        with rt.session() as session:
            return admin_store.export_page(
                session, after_id=after, status=status, limit=EXPORT_PAGE
            )

    return next_page


@router.post("/admin/subscribers/export", response_model=None)
def export(
    session: SessionDep,
    state: StateDep,
    user: AdminOnly,
    status: Annotated[str, Form(max_length=16)] = "",
) -> StreamingResponse:
    """Stream the CSV (the import's columns); the audit row commits before the first byte."""
    rt, wanted = state.runtime, status_of(status)
    now = rt.now()
    audit.record(
        session, actor=user.email, action="export", target="subscribers",
        detail=f"status={wanted or 'all'}", at=now,
    )  # fmt: skip
    filename = export_filename(wanted, now)
    return StreamingResponse(
        export_csv(_pages(rt, wanted)),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="{filename}"',
            "cache-control": "no-store",
        },
    )
