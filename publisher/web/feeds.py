"""GET /feeds/{name}: the built feed files from FEEDS_DIR, with validators, 304s and gzip.

The files are written by ``build_store_feeds`` (atomically, and only when their bytes change), so
a file's (mtime, size, inode) identifies one version. Each version is read, hashed and, the first
time a client accepts gzip, compressed exactly once; every later request costs one ``stat``.
The endpoint is a bare ASGI handler the app calls before its own routing: no database, no
dependencies, no middleware (it adds the security headers itself), so the revalidation path
(304), which is what feed readers mostly ask for, costs a stat, a dict lookup and two sends.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import threading
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

from starlette.types import Scope, Send

MEDIA_TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
}
CACHE_CONTROL = "public, max-age=300"
PREFIX = "/feeds/"
Headers = list[tuple[bytes, bytes]]
_NAME = re.compile(r"(?P<slug>[a-z0-9][a-z0-9-]{0,63})\.(?P<ext>rss|atom|json)|index\.opml")
_MIN_GZIP = 256  # smaller bodies are not worth a Content-Encoding


@dataclass(slots=True)
class FeedFile:
    """One version of one built file, with its validators and (lazily) its gzip body."""

    key: tuple[int, int, int]
    body: bytes
    etag: str
    etag_gzip: str
    last_modified: str
    mtime: int
    media_type: str
    validators: Headers
    gzipped: bytes | None = field(default=None)

    @property
    def zippable(self) -> bool:
        return len(self.body) >= _MIN_GZIP

    def gzip_body(self) -> bytes:
        if self.gzipped is None:
            # mtime=0: the same bytes give the same gzip, so the gzip ETag stays honest.
            self.gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self.gzipped


class FeedCache:
    """Built feed files keyed by name, re-read only when their (mtime, size, inode) changes."""

    def __init__(self, directory: Path, *, known_slugs: Container[str]) -> None:
        self.directory = Path(directory)
        self.known_slugs = known_slugs
        self._files: dict[str, FeedFile] = {}
        self._lock = threading.Lock()

    def valid_name(self, name: str) -> bool:
        """Whether ``name`` is a file the build can write: {known slug|all}.ext or index.opml."""
        match = _NAME.fullmatch(name)
        if match is None:
            return False
        slug = match.group("slug")
        return slug is None or slug == "all" or slug in self.known_slugs

    def get(self, name: str) -> FeedFile | None:
        """The current version of ``name`` (already validated), or None when it was not built."""
        path = os.path.join(self.directory, name)
        try:
            st = os.stat(path)
        except OSError:
            self._files.pop(name, None)
            return None
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._files.get(name)
        if cached is not None and cached.key == key:
            return cached
        return self._load(name, path)

    def _load(self, name: str, path: str) -> FeedFile | None:
        with self._lock:
            try:
                with open(path, "rb") as handle:
                    st = os.fstat(handle.fileno())
                    body = handle.read()
            except OSError:
                return None
            digest = hashlib.sha256(body).hexdigest()[:32]
            mtime = int(st.st_mtime)
            entry = FeedFile(
                key=(st.st_mtime_ns, st.st_size, st.st_ino),
                body=body,
                etag=f'"{digest}"',
                etag_gzip=f'"{digest}-gz"',
                last_modified=formatdate(mtime, usegmt=True),
                mtime=mtime,
                media_type=MEDIA_TYPES[os.path.splitext(name)[1]],
                validators=[
                    (b"last-modified", formatdate(mtime, usegmt=True).encode()),
                    (b"cache-control", CACHE_CONTROL.encode()),
                    (b"vary", b"Accept-Encoding"),
                ],
            )
            self._files[name] = entry
            return entry


def _etag_matches(header: str, entry: FeedFile) -> bool:
    """Weak comparison (RFC 9110 13.1.2): W/ prefixes are ignored, "*" matches anything."""
    if header.strip() == "*":
        return True
    for tag in header.split(","):
        tag = tag.strip().removeprefix("W/")
        if tag in (entry.etag, entry.etag_gzip):
            return True
    return False


def _not_modified_since(header: str, entry: FeedFile) -> bool:
    """Whether the date in If-Modified-Since is at or after the file's; any bad date is ignored."""
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    if since.tzinfo is None:
        return False
    return entry.mtime <= since.timestamp()


