"""Stored digests (each edition's frozen rows): their item lists, renderings and messages.

A digest row is written once and never changed (publisher.pipeline.edition_writer makes them);
what is here reads them: the frozen item list, a rendering in a reader's language, and the
per-recipient message builder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session

from publisher.email.outgoing import DigestMail
from publisher.email.render import RenderedEmail
from publisher.models import Digest, DigestRendition, utcnow
from publisher.regions.tree import RegionTree
from publisher.settings import Settings
from publisher.store.renditions import find_rendition
from publisher.tokens import Tokens


def digest_item_ids(digest: Digest) -> list[int]:
    """The frozen item list of a digest, in the order the email shows it."""
    return [int(i) for i in json.loads(digest.item_ids or "[]")]


def stored_rendition(session: Session, digest: Digest, language: str) -> RenderedEmail:
    """A rendering made when rows were queued (workers only read); the digest's own otherwise."""
    found = None
    if language != digest.locale and digest.id is not None:
        found = find_rendition(session, digest_id=digest.id, locale=language)
    return rendered_of(digest, found)


def rendered_of(digest: Digest, rendition: DigestRendition | None) -> RenderedEmail:
    """The bodies to send: the rendition in the reader's language if one was stored, else the
    digest's own."""
    if rendition is not None:
        return RenderedEmail(rendition.subject, rendition.html, rendition.text, rendition.locale)
    return RenderedEmail(digest.subject, digest.html, digest.text, digest.locale)


def digest_mail(
    digest: Digest,
    *,
    settings: Settings,
    tree: RegionTree,
    tokens: Tokens,
    rendered: RenderedEmail | None = None,
    language: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> DigestMail:
    """The per-recipient message builder of a stored digest in one language (default: its own)."""
    return DigestMail(
        digest, settings=settings, tokens=tokens, region_name=tree.get(digest.region).name_en,
        rendered=rendered, language=language, clock=clock,
    )  # fmt: skip
