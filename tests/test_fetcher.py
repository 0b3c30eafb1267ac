"""The guarded fetcher against real HTTP servers on loopback: address checks, caps, redirects."""

from __future__ import annotations

import gzip
import ipaddress
import re
import threading

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.errors import FeedFetchError
from publisher.intake.fetcher import (
    Fetched,
    FetchError,
    fetch,
    fetch_once,
    make_client,
    max_age,
    refused_reason,
)
from publisher.intake.remote import read_feed
from tests.feed_server import Answer, feed_server, rss

FEED = rss(("a", "Floods in Peru", "Rain."))


def get(url: str, **kw: object) -> Fetched:
    allow = bool(kw.pop("allow_private", True))
    exempt = kw.pop("exempt", frozenset())

    async def run() -> Fetched:
        async with make_client(allow_private=allow, exempt=exempt) as client:  # type: ignore[arg-type]
            return await fetch(client, url, **kw)  # type: ignore[arg-type]

    return anyio.run(run)


def test_loopback_is_refused_without_the_setting() -> None:
    with feed_server() as server:
        server.routes["/f"] = Answer(body=FEED)
        with pytest.raises(FetchError, match=r"127\.0\.0\.1 is a loopback address"):
            fetch_once(server.url("/f"), allow_private=False)
        assert server.requests == []  # refused before connecting
        assert fetch_once(server.url("/f"), allow_private=True) == FEED


def test_a_name_is_checked_after_its_lookup() -> None:
    with feed_server() as server:
        server.routes["/f"] = Answer(body=FEED)
        url = f"http://localhost:{server.port}/f"
        with pytest.raises(FetchError, match=r"localhost \(.*\) is a loopback address"):
            fetch_once(url, allow_private=False)
        assert server.requests == []


def test_a_redirect_to_loopback_is_refused() -> None:
    """The first server is let through; its redirect to another loopback server is not."""
    with feed_server() as outside, feed_server() as inside:
        inside.routes["/secret"] = Answer(body=FEED)
        outside.routes["/f"] = Answer(302, headers={"Location": inside.url("/secret")})
        exempt = frozenset({("127.0.0.1", outside.port)})
        with pytest.raises(FetchError, match=r"127\.0\.0\.1 is a loopback address"):
            get(outside.url("/f"), allow_private=False, exempt=exempt)
        assert len(outside.requests) == 1
        assert inside.requests == []
        assert get(outside.url("/f"), allow_private=True).body == FEED


def test_items_import_url_is_guarded_too() -> None:
    with feed_server() as server:
        server.routes["/f"] = Answer(body=FEED)
        with pytest.raises(FeedFetchError, match="loopback"):
            list(read_feed(server.url("/f")))
        titles = [r.title for r in read_feed(server.url("/f"), allow_private=True)]
    assert titles == ["Floods in Peru"]


def test_at_most_five_redirects() -> None:
    with feed_server() as server:
        for n in range(7):
            server.routes[f"/r{n}"] = Answer(301, headers={"Location": f"/r{n + 1}"})
        server.routes["/r5"] = Answer(body=FEED)
        done = get(server.url("/r0"))
        assert done.body == FEED
        assert done.moved_to == server.url("/r5")  # every hop permanent: the new address
        server.routes["/r5"] = Answer(301, headers={"Location": "/r6"})
        server.routes["/r6"] = Answer(body=FEED)
        with pytest.raises(FetchError, match="more than 5 redirects"):
            get(server.url("/r0"))


def test_a_temporary_hop_keeps_the_address() -> None:
    with feed_server() as server:
        server.routes["/a"] = Answer(301, headers={"Location": "/b"})
        server.routes["/b"] = Answer(302, headers={"Location": "/c"})
        server.routes["/c"] = Answer(body=FEED)
        assert get(server.url("/a")).moved_to == server.url("/b")


