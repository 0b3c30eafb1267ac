"""/admin/editions over HTTP, on SQLite and PostgreSQL, with the real editions pipeline.

The preview frame is byte for byte what ``preview_edition`` (the send's own assembly) gives;
notes are plain text, short, escaped and show in the preview; hold keeps a week back and
approve fires the zones whose time has passed; a test send reaches a real SMTP server with no
ledger row; send early is idempotent; progress counts the ledger. Every change is audited and
every form is refused without its CSRF token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import select

from publisher.models import Delivery, Edition, EditionNote, OutboxMessage, SendHold
from publisher.pipeline.edition_tools import preview_edition
from publisher.pipeline.subscribers import add_subscriber
from publisher.runtime import Runtime
from publisher.store.holds import get_hold
from tests.conftest import FixedClockRuntime
from tests.console_http import (
    ADMIN,
    EDITOR,
    ConsoleApp,
    audit_rows,
    console_app,
    csrf_token,
    log_in,
)
from tests.web_support import Capture, seed, smtp_capture

WEEK = "2026-W48"  # FIXED_NOW is Friday 2026-11-27: the next send (Monday) is W48's


@pytest.fixture
def smtp() -> Iterator[tuple[str, Capture]]:
    yield from smtp_capture()


@pytest.fixture
def web(runtime: FixedClockRuntime, smtp: tuple[str, Capture]) -> Iterator[ConsoleApp]:
    runtime.settings.smtp_url = smtp[0]
    seed(runtime)
    # The editor acts a minute later: windows are [start, cutoff), so an item stamped at the
    # very moment of a send goes into the next edition.
    runtime.fixed_now += timedelta(minutes=1)
    with console_app(runtime) as app:
        yield app


@pytest.fixture
def editor(web: ConsoleApp) -> TestClient:
    return log_in(web, EDITOR)


def count(rt: Runtime, model: type) -> int:
    with rt.session() as session:
        return int(session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one())


def reader(rt: Runtime, email: str, regions: list[str], timezone: str | None = None) -> int:
    with rt.session() as session:
        sub, _ = add_subscriber(session, email=email, regions=regions, confirmed=True,
                                locale="en", tree=rt.tree, now=rt.now())  # fmt: skip
        sub.timezone = timezone
        session.add(sub)
        session.flush()
        assert sub.id is not None
        return sub.id


def form_error(html: str) -> str:
    found = re.search(r'class="form-error"[^>]*>([^<]*)<', html)
    return found.group(1) if found else ""


def post(client: TestClient, path: str, **fields: object) -> object:
    data = {"csrf_token": csrf_token(client, "/admin/editions"), **fields}
    return client.post(path, data=data)


def test_preview_frame_is_the_send_assembly_and_sandboxed(web: ConsoleApp, editor: TestClient):
    rt = web.runtime
    page = editor.get("/admin/editions", params={"regions": ["gt", "sv"], "language": "es"})
    assert page.status_code == 200
    frames = re.findall(r'<iframe[^>]*sandbox=""[^>]*src="([^"]+)"', page.text)
    assert len(frames) == 2 and frames[0] == frames[1]
    frame = editor.get(frames[0].replace("&amp;", "&"))
    assert frame.status_code == 200
    expected = preview_edition(rt, ["gt", "sv"], "es", rt.now())
    assert frame.text == expected.html
    csp = frame.headers["content-security-policy"]
    assert "sandbox" in csp and "script-src" not in csp and "frame-ancestors 'self'" in csp
    assert frame.headers["x-frame-options"] == "SAMEORIGIN"
    assert expected.subject in page.text.replace("&#39;", "'")
    # Nothing was written by looking.
    assert count(rt, Edition) == 0 and count(rt, Delivery) == 0


@pytest.mark.parametrize("query", [{"regions": "atlantis"}, {"regions": "france"},
                                   {"regions": "<script>"}, {"week": "2026-W99"}])  # fmt: skip
def test_forged_regions_and_weeks_are_refused(web: ConsoleApp, editor: TestClient, query: dict):
    answer = editor.get("/admin/editions", params=query)
    assert answer.status_code == 422 and form_error(answer.text)
    assert "<script>" not in answer.text.split("</header>", 1)[-1]
    frame = editor.get("/admin/editions/preview", params=query)
    assert frame.status_code in (200, 422) and "<script>" not in frame.text


def test_notes_are_plain_short_escaped_and_in_the_preview(web: ConsoleApp, editor: TestClient):
    rt = web.runtime
    week_note = "Roads <b>closed</b>\r\nin Petén\u202e & elsewhere"
    answer = post(editor, "/admin/editions/notes", week=WEEK, region="", text=week_note,
                  regions=["gt"], language="en")  # fmt: skip
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/admin/editions?regions=gt&language=en&week={WEEK}"
    post(editor, "/admin/editions/notes", week=WEEK, region="gt", text="Guatemala note")
    with rt.session() as session:
        stored = {n.region: n.text for n in session.exec(select(EditionNote))}
    assert stored == {"": "Roads <b>closed</b>\nin Petén & elsewhere", "gt": "Guatemala note"}
    frame = editor.get("/admin/editions/preview", params={"regions": "gt", "language": "en"}).text
    assert "Roads &lt;b&gt;closed&lt;/b&gt;" in frame and "Guatemala note" in frame
    assert "<b>closed</b>" not in frame
    page = editor.get("/admin/editions", params={"regions": "gt", "week": WEEK}).text
    assert "Roads &lt;b&gt;closed&lt;/b&gt;" in page
    too_long = post(editor, "/admin/editions/notes", week=WEEK, region="", text="x" * 501)
    assert too_long.status_code == 422 and "at most 500 characters" in form_error(too_long.text)
    huge = post(editor, "/admin/editions/notes", week=WEEK, region="", text="x" * 100_000)
    assert huge.status_code == 413
    forged = post(editor, "/admin/editions/notes", week=WEEK, region="atlantis", text="x")
    assert forged.status_code == 422
    bad_week = post(editor, "/admin/editions/notes", week="2026-W54\r\nX: y", region="", text="x")
    assert bad_week.status_code in (400, 422)
    with rt.session() as session:
        assert {n.region: n.text for n in session.exec(select(EditionNote))} == stored
    notes = audit_rows(rt, "note")
    assert [(a, t) for a, _, t, _ in notes] == [(EDITOR[0], f"edition {WEEK} gt"),
                                                 (EDITOR[0], f"edition {WEEK}")]  # fmt: skip
    assert (
        post(editor, "/admin/editions/notes", week=WEEK, region="gt", text="  ").status_code == 303
    )
    with rt.session() as session:
        assert {n.region for n in session.exec(select(EditionNote))} == {""}


def test_hold_then_approve_fires_the_zones_whose_time_has_passed(
    web: ConsoleApp, editor: TestClient
):
    rt = web.runtime
    assert isinstance(rt, FixedClockRuntime)
    utc_reader = reader(rt, "utc@example.org", ["gt"])
    later_reader = reader(rt, "gt@example.org", ["gt"], timezone="America/Guatemala")
    refused = post(editor, "/admin/editions/approve", week=WEEK)
    assert refused.status_code == 409 and "not held" in form_error(refused.text)
    assert audit_rows(rt, "approve") == []
    assert post(editor, "/admin/editions/hold", week=WEEK).status_code == 303
    with rt.session() as session:
        hold = get_hold(session, week=WEEK)
        assert hold is not None and hold.held_by == EDITOR[0] and hold.approved_at is None
    assert "is held" in editor.get("/admin/editions").text
    # Monday 09:00 UTC: the UTC readers' fire (08:00) has passed, Guatemala's (14:00 UTC) not.
    rt.fixed_now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    editor = log_in(web, EDITOR)  # the Friday session has expired
    assert post(editor, "/admin/editions/approve", week=WEEK).status_code == 303
    with rt.session() as session:
        editions = {e.subscriber_id: e.week for e in session.exec(select(Edition))}
        hold = get_hold(session, week=WEEK)
    assert editions == {utc_reader: WEEK}
    assert later_reader not in editions
    assert hold is not None and hold.approved_by == EDITOR[0]
    assert [t for _, _, t, _ in audit_rows(rt, "approve")] == [f"edition {WEEK}"]
    assert [t for _, _, t, _ in audit_rows(rt, "hold")] == [f"edition {WEEK}"]
    again = post(editor, "/admin/editions/approve", week=WEEK)
    assert again.status_code == 409 and count(rt, SendHold) == 1


def test_test_send_reaches_smtp_with_no_ledger_row(
    web: ConsoleApp, editor: TestClient, smtp: tuple[str, Capture]
):
    rt = web.runtime
    answer = post(editor, "/admin/editions/test", regions=["gt", "sv"], language="es")
    assert answer.status_code == 303
    assert count(rt, OutboxMessage) == 1
    web.app.state.web.mailer.drain()
    [(_, rcpt, raw)] = smtp[1].messages
    assert rcpt == [EDITOR[0]]
    message = message_from_bytes(raw, policy=policy.default)
    assert str(message["Subject"]).startswith("[")  # marked as a test copy
    assert count(rt, Delivery) == 0 and count(rt, Edition) == 0
    assert [(a, t) for a, _, t, _ in audit_rows(rt, "test-send")] == [(EDITOR[0], "gt sv")]
    empty = post(editor, "/admin/editions/test", language="es")
    assert empty.status_code == 422 and count(rt, OutboxMessage) == 1


def test_send_early_twice_sends_once_and_progress_counts_it(web: ConsoleApp, editor: TestClient):
    rt = web.runtime
    ids = [reader(rt, f"r{n}@example.org", ["gt"]) for n in range(3)]
    assert editor.get("/admin/editions/early").status_code == 200
    first = post(editor, "/admin/editions/early", region="")
    assert first.status_code == 303 and first.headers["location"] == "/admin/editions/progress"
    with rt.session() as session:
        after_first = sorted((e.subscriber_id, e.week) for e in session.exec(select(Edition)))
    assert [s for s, _ in after_first] == ids
    rows = count(rt, Delivery)
    assert rows == 3
    assert post(editor, "/admin/editions/early", region="").status_code == 303  # double submit
    with rt.session() as session:
        again = sorted((e.subscriber_id, e.week) for e in session.exec(select(Edition)))
    assert again == after_first
    assert count(rt, Delivery) == rows
    assert len(audit_rows(rt, "send")) == 2
    week = after_first[0][1]
    progress = editor.get("/admin/editions/progress", params={"week": week})
    assert progress.status_code == 200
    assert re.search(r'<strong data-state="pending">3</strong>', progress.text)
    assert '<noscript><meta http-equiv="refresh" content="10"></noscript>' in progress.text
    data = editor.get("/admin/editions/progress.json", params={"week": week}).json()
    assert data[week]["states"]["pending"] == 3 and data[week]["total"] == 3
    forged = post(editor, "/admin/editions/early", region="atlantis")
    assert forged.status_code == 422 and count(rt, Delivery) == rows


def test_roles_and_csrf(web: ConsoleApp, editor: TestClient):
    rt = web.runtime
    stranger = web.client()
    for path in ("/admin/editions", "/admin/editions/preview", "/admin/editions/progress",
                 "/admin/editions/early", "/admin/editions/progress.json"):  # fmt: skip
        assert stranger.get(path).status_code == 303
        assert editor.get(path).status_code == 200
    admin = log_in(web, ADMIN)
    assert admin.get("/admin/editions").status_code == 200
    for path, data in (("/admin/editions/hold", {"week": WEEK}),
                       ("/admin/editions/notes", {"week": WEEK, "text": "x"}),
                       ("/admin/editions/early", {}),
                       ("/admin/editions/test", {"regions": "gt"})):  # fmt: skip
        assert editor.post(path, data=data).status_code == 403
        assert editor.post(path, data={**data, "csrf_token": "forged"}).status_code == 403
    assert count(rt, SendHold) == 0 and count(rt, EditionNote) == 0
    assert count(rt, Edition) == 0 and count(rt, OutboxMessage) == 0
    assert audit_rows(rt, "hold") == [] and audit_rows(rt, "send") == []
