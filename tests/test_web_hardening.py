"""The web app against a hostile client: bad conditional headers, HEAD, Host, /metrics, /healthz."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.runtime import Runtime
from publisher.store.items import list_items
from publisher.web.feeds import FeedCache, feed_answer
from publisher.web.masking import mask
from tests.web_support import AUTH, TOKEN, Web, make_web, seed, seeded_web


@pytest.fixture
def web(runtime: Runtime) -> Iterator[Web]:
    yield from seeded_web(runtime)


BAD_DATES = (
    "Mon, 01 Jan 99999999999 00:00:00 GMT",
    "Mon, 01 Jan 10000 00:00:00 GMT",
    "Mon, 31 Feb 2026 00:00:00 GMT",
    "Mon, 01 Jan 2026 00:00:00 +99999999999",
    "garbage",
    "",
)
BAD_ETAGS = ('"', "W/", ",,,", 'W/"x", garbage "', "*" * 5000, '"\u00ff\u00fe"')


@pytest.mark.parametrize("value", BAD_DATES)
def test_unparseable_if_modified_since_is_ignored(web: Web, value: str) -> None:
    r = web.client.get("/feeds/all.rss", headers={"if-modified-since": value})
    assert r.status_code == 200 and r.content.startswith(b"<?xml")


@pytest.mark.parametrize("value", BAD_ETAGS)
def test_garbage_if_none_match_is_ignored(web: Web, value: str) -> None:
    r = web.client.get("/feeds/all.rss", headers={"if-none-match": value.encode("latin-1")})
    assert r.status_code == 200 and r.content.startswith(b"<?xml")


@settings(max_examples=300, deadline=None)
@given(inm=st.none() | st.binary(max_size=80), ims=st.none() | st.binary(max_size=80))
def test_any_conditional_header_gives_200_or_304(tmp_path_factory, inm, ims) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("feeds", numbered=True)
    (folder / "all.rss").write_bytes(b"<rss/>" * 100)
    entry = FeedCache(folder, known_slugs=set()).get("all.rss")
    assert entry is not None
    headers = [(n, v) for n, v in ((b"if-none-match", inm), (b"if-modified-since", ims)) if v]
    status, _, body = feed_answer(entry, headers, head=False)
    assert status in (200, 304) and (body == b"" if status == 304 else body == entry.body)


# -- 16: HEAD answers like GET without a body, on every GET route ------------------------------
def _get_paths(web: Web) -> list[str]:
    """One concrete path per GET route of the app (path parameters filled with real values)."""
    with web.runtime.session() as session:
        item_id = list_items(session, limit=1)[0].id
    token = web.state.tokens.make("unsubscribe", "0" * 32)
    values = {
        "slug": "caribbean",
        "item_id": str(item_id),
        "token": token,
        "week": "2026-W48",
        "path": "site.css",
        "email": "nobody@example.org",
        "subscriber_id": "1",  # console pages: without a session they redirect, GET and HEAD alike
        "source_id": "1",
    }
    paths = []

    def walk(routes: list[object]) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)  # FastAPI's include_router
            if included is not None:
                walk(included.routes)
                continue
            methods = getattr(route, "methods", None) or set()
            path = getattr(route, "path", "")
            if path == "/static":
                paths.append("/static/site.css")
            elif "GET" in methods:
                paths.append(re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values[m.group(1)], path))

    walk(web.app.routes)
    return paths


def test_head_answers_like_get_on_every_get_route(web: Web) -> None:
    paths = _get_paths(web)
    assert {"/", "/regions/caribbean", "/healthz", "/docs"} <= set(paths)
    for path in [*paths, "/api/items", "/feeds/all.rss", "/nope"]:
        get = web.client.get(path, headers=AUTH)
        head = web.client.head(path, headers=AUTH)
        assert head.status_code == get.status_code, path
        assert head.content == b"", path
        assert head.headers.get("content-type") == get.headers.get("content-type"), path
        assert head.headers.get("content-length") == get.headers.get("content-length"), path


# -- 15: Host never reaches a link; ALLOWED_HOSTS; /metrics; /docs -----------------------------
def test_a_forged_host_never_reaches_a_redirect(web: Web) -> None:
    for host in ("evil.example", "evil.example:8000", "[::1]"):
        r = web.client.get("/regions/caribbean/", headers={"host": host})
        assert r.status_code in (301, 307, 308)
        assert r.headers["location"].startswith("https://news.example.org/"), r.headers
        r = web.client.get("/regions/Caribbean", headers={"host": host})
        assert "evil" not in r.headers.get("location", "")


@pytest.fixture
def strict(runtime: Runtime) -> Iterator[Web]:
    seed(runtime)
    yield from make_web(runtime, allowed_hosts="www.example.org, other.example")


def test_allowed_hosts_refuses_other_hosts(strict: Web) -> None:
    for host in ("news.example.org", "www.example.org", "OTHER.example:8080"):
        assert strict.client.get("/", headers={"host": host}).status_code == 200, host
    for path in ("/", "/feeds/all.rss", "/regions/caribbean/", "/docs"):
        r = strict.client.get(path, headers={"host": "evil.example"})
        assert r.status_code == 400, path
        assert "evil" not in r.text and r.headers["x-frame-options"] == "DENY"
    assert strict.client.get("/healthz", headers={"host": "10.0.0.5:8000"}).status_code == 200


def _metrics(web: Web, client: str, **headers: str) -> int:
    with TestClient(web.app, client=(client, 40000)) as other:
        return other.get("/metrics", headers=headers).status_code


def test_metrics_answer_private_addresses_or_a_token(runtime: Runtime) -> None:
    for web in make_web(runtime, metrics_token="scrape-me"):
        for address in ("127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "::1", "fd00::1"):
            assert _metrics(web, address) == 200, address
        for address in ("203.0.113.9", "8.8.8.8", "2001:db8::1", "testclient", ""):
            assert _metrics(web, address) == 403, address
        assert _metrics(web, "203.0.113.9", authorization="Bearer scrape-me") == 200
        assert _metrics(web, "203.0.113.9", authorization=f"Bearer {TOKEN}") == 200  # ADMIN_TOKEN
        assert _metrics(web, "203.0.113.9", authorization="Bearer wrong") == 403
        assert _metrics(web, "203.0.113.9", authorization="scrape-me") == 403


def test_docs_are_public_unless_hidden(runtime: Runtime) -> None:
    for web in make_web(runtime):
        assert web.client.get("/docs").status_code == 200
        assert web.client.get("/openapi.json").status_code == 200
    for web in make_web(runtime, docs_public=False):
        assert web.client.get("/docs").status_code == 404
        assert web.client.get("/openapi.json").status_code == 404
        assert web.client.get("/api/items", headers=AUTH).status_code == 200  # the API stays


# -- 13: /healthz says ok or failing per part; the reasons go to the log, masked ---------------
MALFORMED = "smtp://mailer:s3cr#t-Pa55w0rd@smtp.example.org:587"


@pytest.mark.parametrize(
    "smtp_url",
    [MALFORMED, "smtp://mailer:s3cr%23t-Pa55w0rd@127.0.0.1:1?starttls=never", "nonsense://x"],
)
def test_healthz_has_no_details_and_the_log_no_password(
    runtime: Runtime, smtp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    runtime.settings = runtime.settings.model_copy(update={"smtp_url": smtp_url})
    for web in make_web(runtime, smtp_url=smtp_url):
        with caplog.at_level(logging.WARNING, logger="publisher.web.ops"):
            r = web.client.get("/healthz")
    assert r.status_code == 503
    assert r.json() == {"status": "failing", "database": "ok", "smtp": "failing"}
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "smtp failing" in logged
    for secret in ("s3cr", "Pa55w0rd", "mailer"):
        assert secret not in r.text and secret not in logged, (secret, logged)
    if smtp_url != "nonsense://x":
        assert "***" in logged


def test_masking_keeps_the_rest_of_the_line() -> None:
    line = "smtp://mailer@smtp.example.org:25 unreachable: ConnectionRefusedError"
    masked = mask(line, "smtp://mailer:pw-secret@smtp.example.org:25")
    assert masked == "smtp://***@smtp.example.org:25 unreachable: ConnectionRefusedError"
    assert mask("port 'pw'", "smtp://u:pw#x@h") == "port 'pw'"  # too short to tell: kept
    assert mask("no secret here", "") == "no secret here"