def test_size_cap_counts_decoded_bytes() -> None:
    bomb = b"<rss>" + b" " * 2_000_000
    with feed_server() as server:
        server.routes["/bomb"] = Answer(body=bomb, gzip=True)
        assert len(gzip.compress(bomb)) < 10_000
        with pytest.raises(FetchError, match="larger than 1,000,000 bytes"):
            get(server.url("/bomb"), max_bytes=1_000_000)
        server.routes["/big"] = Answer(body=bomb)  # declared length alone is enough
        with pytest.raises(FetchError, match="larger than"):
            get(server.url("/big"), max_bytes=1_000_000)


def test_gzip_is_decoded() -> None:
    with feed_server() as server:
        server.routes["/f"] = Answer(body=FEED, gzip=True)
        assert get(server.url("/f")).body == FEED
        assert "gzip" in server.seen("/f")[0]["accept-encoding"]


def test_total_timeout_ends_a_stalled_answer() -> None:
    release = threading.Event()
    with feed_server() as server:
        server.routes["/slow"] = Answer(body=FEED, hold=release)
        try:
            with pytest.raises(FetchError, match=r"no complete answer within 0\.2 s"):
                get(server.url("/slow"), total_timeout=0.2)
        finally:
            release.set()


def test_http_errors_carry_status_and_retry_after() -> None:
    with feed_server() as server:
        server.routes["/busy"] = Answer(503, b"busy", headers={"Retry-After": "120"})
        with pytest.raises(FetchError) as info:
            get(server.url("/busy"))
    assert (info.value.status, info.value.retry_after) == (503, 120.0)
    assert "HTTP 503" in str(info.value)


def test_only_http_urls() -> None:
    for url in ("file:///etc/passwd", "ftp://example.org/f", "http:///nohost", "gopher://x"):
        with pytest.raises(FetchError, match="only absolute http"):
            get(url)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"), ("10.1.2.3", "private"), ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"), ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"),
        ("::1", "loopback"), ("fe80::1", "link-local"), ("::ffff:127.0.0.1", "loopback"),
        ("fc00::1", "private"), ("100.64.0.1", "non-global"), ("93.184.216.34", None),
        ("2606:2800:220:1::1", None),
    ],
)  # fmt: skip
def test_refused_addresses(address: str, reason: str | None) -> None:
    assert refused_reason(ipaddress.ip_address(address)) == reason


@given(st.ip_addresses())
def test_only_global_addresses_pass(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    if refused_reason(address) is None:
        assert address.is_global and not address.is_loopback and not address.is_private


def test_max_age() -> None:
    assert max_age("public, max-age=600") == 600
    assert max_age('max-age="60", must-revalidate') == 60
    assert max_age("no-cache") is None
    assert max_age("max-age=99999999999999999999") == 10**9


@pytest.mark.parametrize(
    ("host", "named"),
    [
        ("2130706433", "2130706433 (127.0.0.1) is a loopback"),
        ("127.1", "127.1 (127.0.0.1) is a loopback"),
        ("0", "0 (0.0.0.0) is an unspecified"),
        ("[::ffff:127.0.0.1]", "is a loopback"),
        ("[::1]", "::1 is a loopback"),
    ],
)
def test_other_spellings_of_loopback_are_refused(host: str, named: str) -> None:
    with feed_server() as server:
        server.routes["/f"] = Answer(body=FEED)
        with pytest.raises(FetchError, match=re.escape(named)):
            fetch_once(f"http://{host}:{server.port}/f", allow_private=False)
        assert server.requests == []


def test_a_redirect_to_another_scheme_names_it() -> None:
    with feed_server() as server:
        server.routes["/f"] = Answer(302, headers={"Location": "file:///etc/passwd"})
        with pytest.raises(FetchError) as info:
            get(server.url("/f"))
    assert str(info.value) == (
        f"{server.url('/f')}: redirect to 'file:///etc/passwd': "
        "only absolute http(s) URLs can be fetched"
    )
