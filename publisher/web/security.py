"""Security middleware: response headers every answer carries, and request body size limits.

Both are plain ASGI middleware (no BaseHTTPMiddleware, no extra task per request), so the feeds'
304 path pays a dictionary lookup and a few list appends for them, nothing more.

A route may set its own Content-Security-Policy (the digest archive needs inline styles, /docs
needs Swagger's script); the middleware only fills in headers a response did not set itself.
Errors never carry a stack trace: the handlers in ``app.py`` answer a generic page or JSON.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The web copy of a digest is the email's own HTML, whose CSS is inlined for mail clients.
ARCHIVE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Swagger UI (/docs) and ReDoc (/redoc) load their bundles from /static/docs (no other host);
# Swagger starts with an inline script, ReDoc injects styles and runs a worker from a blob.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The console may use small scripts of its own (/static) and talk to its own endpoints.
ADMIN_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'self'; "
    "base-uri 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
# Answers to signed links and forms are personal: no shared or browser cache may keep them.
PRIVATE_PREFIXES = (
    "/confirm/", "/preferences/", "/unsubscribe/", "/subscribe", "/api/", "/admin",
)  # fmt: skip

_BASE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_BASE_NAMES = frozenset(name for name, _ in _BASE_HEADERS) | {b"content-security-policy"}


def security_headers() -> list[tuple[bytes, bytes]]:
    """The headers as ASGI pairs, for answers made outside the middleware (feeds)."""
    return [*_BASE_HEADERS, (b"content-security-policy", CSP.encode())]


def header_dict() -> dict[str, str]:
    """The headers as a dict, for answers made outside the middleware (the 500 handler)."""
    headers = {name.decode(): value.decode() for name, value in _BASE_HEADERS}
    headers["content-security-policy"] = CSP
    return headers


FORM_LIMIT = 64 * 1024
API_LIMIT = 1024 * 1024


class SecurityHeaders:
    """Adds CSP, nosniff, Referrer-Policy, X-Frame-Options and Permissions-Policy to answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.csp = CSP.encode()
        self.docs_csp = DOCS_CSP.encode()
        self.admin_csp = ADMIN_CSP.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in DOCS_PATHS:
            csp = self.docs_csp
        elif path == "/admin" or path.startswith("/admin/"):
            csp = self.admin_csp
        else:
            csp = self.csp
        private = path.startswith(PRIVATE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers} & _BASE_NAMES
                if present:
                    headers += [h for h in _BASE_HEADERS if h[0] not in present]
                else:
                    headers += _BASE_HEADERS
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", csp))
                if private:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(Exception):
    """A request body went past its limit while being read."""


def _too_large(scope: Scope, limit: int) -> tuple[bytes, bytes]:
    if scope["path"].startswith("/api"):
        body = json.dumps({"detail": f"request body is larger than {limit} bytes"}).encode()
        return body, b"application/json"
    text = (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Too large</title>"
        "<h1>Request too large</h1><p>The form you sent is larger than this site accepts.</p>"
    )
    return text.encode(), b"text/html; charset=utf-8"


class BodyLimit:
    """Answers 413 for bodies over the limit: by Content-Length up front, or while streaming."""

    def __init__(self, app: ASGIApp, *, form_limit: int = FORM_LIMIT, api_limit: int = API_LIMIT):
        self.app = app
        self.form_limit = form_limit
        self.api_limit = api_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.api_limit if scope["path"].startswith("/api") else self.form_limit
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    await self._reject(scope, send, limit)
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._reject(scope, send, limit)
        except Exception as e:
            # Starlette's form parser may wrap our exception; find it in the chain.
            if started or not caused_by_limit(e):
                raise
            await self._reject(scope, send, limit)

    async def _reject(self, scope: Scope, send: Send, limit: int) -> None:
        body, media_type = _too_large(scope, limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", media_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def caused_by_limit(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, BodyTooLarge):
            return True
        seen.add(id(current))
        if isinstance(current, BaseExceptionGroup):
            return any(caused_by_limit(e) for e in current.exceptions)
        current = current.__cause__ or current.__context__
    return False
