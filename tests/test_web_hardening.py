"""The web app against a hostile client: bad conditional headers, HEAD, Host, /metrics, /healthz."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.runtime import Runtime
from publisher.web.feeds import FeedCache, feed_answer
from tests.web_support import Web, seeded_web


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
