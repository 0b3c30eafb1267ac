"""The one guarded HTTP fetcher for feeds: every URL publisher fetches on someone's say-so.

A feed URL is attacker-chosen, so the fetcher refuses loopback, private, link-local, unspecified,
multicast and other non-global addresses (unless ``allow_private``) after every redirect and name
lookup. To close DNS rebinding, the name is resolved once, checked, and the connection goes to the
checked address (``GuardedBackend``); TLS still verifies the certificate against the host name.
Redirects are followed by hand (at most ``MAX_REDIRECTS``), the whole fetch has one deadline, and
the decoded body (gzip included) has a size cap, so a slow or endless answer costs bounded time
and memory.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpcore
import httpx

from publisher.errors import FeedFetchError

MAX_REDIRECTS = 5
MAX_BYTES = 20_000_000
TOTAL_TIMEOUT = 30.0
USER_AGENT = "publisher feed fetcher (+https://github.com/publisher)"
PERMANENT = frozenset({301, 308})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchError(FeedFetchError):
    """A fetch that failed; ``status`` and ``retry_after`` (seconds) when the server said so."""

    def __init__(
        self,
        reason: str,
        *,
        source: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason, source=source)
        self.status = status
        self.retry_after = retry_after


class RefusedAddress(Exception):
    """A name that resolves to an address the fetcher must not connect to."""


def refused_reason(address: IPAddress) -> str | None:
    """Why the fetcher will not connect to ``address`` (e.g. "loopback"), or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refused_reason(address.ipv4_mapped)
    for name in ("loopback", "link_local", "unspecified", "multicast", "private", "reserved"):
        if getattr(address, f"is_{name}"):
            return name.replace("_", "-")
    return None if address.is_global else "non-global"


