"""The subscription lifecycle in real Chromium against the app served by uvicorn.

Subscribe on the home page; the confirmation email reaches a real SMTP server; its link
activates the subscriber; the preferences page changes regions; unsubscribe with one click.
Screenshots at 375 px and 1280 px are kept in tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from publisher.delivery.embedded import free_port
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.store.items import list_items
from publisher.store.subscribers import get_by_email, regions_of
from publisher.tokens import Tokens
from tests.browser_support import chromium, require_chromium, serve
from tests.conftest import FixedClockRuntime
from tests.service_support import wait_until
from tests.web_support import Capture, seed, smtp_capture

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).parent / "artifacts"
WIDTHS = (375, 1280)
EMAIL = "lucia@example.org"


@pytest.fixture
def smtp() -> Iterator[tuple[str, Capture]]:
    yield from smtp_capture()


@pytest.fixture
def site(
    make_settings: Callable[..., Settings], smtp: tuple[str, Capture]
) -> Iterator[tuple[str, Runtime, Capture]]:
    """The app on a free 127.0.0.1 port, with SMTP_URL pointing at a capturing server."""
    require_chromium()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rt = FixedClockRuntime(make_settings(base_url=base, smtp_url=smtp[0]))
    rt.migrate()
    seed(rt)
    try:
        with serve(rt, port):
            yield base, rt, smtp[1]
    finally:
        rt.close()


def status_and_regions(rt: Runtime) -> tuple[str, list[str]]:
    with rt.session() as session:
        sub = get_by_email(session, email=EMAIL)
        assert sub is not None and sub.id is not None
        return sub.status, regions_of(session, subscriber_id=sub.id)


def test_subscribe_confirm_change_and_leave_in_chromium(
    site: tuple[str, Runtime, Capture],
) -> None:
    base, rt, capture = site
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as browser:
        pages = {w: browser.new_page(viewport={"width": w, "height": 900}) for w in WIDTHS}

        def shoot(name: str, url: str | None = None) -> None:
            for width, page in pages.items():
                if url is not None:
                    page.goto(url)
                page.screenshot(path=str(ARTIFACTS / f"web-{name}-{width}.png"), full_page=True)

        shoot("home", base + "/")
        shoot("region", base + "/regions/central-america")
        page = pages[375]
        page.goto(base + "/")
        assert page.locator('link[rel="alternate"][type="application/rss+xml"]').count() >= 1
        page.get_by_label("Email address").fill(EMAIL)
        page.get_by_text("Regions in Americas", exact=True).click()  # open the groups
        page.get_by_text("Regions in Latin America and the Caribbean", exact=True).click()
        page.get_by_label("Central America", exact=True).check()
        page.get_by_role("button", name="Subscribe").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", name="Check your inbox").is_visible()
        shoot("check-inbox")
        assert status_and_regions(rt) == ("pending", [])

        wait_until(lambda: len(capture.messages) >= 1, 20, "the confirmation email")
        _, rcpt, raw = capture.messages[0]
        assert rcpt == [EMAIL]
        text = message_from_bytes(raw, policy=policy.default).get_body(("plain",))
        assert text is not None
        link = re.search(r"https?://\S+/confirm/\S+", text.get_content())
        assert link is not None and link.group(0).startswith(base)
        shoot("confirm", link.group(0))  # a page with a button: opening it confirms nothing
        assert page.get_by_role("heading", name="Confirm your subscription").is_visible()
        assert status_and_regions(rt) == ("pending", [])
        for each in pages.values():
            each.get_by_role("button", name="Yes, subscribe me").click()
            each.wait_for_load_state()
            assert each.get_by_role("heading", name="You are subscribed").is_visible()
        shoot("confirmed")
        assert status_and_regions(rt) == ("active", ["americas", "central-america"])

        page.get_by_role("link", name="Change your regions").click()
        page.wait_for_load_state()
        prefs_url = page.url
        shoot("preferences", prefs_url)
        page.get_by_label("Americas", exact=True).uncheck()
        page.get_by_label("Caribbean", exact=True).check()
        page.get_by_role("button", name="Save my choices").click()
        page.wait_for_load_state()
        assert page.get_by_text("Your choices are saved").is_visible(), page.content()[:3000]
        assert status_and_regions(rt) == ("active", ["caribbean", "central-america"])

        with rt.session() as session:
            sub = get_by_email(session, email=EMAIL)
            assert sub is not None
            token = site_tokens(rt).make("unsubscribe", sub.key)
        unsubscribe_url = f"{base}/unsubscribe/{token}"
        shoot("unsubscribe", unsubscribe_url)
        assert status_and_regions(rt)[0] == "active"  # showing the page changed nothing
        # RFC 8058: what a mail provider sends, with no cookies and no CSRF token
        answer = page.request.post(
            unsubscribe_url, form={"List-Unsubscribe": "One-Click"}, max_redirects=0
        )
        assert answer.status == 200
        assert status_and_regions(rt)[0] == "unsubscribed"
        page.goto(unsubscribe_url)
        assert page.get_by_role("heading", name="You have unsubscribed").is_visible()
        shoot("unsubscribed")
    for width in WIDTHS:
        assert (ARTIFACTS / f"web-home-{width}.png").stat().st_size > 10_000


def site_tokens(rt: Runtime) -> Tokens:
    return Tokens(rt.settings.secret_keys())


def test_spanish_home_page_through_the_visible_switch(
    site: tuple[str, Runtime, Capture],
) -> None:
    base, _rt, _capture = site
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as browser:
        for width in WIDTHS:
            context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-US")
            page = context.new_page()
            page.goto(base + "/")
            assert page.evaluate("document.documentElement.lang") == "en"
            switch = page.get_by_role("navigation", name="Language")
            assert switch.is_visible()
            switch.get_by_role("link", name="Español").click()
            page.wait_for_load_state()
            assert page.evaluate("document.documentElement.lang") == "es"
            assert page.get_by_role("heading", name="Noticias por región").is_visible()
            assert page.get_by_role("button", name="Suscribirse").is_visible()
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
                f"horizontal scroll at {width}px"
            )
            page.screenshot(path=str(ARTIFACTS / f"web-home-es-{width}.png"), full_page=True)
            page.goto(base + "/regions/central-america")  # remembered in the cookie
            assert page.get_by_role("heading", name="Centroamérica", exact=True).is_visible()
            context.close()
    for width in WIDTHS:
        assert (ARTIFACTS / f"web-home-es-{width}.png").stat().st_size > 10_000


@pytest.fixture
def americas_site(
    make_settings: Callable[..., Settings], smtp: tuple[str, Capture]
) -> Iterator[tuple[str, Runtime, Capture]]:
    """COVERAGE=americas over the demo items, which say nothing about Honduras."""
    require_chromium()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rt = FixedClockRuntime(make_settings(base_url=base, smtp_url=smtp[0], coverage="americas"))
    rt.migrate()
    seed(rt)
    try:
        with serve(rt, port):
            yield base, rt, smtp[1]
    finally:
        rt.close()


def test_a_reader_follows_honduras_with_no_honduras_items_by_keyboard_at_375px(
    americas_site: tuple[str, Runtime, Capture],
) -> None:
    base, rt, capture = americas_site
    with rt.session() as session:
        assert list_items(session, regions={"hn"}, limit=None) == []
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 800})
        page.goto(base + "/")
        honduras = page.get_by_label("Honduras", exact=True)
        assert not honduras.is_visible()  # inside closed groups
        page.get_by_label("Email address").focus()
        page.keyboard.type(EMAIL)
        # the coverage region's own group starts open; the ones inside it start closed
        for group in ("Latin America and the Caribbean", "Central America"):
            summary = page.get_by_text(f"Regions in {group}", exact=True)
            summary.focus()
            page.keyboard.press("Enter")
        assert honduras.is_visible()
        honduras.focus()
        page.keyboard.press("Space")
        assert honduras.is_checked()
        americas = page.get_by_label("Americas", exact=True)
        americas.focus()
        page.keyboard.press("Space")  # the default region, unchecked: only Honduras
        assert not americas.is_checked()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the page scrolls sideways at 375 px ({width} px)"
        page.screenshot(path=str(ARTIFACTS / "web-follow-honduras-375.png"), full_page=True)
        page.get_by_role("button", name="Subscribe").focus()
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.get_by_role("heading", name="Check your inbox").is_visible()
        wait_until(lambda: len(capture.messages) >= 1, 20, "the confirmation email")
        text = message_from_bytes(capture.messages[0][2], policy=policy.default)
        body = text.get_body(("plain",))
        assert body is not None
        link = re.search(r"https?://\S+/confirm/\S+", body.get_content())
        assert link is not None
        page.goto(link.group(0))  # a page with a button: opening it confirms nothing
        with page.expect_navigation():
            page.get_by_role("button", name="Yes, subscribe me").click()
        assert page.get_by_role("heading", name="You are subscribed").is_visible()
        assert status_and_regions(rt) == ("active", ["hn"])
        page.get_by_role("link", name="Change your regions").click()
        page.wait_for_load_state()
        assert page.get_by_label("Honduras", exact=True).is_checked()
        assert page.get_by_label("El Salvador", exact=True).is_visible()  # its group is open
