"""Feeds over HTTP: media types, strong ETag and Last-Modified, 304s, gzip, 404s, rebuilds."""

from __future__ import annotations

import gzip
import os
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate

import pytest

from publisher.runtime import Runtime
from publisher.web.feeds import FeedCache, FeedRebuilder, _accepts_gzip
from tests.web_support import AUTH, Web, seeded_web


@pytest.fixture
def web(runtime: Runtime) -> Iterator[Web]:
    """The app over the seeded demo store, on SQLite and PostgreSQL."""
    yield from seeded_web(runtime)


MEDIA_TYPES = (
    ("central-america.rss", "application/rss+xml"),
    ("central-america.atom", "application/atom+xml"),
    ("central-america.json", "application/feed+json"),
    ("all.rss", "application/rss+xml"),
    ("index.opml", "text/x-opml"),
)


def test_feed_files_with_media_types_and_validators(web: Web) -> None:
    for name, media_type in MEDIA_TYPES:
        r = web.client.get(f"/feeds/{name}", headers={"accept-encoding": "identity"})
        assert r.status_code == 200
        assert r.headers["content-type"].split(";")[0] == media_type
        assert r.content == (web.runtime.settings.feeds_dir / name).read_bytes()
        etag = r.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')  # strong, not W/
        assert r.headers["last-modified"].endswith(" GMT")
        assert "content-encoding" not in r.headers
        assert r.headers["vary"] == "Accept-Encoding"
        assert r.headers["x-content-type-options"] == "nosniff"


def test_if_none_match_gives_304_without_body(web: Web) -> None:
    first = web.client.get("/feeds/central-america.rss", headers={"accept-encoding": "identity"})
    etag = first.headers["etag"]
    r = web.client.get("/feeds/central-america.rss", headers={"if-none-match": etag})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] in (etag, etag[:-1] + '-gz"')
    for header in (f"W/{etag}", f'"nope", {etag}', "*"):
        assert (
            web.client.get(
                "/feeds/central-america.rss", headers={"if-none-match": header}
            ).status_code
            == 304
        )
    assert (
        web.client.get(
            "/feeds/central-america.rss", headers={"if-none-match": '"other"'}
        ).status_code
        == 200
    )


def test_if_modified_since_by_date(web: Web) -> None:
    first = web.client.get("/feeds/central-america.atom")
    modified = first.headers["last-modified"]
    assert (
        web.client.get(
            "/feeds/central-america.atom", headers={"if-modified-since": modified}
        ).status_code
        == 304
    )
    mtime = os.stat(web.runtime.settings.feeds_dir / "central-america.atom").st_mtime
    older = formatdate(mtime - 3600, usegmt=True)
    r = web.client.get("/feeds/central-america.atom", headers={"if-modified-since": older})
    assert r.status_code == 200 and r.content
    assert (
        web.client.get(
            "/feeds/central-america.atom", headers={"if-modified-since": "garbage"}
        ).status_code
        == 200
    )
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.1.3)
    r = web.client.get(
        "/feeds/central-america.atom",
        headers={"if-modified-since": modified, "if-none-match": '"x"'},
    )
    assert r.status_code == 200


def test_gzip_when_accepted(web: Web) -> None:
    plain = web.client.get("/feeds/all.json", headers={"accept-encoding": "identity"})
    packed = web.client.get("/feeds/all.json", headers={"accept-encoding": "gzip, br"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == plain.content  # httpx decodes it
    assert packed.headers["etag"] != plain.headers["etag"]
    assert int(packed.headers["content-length"]) < len(plain.content)
    again = web.client.get(
        "/feeds/all.json",
        headers={"accept-encoding": "gzip", "if-none-match": packed.headers["etag"]},
    )
    assert again.status_code == 304
    refused = web.client.get("/feeds/all.json", headers={"accept-encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


def test_gzip_body_is_compressed_once_per_version(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "all.rss").write_bytes(b"<rss>" + b"x" * 5000 + b"</rss>")
    cache = FeedCache(tmp_path, known_slugs=set())
    entry = cache.get("all.rss")
    assert entry is not None
    body = entry.gzip_body()
    assert entry.gzip_body() is body
    assert gzip.decompress(body) == entry.body
    assert cache.get("all.rss") is entry  # unchanged file: same cached version


@pytest.mark.parametrize("value", ["gzip", "deflate, gzip;q=0.5", "*", "GZIP", "br, *;q=0.1"])
def test_accepts_gzip(value: str) -> None:
    assert _accepts_gzip(value)


@pytest.mark.parametrize("value", ["", "identity", "br", "gzip;q=0", "gzip;q=0.0", "gzip;q=x"])
def test_refuses_gzip(value: str) -> None:
    assert not _accepts_gzip(value)


UNKNOWN_FEEDS = (
    "atlantis.rss",
    "central-america.xml",
    "..%2Fpublisher.db",
    ".central-america.rss",
    "central-america.rss.gz",
    "CENTRAL-AMERICA.rss",
    "western-africa.rss",
    "index.rss",
)


def test_unknown_feeds_are_404(web: Web) -> None:
    for name in UNKNOWN_FEEDS:
        r = web.client.get(f"/feeds/{name}")
        assert r.status_code == 404, name
        assert r.headers["content-security-policy"]


def test_head_has_length_and_no_body(web: Web) -> None:
    r = web.client.head("/feeds/central-america.rss", headers={"accept-encoding": "identity"})
    assert r.status_code == 200
    assert r.content == b""
    size = (web.runtime.settings.feeds_dir / "central-america.rss").stat().st_size
    assert r.headers["content-length"] == str(size)


def test_feeds_are_rebuilt_after_api_writes(web: Web) -> None:
    before = web.client.get("/feeds/central-america.rss")
    r = web.client.post(
        "/api/items",
        headers=AUTH,
        json={
            "title": "Honduras opens a new migrant resource centre",
            "summary": "The centre in San Pedro Sula helps returnees.",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["regions"] == ["hn"]
    after = web.client.get("/feeds/central-america.rss")
    assert after.headers["etag"] != before.headers["etag"]
    assert b"Honduras opens a new migrant resource centre" in after.content
    stale = web.client.get(
        "/feeds/central-america.rss", headers={"if-none-match": before.headers["etag"]}
    )
    assert stale.status_code == 200
    item_id = r.json()["id"]
    assert web.client.delete(f"/api/items/{item_id}", headers=AUTH).status_code == 204
    gone = web.client.get("/feeds/central-america.rss")
    assert b"Honduras opens a new migrant resource centre" not in gone.content


def test_rebuilds_run_one_at_a_time_and_coalesce() -> None:
    started, release = threading.Event(), threading.Event()
    builds: list[int] = []

    def build() -> None:
        builds.append(len(builds))
        if len(builds) == 1:
            started.set()
            release.wait(5)

    rebuild = FeedRebuilder(build)
    first = threading.Thread(target=rebuild)
    first.start()
    started.wait(5)
    waiting = [threading.Thread(target=rebuild) for _ in range(5)]
    for t in waiting:
        t.start()
    time.sleep(0.2)
    release.set()
    for t in [first, *waiting]:
        t.join(5)
    assert builds == [0, 1]  # the running build, then one more covering every later request
