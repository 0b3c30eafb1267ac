"""Frozen digest bodies that name their sections' fragments instead of holding them.

An edition body is its frame (header, footer) around sections (a heading and its items) that
thousands of editions share. The body a fire stores holds, in each section's place, a marker
made of the digest's random placeholder key and the fragment's content hash; the fragments are
stored once (publisher.store.edition_fragments). ``expand`` puts them back. Bodies stored
before sections were fragments name each item's fragment instead, and read back the same way.
Item text cannot forge a marker: it cannot know the key, which is chosen after the items are
fixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from publisher.email.message import Piece
from publisher.email.render import Fragment, RenderedEmail

SHA_CHARS = 32  # Fragment.sha: 128 bits of SHA-256
_END = "-->"


def _opening(key: str) -> str:
    return f"<!--fragment-{key}-"


def marker(key: str, sha: str) -> str:
    """What a stored body holds in the place of fragment ``sha``."""
    return f"{_opening(key)}{sha}{_END}"


def named(body: str, key: str | None) -> list[str]:
    """The fragment hashes ``body`` names, in order (none in a body stored whole)."""
    if not key:
        return []
    return [part[:SHA_CHARS] for part in body.split(_opening(key))[1:]]


def expand(body: str, key: str | None, fragments: Mapping[str, Fragment], *, html: bool) -> str:
    """``body`` with each marker replaced by its fragment's HTML (or text); LookupError
    names a fragment missing from ``fragments``. A body without markers comes back as it is."""
    if not key or _opening(key) not in body:
        return body
    return "".join(text for text, _ in pieces(body, key, fragments, html=html))


def pieces(
    body: str, key: str | None, fragments: Mapping[str, Fragment], *, html: bool
) -> list[Piece]:
    """``expand`` in parts: the body's own text, and each fragment (a section, an item of a
    body stored before sections were, a constant piece of the frame) keyed by its hash, so the
    message template can reuse its encoding (empty parts left out). Adjacent fragments stay
    apart: joined, they would make a part that only this body has."""
    if not key:
        return [(body, None)]
    parts = body.split(_opening(key))
    out: list[Piece] = [(parts[0], None)] if parts[0] else []
    width = SHA_CHARS + len(_END)
    for part in parts[1:]:
        if part[SHA_CHARS:width] != _END:
            raise ValueError("a fragment marker is cut short")
        sha = part[:SHA_CHARS]
        found = fragments.get(sha)
        if found is None:
            raise LookupError(f"the body names fragment {sha}, which is not stored")
        text = found.html if html else found.text
        if text:
            out.append((text, ("h" if html else "t") + sha))
        if len(part) > width:
            out.append((part[width:], None))
    return out


def expand_email(
    rendered: RenderedEmail, key: str | None, fragments: Mapping[str, Fragment]
) -> RenderedEmail:
    """Both bodies of ``rendered`` expanded (the subject never holds a marker)."""
    return RenderedEmail(
        rendered.subject,
        expand(rendered.html, key, fragments, html=True),
        expand(rendered.text, key, fragments, html=False),
        rendered.language,
    )


def needed(bodies: Iterable[tuple[str, str | None]]) -> set[str]:
    """Every fragment hash named in (body, key) pairs."""
    return {sha for body, key in bodies for sha in named(body, key)}
