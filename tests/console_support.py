"""What every console test shares: a live server with users, login, axe-core and 375 px checks.

    from tests import console_support
    from tests.browser_support import chromium
    from tests.console_support import Console, assert_accessible, at_375, login

    console_server = console_support.console_server  # the fixture, without an unused import

``console_server`` runs the whole app under uvicorn on a free port, over the parametrised
store (a SQLite file and a private PostgreSQL database), seeded with the demo items, with an
editor and an admin account and SMTP_URL pointing at a capturing SMTP server. Its clock is
the FixedClockRuntime's (``console.runtime.fixed_now`` moves it); Chromium and the server
come from tests.browser_support. ``assert_accessible`` runs axe-core from node_modules
(``npm ci``) and fails on serious or critical violations (locally it skips when node_modules
is missing; in CI it fails).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from argon2 import PasswordHasher

from publisher.delivery.embedded import free_port
from publisher.pipeline import accounts
from publisher.settings import Settings
from tests.browser_support import chromium, require_chromium, serve
from tests.conftest import FixedClockRuntime
from tests.web_support import Capture, seed, smtp_capture

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
EDITOR = ("editor@example.org", "editor-password-1")
ADMIN = ("admin@example.org", "admin-password-1")


@dataclass(frozen=True)
class Console:
    """A running console: its base URL, runtime (store, clock), accounts and captured mail."""

    base: str
    runtime: FixedClockRuntime
    editor: tuple[str, str]
    admin: tuple[str, str]
    mail: Capture


def add_accounts(rt: FixedClockRuntime) -> None:
    """The editor and the admin of EDITOR and ADMIN."""
    with rt.session() as session:
        for (email, password), role in ((EDITOR, "editor"), (ADMIN, "admin")):
            accounts.add_user(
                session, email=email, role=role, password=password, actor="test", now=rt.now()
            )


# Argon2id with 1 MiB: real hashes, but cheap enough for a test suite on a busy machine
# (the production parameters, 64 MiB and 3 passes, take ~0.5 s a hash under load).
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use CHEAP_HASHER for the rest of the test."""
    monkeypatch.setattr(accounts, "_hasher", lambda: CHEAP_HASHER)


@pytest.fixture
def console_server(
    database_url: str, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Console]:
    """The console on a free port over a seeded store with an editor and an admin."""
    require_chromium()
    cheap_hashes(monkeypatch)
    for smtp_url, capture in smtp_capture():
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        rt = FixedClockRuntime(
            make_settings(database_url=database_url, base_url=base, smtp_url=smtp_url)
        )
        rt.migrate()
        seed(rt)
        add_accounts(rt)
        try:
            with serve(rt, port):
                yield Console(base, rt, EDITOR, ADMIN, capture)
        finally:
            rt.close()


@pytest.fixture
def console_browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def login(page: Page, base: str, email: str, password: str, *, next: str = "") -> None:
    """Log in through the form (like a person); fails if the console did not start a session."""
    url = f"{base}/admin/login" + (f"?next={next}" if next else "")
    page.goto(url)
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    names = {c["name"] for c in page.context.cookies(base + "/admin")}
    assert "publisher_console" in names, f"login as {email} failed at {page.url}"


def assert_accessible(page: Page) -> None:
    """axe-core on the page as it is now; fails listing each serious or critical violation."""
    if not AXE.exists():
        reason = f"axe-core is not installed ({AXE}): run `npm ci`"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))  # evaluated, not a <script>: CSP allows it
    result: dict[str, Any] = page.evaluate(
        "async () => await window.axe.run(document, {resultTypes: ['violations']})"
    )
    bad = [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]
    lines = [
        f"{v['impact']}: {v['id']} ({v['help']}) at "
        + ", ".join(" ".join(n["target"]) for n in v["nodes"][:5])
        for v in bad
    ]
    assert not bad, f"axe-core on {page.url}:\n" + "\n".join(lines)


def at_375(page: Page) -> None:
    """The page at 375 px wide has nothing wider than the screen (no sideways scrolling)."""
    page.set_viewport_size({"width": 375, "height": 812})
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, f"{page.url} is {width} px wide at 375 px"
