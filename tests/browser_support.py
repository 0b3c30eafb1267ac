"""What every Chromium test shares: the system Chromium, headless, and the app under uvicorn.

    from tests.browser_support import chromium, require_chromium, serve

``require_chromium()`` skips the test when /usr/bin/chromium is missing (in CI, where
.ci/run installs it, it fails instead); ``chromium()`` opens it for the block; ``serve(rt,
port)`` runs the whole app for a runtime on 127.0.0.1 until the block ends.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn

from publisher.runtime import Runtime
from publisher.web.app import create_app
from tests.service_support import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium() -> None:
    """Skip the test without the system Chromium (fail in CI, which installs it)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs it")
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")


@contextmanager
def chromium() -> Iterator[Browser]:
    """The system Chromium, headless, closed when the block ends."""
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def serve(rt: Runtime, port: int) -> Iterator[None]:
    """The app for ``rt`` under uvicorn on 127.0.0.1:``port`` until the block ends."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(rt.settings, runtime=rt, deliver_outbox=True),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), 20, "uvicorn to start", 0.05)
    if not server.started:
        raise RuntimeError("uvicorn did not start")
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=20)