def _a(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


class GuardedBackend(httpcore.AnyIOBackend):
    """Resolves each host once, refuses non-global addresses, then connects to that address."""

    def __init__(
        self, *, allow_private: bool, exempt: frozenset[tuple[str, int]] = frozenset()
    ) -> None:
        self.allow_private = allow_private
        self.exempt = exempt  # (address, port) pairs let through anyway: tests' first hop only

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await self.resolve(host, port)
        return await super().connect_tcp(
            address, port, timeout=timeout, local_address=local_address,
            socket_options=socket_options,
        )  # fmt: skip

    async def resolve(self, host: str, port: int) -> str:
        """The address to connect to; RefusedAddress if any address of ``host`` is refused."""
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            raise httpcore.ConnectError(f"cannot resolve {host}: {e}") from e
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        if not self.allow_private and (str(addresses[0]), port) not in self.exempt:
            for address in addresses:
                reason = refused_reason(address)
                if reason:
                    named = host if host == str(address) else f"{host} ({address})"
                    raise RefusedAddress(f"{named} is {_a(reason)} address")
        return str(addresses[0])


@dataclass(frozen=True, slots=True)
class Fetched:
    """A fetch's outcome: the body (empty on 304), validators and caching hints."""

    url: str
    status: int
    body: bytes
    etag: str | None = None
    last_modified: str | None = None
    max_age: float | None = None
    moved_to: str | None = None  # the new address after permanent redirects only

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def make_client(
    *,
    allow_private: bool,
    max_connections: int = 100,
    exempt: frozenset[tuple[str, int]] = frozenset(),
) -> httpx.AsyncClient:
    """An AsyncClient whose every connection goes through ``GuardedBackend``; no proxies."""
    transport = httpx.AsyncHTTPTransport(retries=0)
    transport._pool = httpcore.AsyncConnectionPool(  # the one documented-by-source seam
        ssl_context=httpx.create_ssl_context(),
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=5.0,
        network_backend=GuardedBackend(allow_private=allow_private, exempt=exempt),
    )
    return httpx.AsyncClient(
        transport=transport,
        trust_env=False,  # a proxy from the environment would bypass the address check
        follow_redirects=False,
        timeout=httpx.Timeout(10.0),
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
    )


def _seconds(value: str | None) -> float | None:
    """Retry-After as seconds (a number or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), 10**9))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _validator(value: str | None) -> str | None:
    """An ETag or Last-Modified worth sending back: printable ASCII of sane length, else None."""
    if value and len(value) <= 200 and value.isascii() and value.isprintable():
        return value
    return None


def max_age(cache_control: str | None) -> float | None:
    """The max-age of a Cache-Control header in seconds, or None."""
    for part in (cache_control or "").split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() == "max-age" and value.strip().strip('"').isdigit():
            return float(min(int(value.strip().strip('"')), 10**9))
    return None


def _check_url(url: str, *, start: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        where = "" if url == start else f"redirect to {url[:200]!r}: "
        raise FetchError(f"{where}only absolute http(s) URLs can be fetched", source=start)


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    validators: Mapping[str, str] | None = None,
    max_bytes: int = MAX_BYTES,
    total_timeout: float = TOTAL_TIMEOUT,
) -> Fetched:
    """GET ``url`` conditionally (``validators``: If-None-Match / If-Modified-Since headers).

    Raises FetchError for refused addresses, too many redirects, HTTP errors, oversize bodies
    and the deadline; a 304 is a result, not an error.
    """
    try:
        async with asyncio.timeout(total_timeout):
            return await _follow(client, url, dict(validators or {}), max_bytes)
    except TimeoutError:
        raise FetchError(f"no complete answer within {total_timeout:g} s", source=url) from None


async def _follow(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], max_bytes: int
) -> Fetched:
    current, moved_to, permanent_so_far = url, None, True
    for _hop in range(MAX_REDIRECTS + 1):
        _check_url(current, start=url)
        try:
            async with client.stream("GET", current, headers=headers) as resp:
                if resp.status_code in REDIRECTS and "location" in resp.headers:
                    target = urljoin(current, resp.headers["location"].strip())
                    permanent_so_far = permanent_so_far and resp.status_code in PERMANENT
                    if permanent_so_far:
                        moved_to = target
                    current = target
                    continue
                return await _finish(resp, url=current, moved_to=moved_to, max_bytes=max_bytes)
        except RefusedAddress as e:
            raise FetchError(f"refused: {e}; SOURCES_ALLOW_PRIVATE is off", source=url) from e
        except httpx.HTTPError as e:
            raise FetchError(f"cannot fetch: {e or type(e).__name__}", source=url) from e
    raise FetchError(f"more than {MAX_REDIRECTS} redirects", source=url)


async def _finish(
    resp: httpx.Response, *, url: str, moved_to: str | None, max_bytes: int
) -> Fetched:
    status = resp.status_code
    hints: dict[str, Any] = {
        "etag": _validator(resp.headers.get("etag")),
        "last_modified": _validator(resp.headers.get("last-modified")),
        "max_age": max_age(resp.headers.get("cache-control")),
        "moved_to": moved_to,
    }
    if status == 304:
        return Fetched(url=url, status=304, body=b"", **hints)
    if status >= 400 or status < 200:
        raise FetchError(
            f"HTTP {status} {resp.reason_phrase}".rstrip(), source=url, status=status,
            retry_after=_seconds(resp.headers.get("retry-after")),
        )  # fmt: skip
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"larger than {max_bytes:,} bytes", source=url, status=status)
    body = bytearray()
    async for chunk in resp.aiter_bytes():  # decoded: a gzip bomb hits the cap too
        body += chunk
        if len(body) > max_bytes:
            raise FetchError(f"larger than {max_bytes:,} bytes", source=url, status=status)
    return Fetched(url=url, status=status, body=bytes(body), **hints)


def fetch_once(url: str, *, allow_private: bool, total_timeout: float = TOTAL_TIMEOUT) -> bytes:
    """Fetch one URL from synchronous code (``items import URL``): the body, or FetchError."""

    async def run() -> bytes:
        async with make_client(allow_private=allow_private, max_connections=4) as client:
            return (await fetch(client, url, total_timeout=total_timeout)).body

    return anyio.run(run) if not _loop_running() else _in_thread(run)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _in_thread(run: Any) -> bytes:
    """Run the coroutine function ``run`` on a fresh loop in a worker thread (caller has a loop)."""
    with ThreadPoolExecutor(1) as pool:
        result: bytes = pool.submit(anyio.run, run).result()
    return result
