"""Cleaning text at the door, so nothing downstream (XML, email headers, HTML) meets bad input.

Characters XML 1.0 forbids are removed, lone surrogates are refused (they cannot be encoded),
markup is stripped with nh3 and unescaped back to plain text, and sizes are capped.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata

import nh3

from publisher.errors import InputError

MAX_TITLE = 500
MAX_SUMMARY = 20_000
MAX_GUID = 300
MAX_ALT = 300

# XML 1.0 Char production: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
# Line, page and record separators that are not line ends in our files: inside a field they
# separate words, so they become spaces (before the other controls are removed).
_SEPARATORS = dict.fromkeys(map(ord, "\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029"), " ")
_SURROGATE = re.compile("[\ud800-\udfff]")
_TAGLIKE = re.compile(r"<[A-Za-z/!?]|&[#A-Za-z]")


def has_lone_surrogate(value: str) -> bool:
    """Whether ``value`` holds a surrogate code point that no UTF encoding can carry."""
    return _SURROGATE.search(value) is not None


def strip_forbidden(value: str) -> str:
    """Remove the characters XML 1.0 forbids (NUL, most C0 controls, U+FFFE, U+FFFF)."""
    return _XML_FORBIDDEN.sub("", value)


def to_plain(value: str) -> str:
    """Drop any markup (script and style bodies included) and return plain text."""
    if not _TAGLIKE.search(value):
        return value
    return strip_forbidden(html.unescape(nh3.clean(value, tags=set())))


def clean_field(value: str | None, *, name: str, limit: int, required: bool = False) -> str:
    """Return ``value`` as clean single-spaced plain text, or raise InputError saying why not."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InputError(f"{name} must be text, not {type(value).__name__}")
    if not (value.isascii() and value.isprintable()):
        if has_lone_surrogate(value):
            raise InputError(f"{name} holds a lone surrogate (invalid Unicode)")
        value = unicodedata.normalize("NFC", strip_forbidden(value.translate(_SEPARATORS)))
    text = " ".join(to_plain(value).split())
    if required and not text:
        raise InputError(f"{name} is empty")
    if len(text) > limit:
        raise InputError(f"{name} is {len(text):,} characters; the limit is {limit:,}")
    return text


def content_guid(title: str, summary: str) -> str:
    """A stable identity for items without one: a hash of the normalised title and summary."""
    norm = " ".join(f"{title}\n{summary}".casefold().split())
    return "sha256:" + hashlib.sha256(norm.encode("utf-8")).hexdigest()[:40]
