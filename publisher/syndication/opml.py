"""OPML 2.0 (http://opml.org/spec2.opml): the list of every feed, for one-click subscription.

Readers import it to follow many regions at once. Only the RSS flavour of each channel is
listed (OPML's type="rss" outline); the date comes from the caller, never from the clock.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime

from publisher.syndication.entries import FeedChannel, text_problem, utc


def render_opml(channels: Sequence[FeedChannel], *, title: str, date: datetime | None) -> bytes:
    """An OPML 2.0 document with one rss outline per channel, in the order given."""
    problem = text_problem(title)
    if problem:
        raise ValueError(f"OPML title {problem}")
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    if date is not None:
        if date.utcoffset() is None:
            raise ValueError("OPML date has no time zone")
        ET.SubElement(head, "dateModified").text = format_datetime(utc(date))
    body = ET.SubElement(root, "body")
    for channel in channels:
        ET.SubElement(
            body,
            "outline",
            type="rss",
            text=channel.title,
            title=channel.title,
            description=channel.description,
            language=channel.language,
            xmlUrl=channel.feed_url("rss"),
            htmlUrl=channel.html_url,
        )
    ET.indent(root, space="  ")
    data = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return data + b"\n"
