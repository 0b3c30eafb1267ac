"""The one check every item link passes at the door, whatever path brings it in.

Files (CSV, JSON, feeds), ``publisher items add``, the admin API and edits all reach the store
through ``publisher.intake.records.clean_record``, which calls ``check_link``. It is at least as
strict as the feed writer (``publisher.syndication.entries.url_problem``), so a link that gets
in renders in every feed; a record whose link fails is reported as FILE:LINE: reason (a 422 in
the API) and skipped, never stored with a link that would drop it from the feeds.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

from publisher.errors import InputError

MAX_LINK = 2_000
MAX_HOST = 253
_SCHEME = re.compile(r"https?://", re.IGNORECASE)
_UNSAFE = frozenset('<>"\\^`{|}')  # printable, yet not allowed unescaped in a URL (RFC 3986)
_ASCII_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_IPV4_LIKE = re.compile(r"[0-9.]+")
_KINDS = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character (such as a bidi override)",
    "Cs": "a lone surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Zs": "a space",
}


def check_link(value: str | None, *, name: str = "link") -> str | None:
    """``value`` as a link every feed format can carry, None when blank; InputError why not."""
    if value is None or not value.strip():
        return None
    link = value.strip()
    if len(link) > MAX_LINK:
        raise InputError(f"{name} is {len(link):,} characters; the limit is {MAX_LINK:,}")
    if " " in link or not link.isprintable() or not _UNSAFE.isdisjoint(link):
        raise InputError(f"{name} holds {_bad_character(link)}")
    if not _SCHEME.match(link):
        raise InputError(f"{name} must be an absolute http(s) URL, not {link[:80]!r}")
    try:
        parts = urlsplit(link)
        port = parts.port  # raises ValueError when not a number from 0 to 65535
    except ValueError as e:
        raise InputError(f"{name} has a malformed host or port ({e})") from None
    if "@" in parts.netloc:
        raise InputError(f"{name} must not carry a user name or password (user@host)")
    problem = host_problem(parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc)
    if problem:
        raise InputError(f"{name} host {problem}")
    return link


def host_problem(host: str) -> str | None:
    """Why ``host`` (as written in a URL, IPv6 in brackets) is not a valid host, or None."""
    if host.endswith(":"):  # an empty port ("example.org:") is allowed by RFC 3986
        host = host[:-1]
    if not host:
        return "is missing"
    if host.startswith("["):
        if not host.endswith("]"):
            return f"{host[:60]!r} is not a valid IPv6 address"
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"{host[:60]!r} is not a valid IPv6 address"
        return None
    if _IPV4_LIKE.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"{host[:60]!r} is not a valid IPv4 address"
        return None
    name = host[:-1] if host.endswith(".") else host
    if len(name) > MAX_HOST:
        return f"is {len(name)} characters; a host name has at most {MAX_HOST}"
    for label in name.split("."):
        if not _label_ok(label):
            return f"{host[:60]!r} is not a valid host name"
    return None


def _label_ok(label: str) -> bool:
    if label.isascii():
        return _ASCII_LABEL.fullmatch(label.lower()) is not None
    # An internationalised label: letters, marks, digits and hyphens that IDNA can encode.
    if not all(c == "-" or unicodedata.category(c)[0] in "LMN" for c in label):
        return False
    try:
        encoded = label.encode("idna")
    except UnicodeError:
        return False
    return 0 < len(encoded) <= 63 and not label.startswith("-") and not label.endswith("-")


def _bad_character(link: str) -> str:
    for c in link:
        if c == " ":
            return "a space (write it as %20)"
        if c in _UNSAFE:
            return f"{c!r}, which a URL cannot hold unescaped (write it as %{ord(c):02X})"
        if not c.isprintable():
            kind = _KINDS.get(unicodedata.category(c), "a character a URL cannot hold")
            return f"U+{ord(c):04X}, {kind}"
    return "a character a URL cannot hold"
