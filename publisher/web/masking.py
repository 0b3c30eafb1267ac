"""Secrets out of log lines: the passwords in SMTP_URL and DATABASE_URL, even when malformed.

A malformed URL is where passwords leak: ``smtp://user:pa#ss@host`` makes the parser read
``pa`` as a port and quote it in its error. So the user-info part (all before the last ``@``)
is masked whole and in every piece it could be cut into (at ``#``, ``?``, ``/``, ``@``, ``:``),
and so is any ``scheme://...@`` left in the text.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
_CUTS = re.compile(r"[#?/@:]")
_USERINFO = re.compile(r"(?<=://)[^/?#\s]*@")


def _candidates(url: str) -> set[str]:
    rest = url.strip().split("://", 1)[-1]
    found: set[str] = set()
    if "@" in rest:
        userinfo = rest.rpartition("@")[0]
        found.add(userinfo)
        found.add(userinfo.partition(":")[2])
    pieces = set()
    for text in found:
        for value in (text, unquote(text)):
            pieces.add(value)
            pieces.update(_CUTS.split(value))
    return {p for p in pieces if len(p) >= 3 and not p.isdigit()}


def mask(text: str, *urls: str) -> str:
    """``text`` with any password-like part of ``urls`` (and any URL user-info) replaced."""
    for piece in sorted(set().union(*(_candidates(u) for u in urls if u)), key=len, reverse=True):
        text = text.replace(piece, MASK)
    return _USERINFO.sub(MASK + "@", text)
