"""Security headers on every answer, request size limits (413), generic 500s without traces."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from publisher.runtime import Runtime
from publisher.web.security import CSP, DOCS_CSP
from tests.web_support import AUTH, Web, make_web, seed


@pytest.fixture
def web(runtime: Runtime) -> Iterator[Web]:
    seed(runtime)
    for env in make_web(runtime):

        def boom() -> None:
            raise RuntimeError("secret internal detail /etc/passwd")

        env.app.add_api_route("/boom", boom, include_in_schema=False)
        env.app.add_api_route("/api/boom", boom, include_in_schema=False)
        yield env


ANSWERS = (
    ("get", "/", 200),
    ("get", "/regions/caribbean", 200),
    ("get", "/nope", 404),
    ("get", "/feeds/all.rss", 200),
    ("get", "/feeds/none.rss", 404),
    ("get", "/api/items", 401),
    ("post", "/subscribe", 400),
    ("get", "/confirm/x", 400),
    ("get", "/static/site.css", 200),
    ("get", "/boom", 500),
)


def test_security_headers_everywhere(web: Web) -> None:
    for method, path, status in ANSWERS:
        r = web.client.request(method, path)
        assert r.status_code == status, path
        assert r.headers["content-security-policy"] == CSP, path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
        assert "camera=()" in r.headers["permissions-policy"]


def test_csp_is_strict() -> None:
    for directive in (
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self' data:",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ):
        assert directive in CSP
    assert "unsafe" not in CSP and "script-src" not in CSP


def test_304_and_docs_carry_headers(web: Web) -> None:
    etag = web.client.get("/feeds/all.rss").headers["etag"]
    r = web.client.get("/feeds/all.rss", headers={"if-none-match": etag})
    assert r.status_code == 304 and r.headers["x-frame-options"] == "DENY"
    assert web.client.get("/docs").headers["content-security-policy"] == DOCS_CSP


def test_500_is_generic(web: Web) -> None:
    r = web.client.get("/boom")
    assert r.status_code == 500
    assert "Something went wrong" in r.text
    assert "secret" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    r = web.client.get("/api/boom", headers=AUTH)
    assert r.status_code == 500
    assert r.json() == {"detail": "Something went wrong"}


def test_form_bodies_over_64_kb_are_413(web: Web) -> None:
    r = web.client.post(
        "/subscribe", data={"email": "a@example.org", "regions": ["cr"], "website": "x" * 70_000}
    )
    assert r.status_code == 413
    assert "Request too large" in r.text
    r = web.client.post(
        "/unsubscribe/x",
        content=b"a" * 70_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413


def test_chunked_bodies_over_the_limit_are_413(web: Web) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"email=a%40example.org&regions=cr&website="
        for _ in range(100):
            yield b"x" * 1024

    r = web.client.post(
        "/subscribe",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413


def test_api_bodies_over_1_mb_are_413(web: Web) -> None:
    big = {"title": "x", "summary": "y" * 1_100_000}
    r = web.client.post("/api/items", headers=AUTH, json=big)
    assert r.status_code == 413
    assert r.json()["detail"].startswith("request body is larger")
    ok = web.client.post(
        "/api/items", headers=AUTH, json={"title": "Panama news", "summary": "z" * 100_000}
    )
    assert ok.status_code == 422  # under the limit, refused by the summary's own cap (20,000)
