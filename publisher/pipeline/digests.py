"""Stored digests (each edition's frozen rows): their item lists, renderings and messages.

A digest row is written once and never changed (publisher.pipeline.edition_writer makes them);
what is here reads them: the frozen item list, a rendering in a reader's language, and the
per-recipient message builder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from datetime import datetime

from sqlmodel import Session

from publisher.email.fragments import expand_email, needed
from publisher.email.message import Body, SharedPieces
from publisher.email.outgoing import DigestMail
from publisher.email.render import Fragment, RenderedEmail
from publisher.models import Digest, DigestRendition, utcnow
from publisher.regions.tree import RegionTree
from publisher.settings import Settings
from publisher.store.edition_fragments import load_fragments
from publisher.store.renditions import find_rendition
from publisher.tokens import Tokens


def digest_item_ids(digest: Digest) -> list[int]:
    """The frozen item list of a digest, in the order the email shows it."""
    return [int(i) for i in json.loads(digest.item_ids or "[]")]


def stored_rendition(session: Session, digest: Digest, language: str) -> RenderedEmail:
    """A rendering made when rows were queued (workers only read); the digest's own otherwise;
    whole (the fragments its stored bodies name put back)."""
    found = None
    if language != digest.locale and digest.id is not None:
        found = find_rendition(session, digest_id=digest.id, locale=language)
    return whole(session, digest, rendered_of(digest, found))


def whole(session: Session, digest: Digest, rendered: RenderedEmail) -> RenderedEmail:
    """``rendered`` (a stored body of ``digest``) with the fragments it names put back."""
    return wholes(session, [(digest, rendered)])[0]


def wholes(session: Session, stored: Sequence[tuple[Digest, RenderedEmail]]) -> list[RenderedEmail]:
    """Each stored body made whole, the fragments of all of them read in one go (an archive
    feed lists a year of digests)."""
    shas = needed((body, d.placeholder_key) for d, r in stored for body in (r.html, r.text))
    fragments = fragments_of(session, shas) if shas else {}
    return [expand_email(r, d.placeholder_key, fragments) for d, r in stored]


def fragments_of(session: Session, shas: Collection[str]) -> dict[str, Fragment]:
    """The stored fragments of ``shas``, by hash (absent: not stored)."""
    return {sha: Fragment(h, t, sha) for sha, (h, t) in load_fragments(session, shas).items()}


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
    bodies: tuple[Body, Body] | None = None,
    shared: SharedPieces | None = None,
) -> DigestMail:
    """The per-recipient message builder of a stored digest in one language (default: its own)."""
    return DigestMail(
        digest, settings=settings, tokens=tokens, region_name=tree.get(digest.region).name_en,
        rendered=rendered, language=language, clock=clock, bodies=bodies, shared=shared,
    )  # fmt: skip
