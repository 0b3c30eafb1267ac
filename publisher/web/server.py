"""How `publisher serve` faces the internet: uvicorn with limits on what one client may hold.

uvicorn alone accepts headers of any size and count and keeps a connection that sends nothing,
or one header a second, open for ever. ``GuardedProtocol`` (uvicorn's httptools protocol with
three additions) closes those holes before a request reaches the app:

- a request head (request line and headers) larger than HTTP_MAX_HEADER_BYTES, or with more
  than HTTP_MAX_HEADERS fields, is answered 431 and the connection closed; bytes are counted
  as they arrive, so a 16 MB header costs at most one socket read of memory;
- a client has HTTP_TIMEOUT seconds to send a whole request (head and body) from the moment
  the connection opens or its previous answer went out: idle, slow and dripping connections
  are closed (408 when part of a request came), while the time the app takes is not counted;
- at most HTTP_MAX_CONNECTIONS connections and requests at once (uvicorn answers 503 beyond).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from publisher.settings import Settings


class HeadTooLarge(Exception):
    """The request head went past its size or field-count limit."""


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head limits and a deadline for each request."""

    max_head_bytes = 16_384
    max_headers = 100
    request_timeout = 10.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._parsed_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None

    # -- the deadline -----------------------------------------------------------------------
    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if self.transport.is_closing():
            return
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            return  # the whole request came: the app is working, the client is not late
        idle = cycle is None or cycle.response_complete
        if idle and (self._head_bytes or self._parsed_bytes or not self._in_head):
            self._answer(408, "The request took too long to arrive.")  # part of a head came
            return
        self.transport.close()

    def _answer(self, status: int, text: str) -> None:
        """A short plain-text answer that closes the connection (before any app answer)."""
        body = text.encode("ascii")
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: %d\r\n" % len(body),
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        was_in_head = self._in_head
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as e:
            if isinstance(e.__cause__ or e.__context__, HeadTooLarge):
                self._answer(431, "Request header fields too large.")
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        if self._in_head:
            # Still inside a head: every byte since it began belongs to it (when it began in
            # this read, the whole read is an upper bound).
            self._head_bytes = (self._head_bytes if was_in_head else 0) + len(data)
            if self._head_bytes > self.max_head_bytes:
                self._answer(431, "Request header fields too large.")

    # -- parser callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._header_count = 0
        self._parsed_bytes = 0

    def _count(self, size: int) -> None:
        """Count parsed head bytes (a head that came in one read is checked here)."""
        self._parsed_bytes += size
        if self._parsed_bytes > self.max_head_bytes:
            raise HeadTooLarge

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_headers:
            raise HeadTooLarge
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._in_head = True

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()


def guarded_protocol(settings: Settings) -> type[GuardedProtocol]:
    """The protocol class with this deployment's limits."""
    return type(
        "GuardedProtocol",
        (GuardedProtocol,),
        {
            "max_head_bytes": settings.http_max_header_bytes,
            "max_headers": settings.http_max_headers,
            "request_timeout": settings.http_timeout,
        },
    )


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.run/Config keyword arguments for ``settings`` (limits, proxy trust)."""
    return {
        "http": guarded_protocol(settings),
        "limit_concurrency": settings.http_max_connections,
        "timeout_keep_alive": max(1, min(5, math.ceil(settings.http_timeout))),
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "h11_max_incomplete_event_size": settings.http_max_header_bytes,
        "access_log": False,
        "server_header": False,
    }
