"""JSON Feed 1.1 (https://jsonfeed.org/version/1.1) from the format-neutral model.

Written with the standard json module: the format is a plain object, so a library would add
nothing but a dependency. Keys keep a fixed order and no clock is read, so output is stable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from publisher.syndication.entries import (
    FeedChannel,
    FeedEntry,
    SkipHandler,
    category_labels,
    render_guarded,
    usable,
    utc,
)

VERSION = "https://jsonfeed.org/version/1.1"


def render_json(
    channel: FeedChannel,
    entries: Sequence[FeedEntry],
    *,
    category_names: Mapping[str, str],
    on_skip: SkipHandler | None = None,
) -> bytes:
    """The JSON Feed 1.1 document of a channel; entries that cannot be written go to ``on_skip``."""
    return JsonRenderer(category_names).render(channel, entries, on_skip=on_skip)


class JsonRenderer:
    """JSON Feeds for many channels, each item encoded once per renderer (one build)."""

    def __init__(self, category_names: Mapping[str, str]) -> None:
        self.category_names = category_names
        self._lines: dict[tuple[str, FeedEntry], str] = {}

    def render(
        self,
        channel: FeedChannel,
        entries: Sequence[FeedEntry],
        *,
        on_skip: SkipHandler | None = None,
        checked: bool = False,
    ) -> bytes:
        """The JSON Feed document; ``checked`` = the caller already ran ``entry_problem``."""
        head = _dumps(_head(channel))[:-1]

        def render(chosen: Sequence[FeedEntry]) -> bytes:
            lines = [self._line(channel, entry) for entry in chosen]
            items = "[\n" + ",\n".join(lines) + "\n]" if lines else "[]"
            return f'{head}, "items": {items}}}\n'.encode()  # a lone surrogate fails here

        return render_guarded(usable(entries, on_skip, checked=checked), render, on_skip)

    def _line(self, channel: FeedChannel, entry: FeedEntry) -> str:
        key = (channel.base_url, entry)
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = _dumps(_item(channel, entry, self.category_names))
        return line


# No indent: the json module only uses its C encoder without one. One item per line instead
# keeps the files readable and their diffs small. One encoder, not one per json.dumps call.
_dumps = json.JSONEncoder(ensure_ascii=False).encode


def rfc3339(moment: datetime) -> str:
    """An RFC 3339 timestamp in UTC with a Z, the form JSON Feed readers parse most reliably."""
    return utc(moment).isoformat().replace("+00:00", "Z")


def _head(channel: FeedChannel) -> dict[str, Any]:
    author: dict[str, str] = {"name": channel.author_name}
    if channel.author_email:
        author["url"] = f"mailto:{channel.author_email}"
    head: dict[str, Any] = {
        "version": VERSION,
        "title": channel.title,
        "home_page_url": channel.html_url,
        "feed_url": channel.feed_url("json"),
    }
    if channel.description:
        head["description"] = channel.description
    if channel.hub_url:
        head["hubs"] = [{"type": "WebSub", "url": channel.hub_url}]
    head["language"] = channel.language
    head["authors"] = [author]  # items inherit the feed's authors (JSON Feed 1.1, "authors")
    return head


def _item(channel: FeedChannel, entry: FeedEntry, names: Mapping[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {"id": entry.uri, "url": channel.item_url(entry)}
    if entry.link:
        item["external_url"] = entry.link
    item["title"] = entry.title
    if entry.image_url:
        item["image"] = entry.image_url
    item["content_text"] = entry.summary
    item["date_published"] = rfc3339(entry.published)
    item["date_modified"] = rfc3339(entry.updated)
    if entry.language:
        item["language"] = entry.language
    tags = category_labels(entry, names)
    if tags:
        item["tags"] = tags
    return item
