"""The editor's item journey in real Chromium: log in, add an item, watch the regions being
suggested as they type (and, without JavaScript, with the button), save, find it in the list;
every item page usable at 375 px and without serious axe-core violations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from publisher.store.items import get_item
from tests import console_support
from tests.console_support import Console, assert_accessible, at_375, login

pytestmark = pytest.mark.browser
console_server = console_support.console_server
console_browser = console_support.console_browser
TITLE = "Floods close the roads of Guatemala"
ARTIFACTS = Path(__file__).parent / "artifacts"


def check_page(page: Page, name: str = "") -> None:
    """axe-core clean, no sideways scrolling at 375 px; screenshots of ``name`` in artifacts/."""
    assert_accessible(page)
    at_375(page)
    if name:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"console-items-{name}-375.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    if name:
        page.screenshot(path=str(ARTIFACTS / f"console-items-{name}-1280.png"), full_page=True)


def test_add_an_item_with_suggested_regions_and_find_it(
    console_server: Console, console_browser: Browser
) -> None:
    base = console_server.base
    page = console_browser.new_page()
    login(page, base, *console_server.editor, next="/admin/items")
    assert page.url.endswith("/admin/items")
    check_page(page)

    page.get_by_role("link", name="Add an item").click()
    check_page(page)
    page.get_by_label("Title").fill(TITLE)
    page.get_by_label("Summary").fill("Rain in Petén cut two highways.")
    # The script asks /admin/items/suggest while the editor types and checks what it finds.
    expect(page.locator("#item-gt")).to_be_checked(timeout=10_000)
    expect(page.locator("#suggestions")).to_contain_text("Guatemala")
    page.get_by_label("Date and time").fill("2026-11-27T08:30")
    page.get_by_label("Time zone").select_option("America/Guatemala")
    check_page(page, "form")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    match = re.search(r"/admin/items/(\d+)/edit$", page.url)
    assert match, page.url
    expect(page.locator(".flashes")).to_contain_text("saved")
    item_id = int(match[1])
    with console_server.runtime.session() as session:
        item = get_item(session, item_id=item_id)
    assert item is not None and item.regions == ["gt"]

    page.goto(f"{base}/admin/items")
    page.get_by_label("Text in title or summary").fill("roads of guatemala")
    with page.expect_navigation():
        page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name=TITLE)).to_be_visible()
    check_page(page, "list")

    page.goto(f"{base}/admin/items/{item_id}/withdraw")
    check_page(page)
    page.goto(f"{base}/admin/items/upload")
    check_page(page)
    page.get_by_label("Items file").set_input_files(
        files=[{"name": "more.csv", "mimeType": "text/csv",
                "buffer": b"title,summary\nHonduras bridge opens,New bridge\n,no title\n"}]
    )  # fmt: skip
    with page.expect_navigation():
        page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("status").filter(has_text="Added 1")).to_be_visible()
    check_page(page, "upload-report")


def test_suggest_regions_works_without_javascript(
    console_server: Console, console_browser: Browser
) -> None:
    context = console_browser.new_context(java_script_enabled=False)
    page = context.new_page()
    login(page, console_server.base, *console_server.editor, next="/admin/items/new")
    page.get_by_label("Title").fill("Drought in Honduras and El Salvador")
    with page.expect_navigation():
        page.get_by_role("button", name="Suggest regions").click()
    expect(page.locator("#item-hn")).to_be_checked()
    expect(page.locator("#item-sv")).to_be_checked()
    expect(page.get_by_label("Title")).to_have_value("Drought in Honduras and El Salvador")
    context.close()
