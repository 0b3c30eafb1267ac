"""Choosing a page's language: an explicit ?lang=, then the lang cookie, then Accept-Language.

Pure functions of header values, so the rules are tested without a server.
"""

from __future__ import annotations

from collections.abc import Sequence

from publisher.i18n.context import base_language

MAX_HEADER = 1_000  # longer Accept-Language values are cut, never parsed whole
MAX_RANGES = 20


def accept_language(header: str) -> list[str]:
    """Base languages of an Accept-Language value, best first (q=0 and junk dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header[:MAX_HEADER].split(",")[:MAX_RANGES]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        language = base_language(tag)
        if language and 0 < quality <= 1:
            ranked.append((-quality, index, language))
    return [language for _, _, language in sorted(ranked)]


def negotiate(
    *,
    query: str | None,
    cookie: str | None,
    header: str | None,
    supported: Sequence[str],
    default: str,
) -> tuple[str, bool]:
    """(language, explicit): explicit is True when ?lang= chose it (remember it in a cookie)."""
    asked = base_language(query or "")
    if asked in supported:
        return asked, True
    remembered = base_language(cookie or "")
    if remembered in supported:
        return remembered, False
    for language in accept_language(header or ""):
        if language in supported:
            return language, False
    return default, False
