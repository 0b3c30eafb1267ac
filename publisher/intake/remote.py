"""Reading RSS or Atom from a file or URL with feedparser, refusing what is not a feed."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx

from publisher.errors import FeedFetchError
from publisher.intake.readers import Read
from publisher.intake.records import RawRecord

MAX_FEED_BYTES = 20_000_000


def fetch(url: str, *, timeout: float = 20.0) -> bytes:
    """GET a feed, following redirects, with a size cap."""
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as resp:
            resp.raise_for_status()
            body = bytearray()
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > MAX_FEED_BYTES:
                    raise FeedFetchError("larger than 20 MB", source=url)
            return bytes(body)
    except httpx.HTTPError as e:
        raise FeedFetchError(f"cannot fetch: {e}", source=url) from e


def _when(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)


def _http_link(value: object) -> str | None:
    """feedparser fills ``link`` from a non-permalink guid; keep only real web links."""
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value
    return None


def read_feed(source: str) -> Read:
    """Items of an RSS or Atom document; an HTML page or junk is one FeedFetchError."""
    if source.startswith(("http://", "https://")):
        body = fetch(source)
    else:
        try:
            body = Path(source).read_bytes()
        except OSError as e:
            raise FeedFetchError(f"cannot read: {e.strerror}", source=source) from e
    parsed = feedparser.parse(body)
    if not parsed.version:
        kind = "HTML" if b"<html" in body[:2048].lower() else "something else"
        raise FeedFetchError(f"serves {kind}, not an RSS or Atom feed", source=source)
    for n, entry in enumerate(parsed.entries, 1):
        yield RawRecord(
            source=source,
            line=n,
            title=entry.get("title"),
            summary=entry.get("summary", ""),
            link=_http_link(entry.get("link")),
            published=_when(entry),
            guid=entry.get("id") or entry.get("link"),
        )
