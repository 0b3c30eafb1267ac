"""The digest archive: which digests are public, their web copy, and a per-region Atom feed.

A digest becomes public once it has gone out to at least one reader (a ``sent`` ledger row, or
a digest status saying it is being or was sent), so "view in browser" works from the first
email on and nothing assembled but never sent is shown. The web copy is the stored HTML with
the per-recipient placeholders replaced by neutral values: it never holds anyone's address
or token.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime

from sqlmodel import Session

from publisher.email.placeholders import Placeholders
from publisher.email.render import public_copy
from publisher.models import Digest
from publisher.regions.tree import Region
from publisher.settings import Settings
from publisher.store import digests

ARCHIVE_LIMIT = 52
_WEEK = re.compile(r"\d{4}-W\d{2}")
ATOM_NS = "http://www.w3.org/2005/Atom"


def archived_digests(session: Session, *, region: str, limit: int = ARCHIVE_LIMIT) -> list[Digest]:
    """A region's public digests, newest week first."""
    return digests.archived_digests(session, region=region, limit=limit)


def find_digest(session: Session, *, region: str, week: str) -> Digest | None:
    """The public digest of ``region`` for ``week`` (e.g. 2026-W48), or None."""
    if not _WEEK.fullmatch(week) or len(region) > 64:
        return None
    return digests.find_public_digest(session, region=region, week=week)


def web_copy(digest: Digest, *, settings: Settings, html: str | None = None) -> str:
    """The digest's HTML (or ``html``, one of its renditions, which share its markers) as anyone
    may see it: no address, links to the site instead of tokens."""
    marks = Placeholders.of(digest.placeholder_key)
    body = digest.html if html is None else html
    return public_copy(body, base_url=settings.base_url, html=True, marks=marks)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def archive_atom(
    digests: list[Digest], *, texts: Mapping[int | None, str], region: Region, settings: Settings
) -> bytes:
    """An Atom 1.0 feed of a region's sent digests, one entry per week (deterministic);
    ``texts``: each digest's whole plain-text body, by id."""
    base = settings.base_url
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        node = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            node.text = text
        return node

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "id", f"{base}/archive/{region.slug}.atom")
    sub(feed, "title", f"{settings.site_title}: {region.name_en} weekly digests")
    newest = max((d.created for d in digests), default=datetime(1970, 1, 1, tzinfo=UTC))
    sub(feed, "updated", _rfc3339(newest))
    sub(
        feed,
        "link",
        rel="self",
        type="application/atom+xml",
        href=f"{base}/archive/{region.slug}.atom",
    )
    sub(feed, "link", rel="alternate", type="text/html", href=f"{base}/regions/{region.slug}")
    author = sub(feed, "author")
    sub(author, "name", settings.site_title)
    for digest in digests:
        entry = sub(feed, "entry")
        url = f"{base}/archive/{region.slug}/{digest.week}"
        sub(entry, "id", url)
        sub(entry, "title", digest.subject or f"{region.name_en}, {digest.week}")
        sub(entry, "updated", _rfc3339(digest.created))
        sub(entry, "link", rel="alternate", type="text/html", href=url)
        marks = Placeholders.of(digest.placeholder_key)
        text = public_copy(texts[digest.id], base_url=base, html=False, marks=marks)
        sub(entry, "content", text, type="text")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
