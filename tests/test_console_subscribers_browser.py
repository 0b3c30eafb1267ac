"""The console's subscriber pages in real Chromium: an admin searches, opens a person, erases them
after typing the address; every page passes axe-core and fits 375 px; an editor is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.models import SubscriberStatus
from publisher.store import subscribers as store
from tests import console_support
from tests.browser_support import chromium
from tests.console_support import Console, assert_accessible, at_375, login

console_server = console_support.console_server

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).parent / "artifacts"
PAGES = (
    "/admin/subscribers", "/admin/subscribers/new", "/admin/subscribers/import",
    "/admin/subscribers/export", "/admin/suppressions",
)  # fmt: skip


def _people(console: Console) -> int:
    rt = console.runtime
    with rt.session() as session:
        for i in range(12):
            store.add_or_update(
                session, email=f"reader{i}@example.org", regions=["gt", "central-america"],
                status=SubscriberStatus.active, now=rt.now(),
            )  # fmt: skip
        sub, _ = store.add_or_update(
            session, email="Maria.Lopez@example.org", regions=["sv"],
            status=SubscriberStatus.active, now=rt.now(),
        )  # fmt: skip
        store.record_consent(
            session, subscriber_id=sub.id or 0, action="signup", now=rt.now(), ip="192.0.2.7",
            regions=["sv"], form_version="subscribe-2026-11",
        )  # fmt: skip
        store.suppress(session, email="spam@example.org", reason="complaint", now=rt.now())
        assert sub.id is not None
        return sub.id


def test_admin_searches_opens_a_person_and_erases_them(console_server: Console) -> None:
    base, rt = console_server.base, console_server.runtime
    sid = _people(console_server)
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, base, *console_server.admin, next="/admin/subscribers")
        assert page.get_by_role("heading", name="Subscribers").is_visible()
        for path in PAGES:
            page.goto(base + path)
            page.set_viewport_size({"width": 1280, "height": 900})
            assert_accessible(page)
            at_375(page)
            assert_accessible(page)
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(base + "/admin/subscribers")
        page.get_by_label("Address").fill("maria")
        with page.expect_navigation():
            page.get_by_label("Address").press("Enter")
        results = page.locator("ul.subscribers li")
        assert results.count() == 1
        page.get_by_role("link", name="Maria.Lopez@example.org").click()
        assert page.url.endswith(f"/admin/subscribers/{sid}")
        assert page.get_by_role("cell", name="192.0.2.7").is_visible()
        assert_accessible(page)
        page.screenshot(path=str(ARTIFACTS / "console-subscriber-1280.png"), full_page=True)
        at_375(page)
        page.screenshot(path=str(ARTIFACTS / "console-subscriber-375.png"), full_page=True)

        page.get_by_role("link", name="Erase this subscriber…").click()
        assert_accessible(page)
        at_375(page)
        field = page.get_by_label("Type Maria.Lopez@example.org to confirm")
        field.fill("someone.else@example.org")
        page.get_by_role("button", name="Erase for good").click()
        assert page.get_by_role("alert").is_visible()  # wrong address: nothing erased
        with rt.session() as session:
            assert store.get_subscriber(session, subscriber_id=sid) is not None
        page.get_by_label("Type Maria.Lopez@example.org to confirm").fill("maria.lopez@example.org")
        page.get_by_role("button", name="Erase for good").click()
        assert page.url.endswith("/admin/subscribers")
        assert page.get_by_text("Erased.").is_visible()
        with rt.session() as session:
            assert store.get_subscriber(session, subscriber_id=sid) is None
            assert store.suppression_reason(session, email="maria.lopez@example.org") == "erased"

        page.get_by_role("link", name="Add a subscriber").click()
        page.get_by_label("Email address").fill("new.reader@example.org")
        page.locator("fieldset.regions input[type=checkbox]").first.check()
        page.get_by_role("button", name="Add and send the confirmation").click()
        assert page.get_by_text("Added as pending").is_visible()
        assert_accessible(page)
        at_375(page)


def test_an_editor_cannot_open_subscriber_pages(console_server: Console) -> None:
    base = console_server.base
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 812})
        login(page, base, *console_server.editor, next="/admin/subscribers")
        assert page.get_by_role("heading", name="Not for your account").is_visible()
        for path in PAGES:
            response = page.goto(base + path)
            assert response is not None and response.status == 403, path