def _accepts_gzip(header: str) -> bool:
    """Whether Accept-Encoding allows gzip (by name or "*") with a q-value above zero."""
    header = header.lower()
    if "gzip" not in header and "*" not in header:
        return False
    for part in header.split(","):
        coding, _, params = part.partition(";")
        if coding.strip() not in ("gzip", "x-gzip", "*"):
            continue
        name, _, value = params.strip().partition("=")
        if name.strip() != "q":
            return True
        try:
            return float(value) > 0
        except ValueError:
            return False
    return False


def feed_answer(
    entry: FeedFile, request_headers: Iterable[tuple[bytes, bytes]], *, head: bool
) -> tuple[int, Headers, bytes]:
    """(status, headers, body) of the 200 or 304 answer for ``entry``."""
    inm = ims = accept = None
    for name, value in request_headers:
        if name == b"if-none-match":
            inm = value
        elif name == b"if-modified-since":
            ims = value
        elif name == b"accept-encoding":
            accept = value
    use_gzip = accept is not None and entry.zippable and _accepts_gzip(accept.decode("latin-1"))
    etag = entry.etag_gzip if use_gzip else entry.etag
    if inm is not None:
        fresh = _etag_matches(inm.decode("latin-1"), entry)
    else:
        fresh = ims is not None and _not_modified_since(ims.decode("latin-1"), entry)
    headers = [(b"etag", etag.encode()), *entry.validators]
    if fresh:
        return 304, headers, b""
    body = entry.gzip_body() if use_gzip else entry.body
    headers.append((b"content-type", entry.media_type.encode()))
    headers.append((b"content-length", str(len(body)).encode()))
    if use_gzip:
        headers.append((b"content-encoding", b"gzip"))
    return 200, headers, b"" if head else body


NOT_FOUND = b"No such feed. /feeds/index.opml lists every feed.\n"


class FeedsEndpoint:
    """GET|HEAD /feeds/{name} as a bare ASGI handler, in front of the framework's routing.

    Feed readers poll, so most requests are revalidations answered 304 from memory: this path
    skips routing, dependency injection and the middleware stack (it adds the same security
    headers itself) and touches no database. Any other method or path is not handled here.
    """

    def __init__(self, cache: FeedCache, extra_headers: Headers) -> None:
        self.cache = cache
        self.extra = extra_headers

    async def __call__(self, scope: Scope, send: Send) -> bool:
        """Answer the request if it is a feed GET/HEAD; False (nothing sent) otherwise."""
        method = scope["method"]
        path: str = scope["path"]
        if method not in ("GET", "HEAD") or not path.startswith(PREFIX):
            return False
        name = path[len(PREFIX) :]
        entry = self.cache.get(name) if self.cache.valid_name(name) else None
        if entry is None:
            status = 404
            headers = [(b"content-type", b"text/plain; charset=utf-8"),
                       (b"content-length", str(len(NOT_FOUND)).encode())]  # fmt: skip
            body = b"" if method == "HEAD" else NOT_FOUND
        else:
            status, headers, body = feed_answer(entry, scope["headers"], head=method == "HEAD")
        await send({"type": "http.response.start", "status": status,
                    "headers": headers + self.extra})  # fmt: skip
        await send({"type": "http.response.body", "body": body})
        return True


class FeedRebuilder:
    """Rebuilds feeds/ after writes, one build at a time, coalescing requests made meanwhile.

    Callers commit first, then call; a call made while a build runs queues exactly one more
    build (which starts after the call, so it sees the caller's commit); further calls made
    while that one waits are covered by it and return at once.
    """

    def __init__(self, build: Callable[[], object]) -> None:
        self._build = build
        self._running = threading.Lock()
        self._state = threading.Lock()
        self._queued = False

    def __call__(self) -> None:
        with self._state:
            if self._queued:
                return
            self._queued = True
        with self._running:
            with self._state:
                self._queued = False
            self._build()
