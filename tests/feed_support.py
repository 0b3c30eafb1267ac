"""What a feed reader displays for a value feedparser read, whatever type feedparser gave it."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any


class _Shown(HTMLParser):
    """The text an HTML value displays: tags dropped, character references resolved."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def shown(detail: Any) -> str:
    """The displayed text of a feedparser ``*_detail``: "<b>x</b>" as HTML shows as "x"."""
    if detail.type in ("text/html", "application/xhtml+xml"):
        parser = _Shown()
        parser.feed(detail.value)
        parser.close()
        return "".join(parser.parts)
    assert detail.type == "text/plain", detail.type
    return str(detail.value)
