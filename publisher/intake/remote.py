"""Reading RSS or Atom from a file or URL with feedparser, refusing what is not a feed.

URLs go through the guarded fetcher (publisher.intake.fetcher); the parsing here is shared by
``items import URL`` and source polling, images included.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import feedparser

from publisher.errors import FeedFetchError, InputError
from publisher.intake.fetcher import fetch_once
from publisher.intake.readers import Read
from publisher.intake.records import RawRecord
from publisher.links import check_link

MAX_FEED_BYTES = 20_000_000


def fetch(url: str, *, allow_private: bool = False, timeout: float = 30.0) -> bytes:
    """GET a feed through the guarded fetcher (address checks, 5 redirects, size and time caps)."""
    return fetch_once(url, allow_private=allow_private, total_timeout=timeout)


def _when(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _http_link(value: object) -> str | None:
    """feedparser fills ``link`` from a non-permalink guid; keep only real web links."""
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value
    return None


class _FirstImage(HTMLParser):
    """Finds the first <img src> of an HTML fragment and its alt text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.found is None and tag == "img":
            values = dict(attrs)
            if values.get("src"):
                self.found = (values["src"] or "", values.get("alt") or "")


def _usable_image(url: object, base: object = None) -> str | None:
    """An image URL the store accepts (relative ones against ``base``), or None.

    A bad image never costs the entry.
    """
    if not isinstance(url, str):
        return None
    if isinstance(base, str) and not url.startswith(("http://", "https://")):
        url = urljoin(base, url.strip())
    try:
        return check_link(url, name="image_url")
    except InputError:
        return None


def entry_image(entry: Any, base: str | None = None) -> tuple[str | None, str]:
    """An entry's image and alt text: enclosure, media:content, media:thumbnail, first <img>."""
    candidates: list[tuple[object, object]] = []
    for enclosure in entry.get("enclosures") or ():
        if str(enclosure.get("type", "")).startswith("image/"):
            candidates.append((enclosure.get("href"), ""))
    for media in entry.get("media_content") or ():
        if media.get("medium") == "image" or str(media.get("type", "")).startswith("image/"):
            candidates.append((media.get("url"), ""))
    for thumb in entry.get("media_thumbnail") or ():
        candidates.append((thumb.get("url"), ""))
    for url, alt in candidates:
        found = _usable_image(url)
        if found:
            return found, str(alt or entry.get("media_description") or "")
    for html in [c.get("value", "") for c in entry.get("content") or ()] + [
        entry.get("summary", "")
    ]:
        if "<img" not in html:
            continue
        parser = _FirstImage()
        try:
            parser.feed(html)
        except Exception:  # noqa: S112 (markup too broken to read: no image from it)
            continue
        if parser.found:
            found = _usable_image(parser.found[0], entry.get("link") or base)
            if found:
                return found, parser.found[1]
    return None, ""


def parse_feed(body: bytes, *, source: str) -> Any:
    """feedparser's result for ``body``; anything that is not RSS or Atom is a FeedFetchError."""
    # Text is cleaned at the door (publisher.text) and the one URL taken from markup (an image)
    # is resolved in entry_image, so feedparser's own passes would only cost time.
    parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
    if not parsed.version:
        kind = "HTML" if b"<html" in body[:2048].lower() else "something else"
        raise FeedFetchError(f"serves {kind}, not an RSS or Atom feed", source=source)
    return parsed


def feed_records(parsed: Any, *, source: str) -> list[RawRecord]:
    """One RawRecord per entry; ``guid`` is the entry's own id (or link)."""
    records = []
    base = parsed.feed.get("link") if isinstance(parsed.feed.get("link"), str) else None
    for n, entry in enumerate(parsed.entries, 1):
        image_url, image_alt = entry_image(entry, base)
        records.append(
            RawRecord(
                source=source,
                line=n,
                title=entry.get("title"),
                summary=entry.get("summary", ""),
                link=_http_link(entry.get("link")),
                published=_when(entry),
                guid=entry.get("id") or entry.get("link"),
                image_url=image_url,
                image_alt=image_alt,
            )
        )
    return records


def read_feed(source: str, *, allow_private: bool = False) -> Read:
    """Items of an RSS or Atom document; an HTML page or junk is one FeedFetchError."""
    if source.startswith(("http://", "https://")):
        body = fetch(source, allow_private=allow_private)
    else:
        try:
            body = Path(source).read_bytes()
        except OSError as e:
            raise FeedFetchError(f"cannot read: {e.strerror}", source=source) from e
    yield from feed_records(parse_feed(body, source=source), source=source)
