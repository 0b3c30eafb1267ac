"""The dashboard in real Chromium on SQLite and PostgreSQL: the right numbers for a small store,
links for each role, Spanish, 375 px and axe-core. With SHOTS_DIR set, it leaves screenshots
at 1280 and 375 px there (the note's pictures).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import sqlalchemy as sa

from publisher.store import deliveries as ledger
from publisher.store import holds, sources
from publisher.store import subscribers as store
from tests import console_support
from tests.browser_support import chromium
from tests.console_support import Console, assert_accessible, at_375, login
from tests.delivery_data import add_subscribers, plain_digest

console_server = console_support.console_server


def _fill(console: Console) -> None:
    """12 readers of Guatemala (2 gone), 4 of Honduras, a week's ledger in several states."""
    rt = console.runtime
    now = rt.now()
    gt = add_subscribers(rt, 12, region="gt", prefix="gt")
    add_subscribers(rt, 4, region="hn", prefix="hn")
    with rt.session() as s:
        store.set_status(s, subscriber_id=gt[0][0], status="unsubscribed", now=now)
        store.set_status(s, subscriber_id=gt[1][0], status="bounced", now=now)
        bad = sources.add_source(
            s, url="https://feeds.example.org/a", regions=[], every=60, lang="", now=now
        )
        sources.save_source(s, source_id=bad.id or 0, values={"failures": 2})
        holds.hold(s, week="2026-W48", by="<b>ed</b>\u202eitor@example.org", now=now)
    digest = plain_digest(rt, region="gt", week="2026-W48")
    with rt.session() as s:
        ids = [i for i, _ in gt[2:]]
        ledger.enqueue(s, digest_id=digest, subscriber_ids=ids)
        sent = sa.text(
            "UPDATE deliveries SET state = 'sent' WHERE digest_id = :d AND subscriber_id IN :ids"
        ).bindparams(sa.bindparam("ids", expanding=True))
        s.execute(sent, {"d": digest, "ids": ids[:7]})
        s.execute(
            sa.text("UPDATE deliveries SET state = 'unknown' WHERE subscriber_id = :i"),
            {"i": ids[7]},
        )


def _shot(page: object, name: str) -> None:
    folder = os.environ.get("SHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)  # type: ignore[attr-defined]


def test_dashboard_needs_a_login(console_server: Console) -> None:
    base = console_server.base
    answer = httpx.get(base + "/admin", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/admin/login")
    forged = httpx.get(
        base + "/admin", cookies={"publisher_console": "x" * 4000}, follow_redirects=False
    )
    assert forged.status_code == 303  # a forged session is no session
    assert httpx.post(base + "/admin", follow_redirects=False).status_code in (403, 405)


def test_dashboard_shows_the_store_in_chromium(console_server: Console, database_url: str) -> None:
    console = console_server
    _fill(console)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, console.base, *console.editor)
        page.goto(console.base + "/admin")
        assert page.get_by_role("heading", level=1).inner_text() == "Dashboard"
        row = page.get_by_role("row").filter(
            has=page.get_by_role("rowheader", name="Guatemala", exact=True)
        )
        cells = row.get_by_role("cell").all_inner_texts()
        assert cells == ["10", "0", "1", "1"]  # active, pending, bounced, unsubscribed
        week = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="2026-W48"))
        # editions, pending, sending, sent, deferred, failed, unknown, skipped, total
        assert week.get_by_role("cell").all_inner_texts() == [
            "1", "2", "0", "7", "0", "0", "1", "0", "10",
        ]  # fmt: skip
        alerts = page.locator(".alert-list").inner_text()
        assert "1 message of the last four weeks is unknown" in alerts
        assert "1 source fails to poll." in alerts
        # the holder's address is shown as text: markup and a bidi override stay inert
        assert "The send of week 2026-W48 is held by <b>ed</b>\u202eitor@example.org." in alerts
        assert page.locator(".alert-list b").count() == 0
        assert page.locator(".alert-list bdi").inner_text() == "<b>ed</b>\u202eitor@example.org"
        assert page.locator('a[href="/admin/sources"]').count() == 0  # editors: not their page
        # active readers by zone: a country's readers get its main zone by default
        for zone_name, readers in (("America/Guatemala", "10"), ("America/Tegucigalpa", "4")):
            header = page.get_by_role("rowheader", name=zone_name, exact=True)
            zone_row = page.get_by_role("row").filter(has=header)
            assert zone_row.get_by_role("cell").first.inner_text() == readers
        assert_accessible(page)
        if database_url.startswith("sqlite"):
            _shot(page, "dashboard-1280.png")
        at_375(page)
        assert_accessible(page)
        if database_url.startswith("sqlite"):
            _shot(page, "dashboard-375.png")

        admin = browser.new_page(viewport={"width": 1280, "height": 900})
        login(admin, console.base, *console.admin)
        admin.goto(console.base + "/admin?lang=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        assert admin.get_by_role("heading", level=1).inner_text() == "Dashboard"
        admin.goto(console.base + "/admin?lang=es")
        assert admin.get_by_role("heading", level=1).inner_text() == "Panel"
        assert admin.locator('a[href="/admin/sources"]').count() >= 1
        text = admin.locator("main").inner_text()
        assert re.search(r"Seguidores por región", text)
