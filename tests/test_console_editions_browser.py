"""The editions, sources and bounces pages in real Chromium, as an editor and an admin would.

An editor previews the next edition and finds an item in it, writes the week's note and sees
it in the preview, test-sends and finds the message at the SMTP server, holds and approves the
week, sends early and watches the progress change as the queue drains. An admin adds, pauses
and removes a source and reads the bounces page. Every page is checked with axe-core and at
375 px; screenshots of a preview at 1280 and 375 px go to /work/wt/_briefs/shots/ when that
folder exists (the session's note), else to tests/artifacts/.
"""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from playwright.sync_api import expect

from publisher.pipeline.send import deliver, digest_messenger
from publisher.pipeline.subscribers import add_subscriber
from publisher.store.items import all_items
from tests import console_support
from tests.browser_support import chromium
from tests.console_support import Console, assert_accessible, at_375, login
from tests.service_support import wait_until

console_server = console_support.console_server

pytestmark = pytest.mark.browser
SHOTS = Path("/work/wt/_briefs/shots")
ARTIFACTS = SHOTS if SHOTS.is_dir() else Path(__file__).parent / "artifacts"


def _an_item_region(console: Console) -> tuple[str, str]:
    """A country with a seeded item, and that item's title."""
    rt = console.runtime
    with rt.session() as session:
        for item in all_items(session):
            for slug in item.regions:
                if rt.tree.get(slug).level == "country":
                    return slug, item.title
    raise AssertionError("the seed has no item of a country")


def test_editor_previews_notes_tests_holds_sends_early_and_watches(console_server: Console):
    console = console_server
    base, rt = console.base, console.runtime
    slug, title = _an_item_region(console)
    with rt.session() as session:
        add_subscriber(session, email="reader@example.org", regions=[slug], confirmed=True,
                       locale="en", tree=rt.tree, now=rt.now())  # fmt: skip
    rt.fixed_now += timedelta(minutes=1)  # windows are half-open: the seed stamped at now is past
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        login(page, base, *console.editor, next="/admin/editions")
        assert page.url.endswith("/admin/editions")
        assert_accessible(page)
        at_375(page)
        page.set_viewport_size({"width": 1280, "height": 900})

        page.goto(f"{base}/admin/editions?regions={slug}")
        page.get_by_label("Language of the edition").select_option("en")
        page.get_by_role("button", name="Show the edition").click()
        page.wait_for_url(lambda url: f"regions={slug}" in url and "language=en" in url)
        desktop = page.frame_locator("iframe.desktop")
        expect(desktop.get_by_role("heading", name=title)).to_be_visible()
        mobile = page.frame_locator("iframe.mobile")
        expect(mobile.get_by_role("heading", name=title)).to_be_visible()

        note = "Roads are closed near the border this week."
        page.get_by_label("Note for the whole edition").fill(note)
        page.get_by_role("button", name="Save note").first.click()
        expect(page.get_by_text("Note saved.")).to_be_visible()
        expect(desktop.get_by_text(note)).to_be_visible()
        assert_accessible(page)
        page.screenshot(path=str(ARTIFACTS / "console-edition-page-1280.png"), full_page=True)
        # The frames as an editor sees them, each opened on its own (page shots may miss frames).
        frame_url = page.locator("iframe.desktop").get_attribute("src")
        for width in (1280, 375):
            alone = page.context.new_page()
            alone.set_viewport_size({"width": width, "height": 900})
            alone.goto(base + str(frame_url).replace("&amp;", "&"))
            expect(alone.get_by_text(note)).to_be_visible()
            alone.screenshot(path=str(ARTIFACTS / f"console-edition-preview-{width}.png"),
                             full_page=True)  # fmt: skip
            alone.close()
        at_375(page)
        page.set_viewport_size({"width": 1280, "height": 900})

        page.get_by_role("button", name=f"Send a test copy to {console.editor[0]}").click()
        expect(
            page.get_by_text(f"A test copy is on its way to {console.editor[0]}.")
        ).to_be_visible()
        wait_until(lambda: bool(console.mail.messages), 20, "the test copy at the SMTP server")
        _, rcpt, raw = console.mail.messages[0]
        assert rcpt == [console.editor[0]]
        sent = message_from_bytes(raw, policy=policy.default)
        body = sent.get_body(("plain",))
        assert body is not None
        text = " ".join(body.get_content().split())  # the text part wraps long lines
        assert note in text and " ".join(title.split()) in text

        page.get_by_role("button", name="Hold the send of").click()
        expect(page.locator("#hold-state").get_by_text("is held")).to_be_visible()
        page.get_by_role("button", name="Approve the send of").click()
        expect(page.get_by_text("goes out at its scheduled time").first).to_be_visible()

        page.get_by_role("link", name="Send this week early…").click()
        assert_accessible(page)
        at_375(page)
        page.set_viewport_size({"width": 1280, "height": 900})
        page.get_by_role("button", name="now").click()
        page.wait_for_url("**/admin/editions/progress")
        pending = page.locator('[data-state="pending"]').first
        wait_until(lambda: pending.text_content() == "1", 20, "the queued edition")
        assert_accessible(page)
        at_375(page)
        deliver(rt, digest_messenger(rt), digest_ids=None)  # a worker drains the queue
        sent_count = page.locator('[data-state="sent"]').first
        wait_until(lambda: sent_count.text_content() == "1", 20, "the script to show it sent")
        assert pending.text_content() == "0"


def test_admin_adds_pauses_and_removes_a_source_and_reads_bounces(console_server: Console):
    base = console_server.base
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, base, *console_server.admin, next="/admin/sources")
        assert_accessible(page)
        page.get_by_label("Feed address (RSS or Atom)").fill("https://example.org/feed.xml")
        page.get_by_label("Poll every").fill("2h")
        page.get_by_role("button", name="Add source").click()
        expect(page.get_by_text("added; it is polled within a minute")).to_be_visible()
        expect(page.get_by_role("cell", name="https://example.org/feed.xml")).to_be_visible()
        page.get_by_role("button", name="Pause").click()
        expect(page.get_by_text("paused", exact=True).first).to_be_visible()
        assert_accessible(page)
        at_375(page)
        page.set_viewport_size({"width": 1280, "height": 900})
        page.get_by_role("link", name="Remove…").click()
        assert_accessible(page)
        page.get_by_role("button", name="Remove source").click()
        expect(page.get_by_text("No sources yet.")).to_be_visible()
        page.goto(f"{base}/admin/bounces")
        expect(page.get_by_role("heading", name="Suppressed addresses")).to_be_visible()
        assert_accessible(page)
        at_375(page)
