"""The feed family (RSS 2.0, Atom 1.0, JSON Feed 1.1, OPML 2.0) as pure functions of the data.

``entries`` holds what an item means; ``xmlfeeds``, ``jsonfeed`` and ``opml`` say how each format
writes it; ``build`` plans every region's feed and writes the family through a ``FeedWriter``.
Nothing here reads the store or the clock.
"""

from publisher.syndication.build import (
    BuildReport,
    DirectoryWriter,
    FeedWriter,
    build_feeds,
    plan_feeds,
)
from publisher.syndication.entries import ALL, FeedChannel, FeedEntry, entry_problem
from publisher.syndication.jsonfeed import JsonRenderer, render_json
from publisher.syndication.opml import render_opml
from publisher.syndication.xmlfeeds import XmlRenderer, render_atom, render_rss

__all__ = [
    "ALL",
    "BuildReport",
    "DirectoryWriter",
    "FeedChannel",
    "FeedEntry",
    "FeedWriter",
    "JsonRenderer",
    "XmlRenderer",
    "build_feeds",
    "entry_problem",
    "plan_feeds",
    "render_atom",
    "render_json",
    "render_opml",
    "render_rss",
]
