"""RSS 2.0 and Atom 1.0 through feedgen: every difference between the two XML formats lives here.

One ``FeedGenerator`` is filled once per feed and serialised twice; only the self link changes
between the two. feedgen's clock-based defaults (lastBuildDate, <updated>, a versioned
<generator>) are overwritten from the data so the bytes depend on the entries alone.
An ``XmlRenderer`` lives for one build and builds each item's feedgen entry and elements once,
then copies them into every feed the item appears in (about three per item).
"""

from __future__ import annotations

import copy
import html
from collections.abc import Mapping, Sequence
from email.utils import format_datetime
from typing import Any

from feedgen.entry import FeedEntry as GeneratorEntry
from feedgen.feed import (
    FeedGenerator,
    etree,  # feedgen's own lxml (lxml ships no type stubs)
)
from feedgen.util import xml_elem

from publisher.syndication.entries import (
    FeedChannel,
    FeedEntry,
    SkipHandler,
    category_labels,
    channel_updated,
    image_type,
    render_guarded,
    usable,
    utc,
)

GENERATOR = "publisher"
ATOM_NS = "http://www.w3.org/2005/Atom"
RSS_TYPE = "application/rss+xml"
ATOM_TYPE = "application/atom+xml"


def render_rss(
    channel: FeedChannel,
    entries: Sequence[FeedEntry],
    *,
    category_names: Mapping[str, str],
    on_skip: SkipHandler | None = None,
) -> bytes:
    """The RSS 2.0 document of a channel; entries that cannot be written go to ``on_skip``."""
    return XmlRenderer(category_names).rss(channel, entries, on_skip=on_skip)


def render_atom(
    channel: FeedChannel,
    entries: Sequence[FeedEntry],
    *,
    category_names: Mapping[str, str],
    on_skip: SkipHandler | None = None,
) -> bytes:
    """The Atom 1.0 document of a channel; entries that cannot be written go to ``on_skip``."""
    return XmlRenderer(category_names).atom(channel, entries, on_skip=on_skip)


class XmlRenderer:
    """RSS and Atom for many channels, each item's feedgen entry built once per renderer.

    Entries are remembered by value (with the site address), so an edited item is never
    served stale; still, keep one renderer per build rather than one per process.
    """

    def __init__(self, category_names: Mapping[str, str]) -> None:
        self.category_names = category_names
        self._entries: dict[tuple[str, FeedEntry], _Entry] = {}

    def rss(
        self,
        channel: FeedChannel,
        entries: Sequence[FeedEntry],
        *,
        on_skip: SkipHandler | None = None,
        checked: bool = False,
    ) -> bytes:
        """The RSS 2.0 document; ``checked`` = the caller already ran ``entry_problem``."""
        good = usable(entries, on_skip, checked=checked)
        return render_guarded(good, lambda chosen: self._rss(channel, chosen), on_skip)

    def atom(
        self,
        channel: FeedChannel,
        entries: Sequence[FeedEntry],
        *,
        on_skip: SkipHandler | None = None,
        checked: bool = False,
    ) -> bytes:
        """The Atom 1.0 document; ``checked`` = the caller already ran ``entry_problem``."""
        good = usable(entries, on_skip, checked=checked)
        return render_guarded(good, lambda chosen: self._atom(channel, chosen), on_skip)

    def both(
        self,
        channel: FeedChannel,
        entries: Sequence[FeedEntry],
        *,
        on_skip: SkipHandler | None = None,
        checked: bool = False,
    ) -> tuple[bytes, bytes]:
        """RSS and Atom from one filled generator; a failure falls back to the guarded path."""
        good = usable(entries, on_skip, checked=checked)
        try:
            generator = self._generator(channel, good)
            return _rss_bytes(generator, channel), _atom_bytes(generator, channel)
        except Exception:  # the one-format path below isolates the entry that broke it
            rss = self.rss(channel, good, on_skip=on_skip, checked=True)
            return rss, self.atom(channel, good, on_skip=on_skip, checked=True)

    def _rss(self, channel: FeedChannel, entries: Sequence[FeedEntry]) -> bytes:
        return _rss_bytes(self._generator(channel, entries), channel)

    def _atom(self, channel: FeedChannel, entries: Sequence[FeedEntry]) -> bytes:
        return _atom_bytes(self._generator(channel, entries), channel)

    def _generator(self, channel: FeedChannel, entries: Sequence[FeedEntry]) -> FeedGenerator:
        """A generator holding the channel and its entries, in the order given (newest first)."""
        generator = FeedGenerator()
        generator.id(channel.feed_url("atom"))
        generator.title(channel.title)
        generator.description(channel.description or channel.title)
        generator.language(channel.language)
        generator.generator(GENERATOR)  # no version: an upgrade must not change every feed
        generator.updated(channel_updated(entries))  # also RSS lastBuildDate; never "now"
        if channel.author_email:
            generator.author(name=channel.author_name, email=channel.author_email)
            generator.managingEditor(f"{channel.author_email} ({channel.author_name})")
        else:
            # RSS authors are email addresses; without one, Dublin Core carries the name.
            generator.author(name=channel.author_name)
            generator.load_extension("dc", atom=False, rss=True)
            generator.dc.dc_creator(channel.author_name)
        for entry in entries:
            key = (channel.base_url, entry)
            item = self._entries.get(key)
            if item is None:
                item = self._entries[key] = _Entry(channel, entry, self.category_names)
            generator.add_entry(item, order="append")
        return generator


