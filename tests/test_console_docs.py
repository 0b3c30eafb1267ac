"""/docs and /redoc work offline: every asset they load comes from the app itself.

Checked twice: in the HTML (no src/href to another host) and in Chromium with every request
to another host refused, where Swagger UI must still render the API's operations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from publisher.delivery.embedded import free_port
from publisher.runtime import Runtime
from tests.browser_support import chromium, require_chromium, serve
from tests.conftest import FixedClockRuntime
from tests.web_support import Web, make_web

_REF = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url\(\s*['"]?([^'")]+)""", re.I)


@pytest.fixture
def web(runtime: Runtime) -> Iterator[Web]:
    yield from make_web(runtime)


def references(html: str) -> list[str]:
    return [a or b for a, b in _REF.findall(html)]


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_reference_no_other_host(web: Web, path: str) -> None:
    page = web.client.get(path)
    assert page.status_code == 200
    refs = references(page.text)
    assert refs and all(r.startswith("/") and not r.startswith("//") for r in refs), refs
    assert "cdn." not in page.text and "fonts.googleapis" not in page.text
    for ref in refs:
        if ref.startswith("/static/"):
            asset = web.client.get(ref)
            assert asset.status_code == 200 and len(asset.content) > 1000, ref


def test_docs_can_be_hidden(runtime: Runtime) -> None:
    for web in make_web(runtime, docs_public=False):
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert web.client.get(path).status_code == 404, path


@pytest.mark.browser
def test_swagger_ui_renders_with_no_other_host_reachable(
    make_settings: object, tmp_path: Path
) -> None:
    require_chromium()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rt = FixedClockRuntime(make_settings(base_url=base))  # type: ignore[operator]
    rt.migrate()
    refused: list[str] = []
    try:
        with serve(rt, port), chromium() as browser:
            page = browser.new_page()

            def only_local(route: object) -> None:
                url = route.request.url  # type: ignore[attr-defined]
                if url.startswith(base) or url.startswith(("data:", "blob:")):
                    route.continue_()  # type: ignore[attr-defined]
                else:
                    refused.append(url)
                    route.abort()  # type: ignore[attr-defined]

            page.route("**/*", only_local)
            page.goto(base + "/docs")
            page.get_by_text("/api/items", exact=False).first.wait_for(timeout=30_000)
            page.goto(base + "/redoc")
            page.get_by_text("/api/items", exact=False).first.wait_for(timeout=30_000)
    finally:
        rt.close()
    assert refused == []
