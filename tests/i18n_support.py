"""The pseudo-locale: every catalog message wrapped in ⟦…⟧, and the check that finds text outside.

``pseudo_catalog()`` builds translations from messages.pot in which each msgstr is its msgid
between ⟦ and ⟧; installed for English (``pseudo_english``), every interface text that comes
from a catalog shows up marked. ``unmarked(text, data)`` is what is left of a page or an email
once the marked spans and the data (item text, region names, addresses, dates, numbers, URLs)
are taken out: it must hold no letter.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from publisher.i18n import context
from publisher.i18n.catalogs import LOCALE_DIR

OPEN, CLOSE = "⟦", "⟧"
# Names that are not translated in any language (formats and file names), and language
# autonyms in the switch (each language's own name is data).
PROPER = (
    "index.opml",
    "JSON Feed",
    "OPML",
    "RSS",
    "Atom",
    "JSON",
    "English",
    "Español",
    "Português",
)
_MARKED = re.compile(f"{OPEN}[^{OPEN}{CLOSE}]*{CLOSE}")
_URL = re.compile(r"(?:https?://|/)[^\s\"<>]*")
_EMAIL = re.compile(r"[^\s@<>]+@[^\s@<>]+")
_LETTER = re.compile(r"[^\W\d_]")


def pseudo_catalog() -> Translations:
    """Translations where every message of messages.pot is marked."""
    with (LOCALE_DIR / "messages.pot").open("rb") as f:
        template = read_po(f)
    catalog = Catalog(locale="en")
    for message in template:
        if not message.id:
            continue
        if isinstance(message.id, tuple | list):
            string: object = tuple(f"{OPEN}{form}{CLOSE}" for form in message.id)
        else:
            string = f"{OPEN}{message.id}{CLOSE}"
        catalog.add(message.id, string, flags=message.flags)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


@contextmanager
def pseudo_english() -> Iterator[None]:
    """English pages and emails in the pseudo-locale for the duration of the block."""
    context.override("en", pseudo_catalog())
    try:
        yield
    finally:
        context.override("en", None)


class _Visible(HTMLParser):
    """Text a reader can see or hear: text nodes (not script/style) and labelling attributes."""

    ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in self.ATTRIBUTES and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return " ".join(parser.parts)


def _squash(text: str) -> str:
    return " ".join(text.split())


def unmarked(text: str, data: Iterable[str]) -> str:
    """What is left of ``text`` outside marked spans and data; letters in it are unmarked UI."""
    rest = _squash(text)
    while True:  # marked spans may nest (a marked value inside a marked sentence)
        shorter = _MARKED.sub(" ", rest)
        if shorter == rest:
            break
        rest = shorter
    rest = _EMAIL.sub(" ", _URL.sub(" ", rest))
    for value in sorted({_squash(d) for d in data if d.strip()}, key=len, reverse=True):
        rest = rest.replace(value, " ")
    for name in PROPER:
        rest = rest.replace(name, " ")
    return _squash(rest)


def letters(text: str) -> bool:
    return bool(_LETTER.search(text))
