"""A real HTTP server on 127.0.0.1 whose answers a test scripts per path and changes between polls.

Every request is recorded with its headers, so a test can check what the poller sent (e.g. that
the second request carried If-None-Match).
"""

from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Answer:
    """One scripted response; ``etag`` makes the server answer 304 to a matching If-None-Match."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    gzip: bool = False
    hold: threading.Event | None = None  # the handler waits for this before answering


Route = Answer | Callable[[Mapping[str, str]], Answer]


class FeedServer:
    """Routes by path; ``requests`` lists (path, headers) in arrival order."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.posts: list[tuple[str, bytes]] = []
        self.posted = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server._lock:
                    server.posts.append((self.path, body))
                server.posted.set()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server._lock:
                    server.requests.append((self.path, headers))
                route = server.routes.get(self.path, Answer(404, b"not here"))
                answer = route(headers) if callable(route) else route
                if answer.hold is not None:
                    answer.hold.wait(10)
                body, extra = answer.body, dict(answer.headers)
                status = answer.status
                if answer.etag:
                    extra["ETag"] = answer.etag
                    if headers.get("if-none-match") == answer.etag:
                        status, body = 304, b""
                if answer.gzip and body:
                    body = gzip.compress(body)
                    extra["Content-Encoding"] = "gzip"
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def seen(self, path: str) -> list[dict[str, str]]:
        """Headers of every request for ``path``, in order."""
        with self._lock:
            return [h for p, h in self.requests if p == path]


@contextmanager
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def rss(*entries: tuple[str, str, str], extra: str = "", item_extra: str = "") -> bytes:
    """An RSS 2.0 document of (guid, title, description) entries."""
    items = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title><link>https://upstream.example/{guid}"
        f"</link><description>{summary}</description>{item_extra}</item>"
        for guid, title, summary in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>'
        f"<title>Upstream</title><link>https://upstream.example/</link>{extra}{items}"
        "</channel></rss>"
    ).encode()
