"""What a feed reader shows: item titles and summaries are plain text in RSS, Atom and JSON alike.

feedparser says whether it takes a value as HTML (RSS titles and descriptions that look like
markup) or as text; ``shown`` (tests/feed_support.py) turns either into the text a reader
displays, so "<b>x</b>" read back as a bold "x" counts as a failure. feedparser 6.0.14 does not
read JSON Feed, so JSON is read with the json module (title and content_text are plain text).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import feedparser
import pytest

from publisher.syndication import FeedChannel, FeedEntry, render_atom, render_json, render_rss
from tests.feed_support import shown

T0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
CHANNEL = FeedChannel(
    slug="gt", title="Regional News: Guatemala", description="News about Guatemala.",
    base_url="https://news.example.org", author_name="Regional News",
    author_email="news@example.org",
)  # fmt: skip
TITLES = [
    "&lt;img src=x&gt;",
    "<b>x</b>",
    "<img src=x onerror=alert(1)>",
    "a & b",
    "AT&T <script>alert(1)</script> after",
    "&amp; &#60; &nbsp;",
    "5 < 6 > 4",
    'Tom\'s "quoted" title',
    "]]> </title> <![CDATA[x]]>",
    "Centroamérica — “datos”",
]


def entry(title: str, summary: str = "A summary.") -> FeedEntry:
    return FeedEntry(
        id=1, guid="g-1", title=title, summary=summary, link=None, published=T0, updated=T0,
        regions=("gt",),
    )  # fmt: skip


def read_xml(data: bytes, version: str) -> Any:
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == version
    return parsed.entries


@pytest.mark.parametrize("title", TITLES)
def test_a_title_reads_back_as_the_same_text_in_every_format(title: str) -> None:
    item = entry(title)
    [rss] = read_xml(render_rss(CHANNEL, [item], category_names={}), "rss20")
    [atom] = read_xml(render_atom(CHANNEL, [item], category_names={}), "atom10")
    [js] = json.loads(render_json(CHANNEL, [item], category_names={}))["items"]
    assert (shown(rss.title_detail), shown(atom.title_detail), js["title"]) == (title,) * 3


@pytest.mark.parametrize("summary", TITLES)
def test_a_summary_reads_back_as_the_same_text_in_every_format(summary: str) -> None:
    item = entry("Title", summary)
    [rss] = read_xml(render_rss(CHANNEL, [item], category_names={}), "rss20")
    [atom] = read_xml(render_atom(CHANNEL, [item], category_names={}), "atom10")
    [js] = json.loads(render_json(CHANNEL, [item], category_names={}))["items"]
    got = (shown(rss.summary_detail), shown(atom.summary_detail), js["content_text"])
    assert got == (summary,) * 3
