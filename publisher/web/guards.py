"""Checks made on every request before routing: the Host header, HEAD, and who may read /metrics.

- Host: links and redirects (Starlette's trailing-slash redirect included) are built from the
  request's host and scheme, so both are replaced by BASE_URL's before the app sees the
  request: a forged Host can never reach a Location header or a page. With ALLOWED_HOSTS set,
  a request naming another host is refused (400); /healthz and /metrics are exempt, since
  probes and scrapers call them by address.
- HEAD: answered like GET without a body, wherever GET works.
- /metrics: loopback and private addresses, or a bearer token (METRICS_TOKEN, or ADMIN_TOKEN).
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

from starlette.types import Message, Scope, Send

from publisher.settings import Settings

EXEMPT_PATHS = frozenset({"/healthz", "/metrics"})
BAD_HOST = b"Bad Request: this site does not answer for that host name.\n"


def _hostname(value: str) -> str:
    """``value`` (a Host header or URL netloc) without its port, lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class HostPolicy:
    """Replaces Host and scheme by BASE_URL's; refuses hosts not in ALLOWED_HOSTS when it is set."""

    def __init__(self, settings: Settings) -> None:
        base = urlsplit(settings.base_url)
        self.scheme = base.scheme or "http"
        self.host = base.netloc.encode("idna" if not base.netloc.isascii() else "ascii")
        extra = {_hostname(h) for h in settings.allowed_hosts.split(",") if h.strip()}
        self.allowed: frozenset[str] | None = None
        if extra:
            self.allowed = frozenset(extra | {_hostname(base.netloc)})

    def admits(self, scope: Scope) -> bool:
        """Whether the request's Host is acceptable (always, without ALLOWED_HOSTS)."""
        if self.allowed is None or "*" in self.allowed or scope["path"] in EXEMPT_PATHS:
            return True
        for name, value in scope["headers"]:
            if name == b"host":
                return _hostname(value.decode("latin-1")) in self.allowed
        return False

    def rewrite(self, scope: Scope) -> Scope:
        """``scope`` as if the request had named BASE_URL's host and scheme."""
        if scope["scheme"] == self.scheme:
            hosts = [v for n, v in scope["headers"] if n == b"host"]
            if hosts == [self.host]:
                return scope  # already so: the usual case behind a proxy that keeps Host
        headers = [(n, v) for n, v in scope["headers"] if n != b"host"]
        headers.append((b"host", self.host))
        return {**scope, "headers": headers, "scheme": self.scheme}


async def refuse_host(send: Send, extra_headers: list[tuple[bytes, bytes]]) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(BAD_HOST)).encode()),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": BAD_HOST})


def without_body(send: Send) -> Send:
    """``send`` for a HEAD answered as GET: the same status and headers, no body bytes."""

    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_head


# Loopback and the private ranges of RFC 1918 and RFC 4193 (``is_private`` would also admit the
# documentation ranges, which are public-looking test addresses).
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7")
)


def private_address(host: str) -> bool:
    """Whether ``host`` (the client's address) is loopback or on a private network."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in PRIVATE_NETWORKS)


def may_read_metrics(client_host: str, authorization: str, settings: Settings) -> bool:
    """Loopback and private clients may; others need Bearer METRICS_TOKEN or ADMIN_TOKEN."""
    if private_address(client_host):
        return True
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    tokens = [t for t in (settings.metrics_token, settings.admin_token) if t]
    given_bytes = given.strip().encode()
    return any(hmac.compare_digest(given_bytes, t.encode()) for t in tokens)
