"""The console's base in real Chromium: log in, read the audit log, manage users, keyboard only.

Every page is checked with axe-core (no serious or critical violation) and at 375 px (no
sideways scrolling); screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import console_support
from tests.browser_support import chromium
from tests.console_support import Console, assert_accessible, at_375, login

console_server = console_support.console_server

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).parent / "artifacts"


def test_admin_logs_in_reads_the_audit_log_and_adds_a_user(console_server: Console) -> None:
    base = console_server.base
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/admin/audit")
        assert "/admin/login" in page.url
        assert_accessible(page)
        at_375(page)
        page.set_viewport_size({"width": 1280, "height": 900})
        login(page, base, *console_server.admin, next="/admin/audit")
        assert page.url.endswith("/admin/audit")
        assert page.get_by_role("heading", name="Audit log").is_visible()
        assert page.get_by_role("cell", name="user-add").count() == 2
        assert_accessible(page)
        page.screenshot(path=str(ARTIFACTS / "console-audit-1280.png"), full_page=True)
        at_375(page)
        page.screenshot(path=str(ARTIFACTS / "console-audit-375.png"), full_page=True)

        page.get_by_role("link", name="Users").click()
        page.get_by_label("Email address").fill("new.editor@example.org")
        page.get_by_label("Initial password").fill("a-long-enough-password")
        page.get_by_role("button", name="Add the account").click()
        assert page.get_by_text("Added the account new.editor@example.org.").is_visible()
        assert page.get_by_role("cell", name="new.editor@example.org", exact=True).is_visible()
        assert_accessible(page)
        at_375(page)
        page.screenshot(path=str(ARTIFACTS / "console-users-375.png"), full_page=True)

        page.get_by_role("button", name="Log out").click()
        assert "/admin/login" in page.url
        assert page.get_by_text("You are logged out.").is_visible()
        page.goto(base + "/admin/users")
        assert "/admin/login" in page.url


def test_keyboard_only_login_and_editor_refused_admin_pages(console_server: Console) -> None:
    base = console_server.base
    email, password = console_server.editor
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 812})
        page.goto(base + "/admin/login?next=/admin/audit")
        # The email field has focus on arrival (Chromium runs autofocus in a task after the
        # load event, so it is waited for); Tab goes to the password, Enter sends.
        page.wait_for_function("document.activeElement && document.activeElement.id === 'email'")
        assert page.evaluate("document.activeElement.id") == "email"
        page.keyboard.type(email)
        page.keyboard.press("Tab")
        page.keyboard.type(password)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        # An editor is logged in, but the audit log is for admins: a 403 page.
        assert page.get_by_role("heading", name="Not for your account").is_visible()
        assert_accessible(page)
        response = page.goto(base + "/admin/users")
        assert response is not None and response.status == 403
        nav = page.get_by_role("navigation", name="Console")  # an editor's nav: no admin pages
        assert nav.get_by_role("link", name="Items").count() == 1
        assert nav.get_by_role("link", name="Users").count() == 0
        assert nav.get_by_role("link", name="Audit log").count() == 0