def _hub(channel: FeedChannel) -> list[dict[str, str]]:
    return [{"href": channel.hub_url, "rel": "hub"}] if channel.hub_url else []


def _rss_bytes(generator: FeedGenerator, channel: FeedChannel) -> bytes:
    # feedgen writes the first rel=self link as <atom:link rel="self"> and the last as <link>;
    # any other channel link (the WebSub hub) is added here, next to the self link.
    generator.link(
        [
            {"href": channel.feed_url("rss"), "rel": "self", "type": RSS_TYPE},
            {"href": channel.html_url, "rel": "alternate", "type": "text/html"},
        ],
        replace=True,
    )
    if not channel.hub_url:
        data: bytes = generator.rss_str(pretty=True)
        return data
    feed, _doc = generator._create_rss()
    self_link = feed.find("channel").find(f"{{{ATOM_NS}}}link")
    self_link.addnext(etree.Element(f"{{{ATOM_NS}}}link", href=channel.hub_url, rel="hub"))
    hubbed: bytes = etree.tostring(feed, pretty_print=True, encoding="UTF-8", xml_declaration=True)
    return hubbed


def _atom_bytes(generator: FeedGenerator, channel: FeedChannel) -> bytes:
    generator.link(
        [
            {"href": channel.feed_url("atom"), "rel": "self", "type": ATOM_TYPE},
            *_hub(channel),
            {"href": channel.html_url, "rel": "alternate", "type": "text/html"},
        ],
        replace=True,
    )
    data: bytes = generator.atom_str(pretty=True)
    return data


class _Entry(GeneratorEntry):
    """One item as a feedgen entry, plus what feedgen 1.0 gets wrong or makes slow.

    feedgen drops the rel and type of every Atom entry link, so a source link would become a
    second rel="alternate" link, which RFC 4287 forbids: it gets the permalink only and the
    rest is written here. Readers take an RSS <title> and <description> as HTML, so the
    plain-text title and summary are HTML-escaped there ("a <b>" must not turn bold, "&lt;"
    must stay four characters, "</description>" must survive), as Atom's type="text" says.
    feedgen's RSS dates switch the process locale (setlocale: slow, and not thread-safe), so
    publication dates are written here too, in the same places. The elements are built once
    and a copy goes into each feed.
    """

    def __init__(self, channel: FeedChannel, entry: FeedEntry, names: Mapping[str, str]) -> None:
        super().__init__()
        self.id(entry.uri)  # Atom id and RSS guid isPermaLink="false"
        self.title(entry.title)
        self.link(href=channel.item_url(entry), rel="alternate")  # also the RSS <link>
        if entry.summary:
            self.summary(entry.summary)  # Atom <summary> (type text) and RSS <description>
        self.updated(utc(entry.updated))
        labels = category_labels(entry, names)
        if labels:
            self.category([{"term": label} for label in labels])
        self.source = entry.link
        self.language = entry.language
        self.image = entry.image_url
        if entry.image_url:  # RSS <enclosure>; Atom gets rel="enclosure" in atom_entry
            self.enclosure(entry.image_url, "0", image_type(entry.image_url))
        self.published_at = utc(entry.published)
        self._built: dict[str, Any] = {}

    def atom_entry(self, extensions: bool = True) -> Any:
        """The <entry> element, links repaired, <published> added."""
        if "atom" not in self._built:
            element = super().atom_entry(extensions)
            permalink, *others = element.findall("link")
            permalink.set("rel", "alternate")
            permalink.set("type", "text/html")
            for link in others:  # the enclosure, rel and type dropped by feedgen
                if link.get("href") == self.image and link.get("rel") is None:
                    link.set("rel", "enclosure")
                    link.set("type", image_type(link.get("href")))
            if self.source:
                xml_elem("link", element, href=self.source, rel="related")
            xml_elem("published", element).text = self.published_at.isoformat()
            if self.language:
                element.set("{http://www.w3.org/XML/1998/namespace}lang", self.language)
            self._built["atom"] = element
        return copy.deepcopy(self._built["atom"])

    def rss_entry(self, extensions: bool = True) -> Any:
        """The <item> element with <pubDate> (RFC 822, English names whatever the locale)."""
        if "rss" not in self._built:
            element = super().rss_entry(extensions)
            for name in ("title", "description"):  # plain text, escaped for HTML-minded readers
                child = element.find(name)
                if child is not None:
                    child.text = html.escape(child.text, quote=False)
            xml_elem("pubDate", element).text = format_datetime(self.published_at)
            if self.source:  # the original article, as in Atom (the atom prefix is declared)
                xml_elem(f"{{{ATOM_NS}}}link", element, href=self.source, rel="related")
            self._built["rss"] = element
        return copy.deepcopy(self._built["rss"])
