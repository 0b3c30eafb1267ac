"""/admin/sources and /admin/bounces over HTTP, on SQLite and PostgreSQL.

Admins list, add, pause, resume, poll and remove sources (each audited, each form refused
without its CSRF token); editors are refused; bad input answers 422 with the reason and stores
nothing. The bounces page lists reports newest first a page at a time, escaped, with the
suppressions per reason and the policy in force.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from publisher.models import Item, Source, Suppression
from publisher.runtime import Runtime
from publisher.store import bounces as bounce_store
from publisher.store.sources import list_sources
from tests.console_http import (
    ADMIN,
    EDITOR,
    ConsoleApp,
    audit_rows,
    console_app,
    csrf_token,
    log_in,
)
from tests.feed_server import Answer, FeedServer, feed_server, rss


@pytest.fixture
def web(runtime: Runtime) -> Iterator[ConsoleApp]:
    runtime.settings.sources_allow_private = True  # the feed server is on loopback
    with console_app(runtime) as app:
        yield app


@pytest.fixture
def admin(web: ConsoleApp) -> TestClient:
    return log_in(web, ADMIN)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as s:
        yield s


def sources(rt: Runtime) -> list[Source]:
    with rt.session() as session:
        return list_sources(session)


def add(client: TestClient, **fields: object) -> object:
    data = {"csrf_token": csrf_token(client, "/admin/sources"), "every": "30m", **fields}
    return client.post("/admin/sources", data=data)


def form_error(html: str) -> str:
    found = re.search(r'class="form-error"[^>]*>([^<]*)<', html)
    return found.group(1) if found else ""


def test_admin_adds_pauses_resumes_and_removes_a_source(web: ConsoleApp, admin: TestClient):
    rt = web.runtime
    answer = add(admin, url="https://example.org/feed.xml", regions=["gt", "sv"], every="2h",
                 lang="es")  # fmt: skip
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/sources"
    [source] = sources(rt)
    assert (source.url, source.regions, source.every, source.lang) == (
        "https://example.org/feed.xml", "gt sv", 7200, "es")  # fmt: skip
    listing = admin.get("/admin/sources").text
    assert "https://example.org/feed.xml" in listing and "Guatemala" in listing
    assert "added; it is polled within a minute" in listing  # the flash survives the redirect
    form = {"csrf_token": csrf_token(admin, "/admin/sources")}
    here = f"/admin/sources/{source.id}"
    assert admin.post(f"{here}/pause", data=form).status_code == 303
    assert sources(rt)[0].paused
    assert admin.post(f"{here}/resume", data=form).status_code == 303
    assert not sources(rt)[0].paused and sources(rt)[0].next_poll == rt.now()
    assert admin.get(f"{here}/remove").status_code == 200
    assert admin.post(f"{here}/remove", data=form).status_code == 303
    assert sources(rt) == []
    assert admin.post(f"{here}/remove", data=form).status_code == 404
    actions = [(a, act, target) for a, act, target, _ in audit_rows(rt) if "source" in target]
    assert actions == [
        (ADMIN[0], "delete", f"source {source.id}"),
        (ADMIN[0], "resume", f"source {source.id}"),
        (ADMIN[0], "pause", f"source {source.id}"),
        (ADMIN[0], "add", f"source {source.id}"),
    ]


def test_poll_now_takes_the_entries_in_and_says_what_it_found(
    web: ConsoleApp, admin: TestClient, server: FeedServer
):
    rt = web.runtime
    server.routes["/news"] = Answer(
        body=rss(
            ("e1", "Floods in Peru", "Rain fell."),
        )
    )
    add(admin, url=server.url("/news"))
    [source] = sources(rt)
    token = csrf_token(admin, "/admin/sources")
    answer = admin.post(f"/admin/sources/{source.id}/poll", data={"csrf_token": token})
    assert answer.status_code == 303
    assert "polled: 1 new, 0 updated" in admin.get("/admin/sources").text
    with rt.session() as session:
        titles = session.exec(select(Item.title).where(Item.source_id == source.id)).all()
    assert titles == ["Floods in Peru"]
    server.routes["/news"] = Answer(status=500)
    admin.post(f"/admin/sources/{source.id}/poll", data={"csrf_token": token})
    page = admin.get("/admin/sources").text
    assert "could not be polled" in page and "HTTP 500" in page
    assert next(d for _, _, _, d in audit_rows(rt, "poll")).startswith(
        server.url("/news") + " error"
    )


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"url": "javascript:alert(1)"}, "not a feed address"),
        ({"url": "https://example.org/a\r\nX-Evil: 1"}, "not a feed address"),
        ({"url": "https://example.org/\u202egpj.exe"}, "not a feed address"),
        ({"url": "https://example.org/f", "every": "0m"}, "Poll every"),
        ({"url": "https://example.org/f", "every": "9999999d"}, "Poll every"),
        ({"url": "https://example.org/f", "regions": ["atlantis"]}, "atlantis is not a region"),
        ({"url": "https://example.org/f", "lang": "<script>"}, "language tag"),
    ],
)
def test_bad_sources_are_refused_with_the_reason(
    web: ConsoleApp, admin: TestClient, fields: dict[str, object], reason: str
):
    answer = add(admin, **fields)
    assert answer.status_code == 422
    assert reason in form_error(answer.text)
    assert "<script>" not in answer.text.split("</header>", 1)[-1]
    assert sources(web.runtime) == []


def test_a_duplicate_source_is_refused_once_stored(web: ConsoleApp, admin: TestClient):
    assert add(admin, url="https://example.org/f").status_code == 303
    again = add(admin, url="https://example.org/f")
    assert again.status_code == 422 and "already a source" in form_error(again.text)
    assert len(sources(web.runtime)) == 1


def test_editors_strangers_and_forged_forms_change_nothing(web: ConsoleApp, admin: TestClient):
    editor = log_in(web, EDITOR)
    assert editor.get("/admin/sources").status_code == 403
    assert editor.get("/admin/bounces").status_code == 403
    token = csrf_token(editor, "/admin/editions")
    forged = {"csrf_token": token, "url": "https://example.org/f", "every": "30m"}
    assert editor.post("/admin/sources", data=forged).status_code == 403
    stranger = web.client()
    assert stranger.get("/admin/sources").status_code == 303
    assert stranger.post("/admin/sources", data=forged).status_code in (303, 403)
    no_token = {"url": "https://example.org/f", "every": "30m"}
    assert admin.post("/admin/sources", data=no_token).status_code == 403
    wrong = {**no_token, "csrf_token": "x" * 40}
    assert admin.post("/admin/sources", data=wrong).status_code == 403
    assert sources(web.runtime) == []
    assert audit_rows(web.runtime, "add") == []


def _report(rt: Runtime, n: int, *, detail: str = "", kind: str = "hard") -> None:
    with rt.session() as session:
        report_id, _ = bounce_store.store_report(
            session, key=f"k{n}", source="smtp", raw=b"x", envelope_to="bounces@example.org",
            now=rt.now() + timedelta(seconds=n),
        )  # fmt: skip
        report = bounce_store.lock_report(session, report_id=report_id)
        assert report is not None
        bounce_store.finish(report, session, state="unmatched", kind=kind, detail=detail or f"r{n}")


def test_bounces_page_lists_reports_a_page_at_a_time(web: ConsoleApp, admin: TestClient):
    rt = web.runtime
    for n in range(52):
        _report(rt, n)
    _report(rt, 99, detail="<img src=x onerror=alert(1)> \u202egnp.exe", kind="soft")
    with rt.session() as session:
        session.add(Suppression(email_hash="a" * 64, reason="hard_bounce", created=rt.now()))
        session.add(Suppression(email_hash="b" * 64, reason="hard_bounce", created=rt.now()))
        session.add(Suppression(email_hash="c" * 64, reason="complaint", created=rt.now()))
    first = admin.get("/admin/bounces")
    assert first.status_code == 200
    html = first.text
    assert "&lt;img src=x onerror=alert(1)&gt; gnp.exe" in html and "\u202e" not in html
    assert "<img src=x" not in html
    assert re.search(r"<code>hard_bounce</code></td><td class=\"num\">2<", html)
    assert re.search(r"<code>complaint</code></td><td class=\"num\">1<", html)
    assert re.search(r"<code>unmatched</code></td><td class=\"num\">53<", html)
    assert "after 3 within 30 days" in html
    shown = re.findall(r"<td class=\"detail\"><bdi>r(\d+)</bdi>", html)
    assert shown == [str(n) for n in range(51, 2, -1)]  # 49 here + the soft one = 50
    older = re.search(r'href="/admin/bounces\?before=(\d+)"', html)
    assert older
    rest = admin.get(f"/admin/bounces?before={older.group(1)}").text
    assert re.findall(r"<td class=\"detail\"><bdi>r(\d+)</bdi>", rest) == ["2", "1", "0"]
    assert not re.search(r'href="/admin/bounces\?before=\d+"', rest)
