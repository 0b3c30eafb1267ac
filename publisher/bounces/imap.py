"""Polling a bounce mailbox over IMAP (IMAP_URL): store each unseen message, then mark it seen.

    imaps://user:password@imap.example.org[:993]/INBOX     (implicit TLS)
    imap://user:password@imap.example.org[:143]/Bounces    (STARTTLS when offered)

A message is marked \\Seen only after it is committed, so a crash in between stores it again
on the next poll, which the report's idempotency key turns into nothing.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from publisher.errors import ConfigError

if TYPE_CHECKING:
    from publisher.runtime import Runtime

log = logging.getLogger(__name__)
MAX_MESSAGE = 10 * 1024 * 1024
BATCH = 200


@dataclass(frozen=True, slots=True)
class ImapTarget:
    """Where the bounce mailbox is and how to log in."""

    host: str
    port: int
    tls: bool
    user: str
    password: str
    mailbox: str


def parse_imap_url(url: str) -> ImapTarget:
    """IMAP_URL's parts, or ConfigError naming what is wrong (never echoing the password)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("imap", "imaps") or not parts.hostname:
        raise ConfigError("PUBLISHER_IMAP_URL must look like imaps://user:pass@host/INBOX")
    if not parts.username:
        raise ConfigError("PUBLISHER_IMAP_URL has no user name")
    tls = parts.scheme == "imaps"
    mailbox = unquote(parts.path.lstrip("/")) or "INBOX"
    if any(c in mailbox for c in '\r\n"\\'):
        raise ConfigError("PUBLISHER_IMAP_URL names a mailbox with forbidden characters")
    return ImapTarget(
        parts.hostname, parts.port or (993 if tls else 143), tls, unquote(parts.username),
        unquote(parts.password or ""), mailbox,
    )  # fmt: skip


def _connect(target: ImapTarget, timeout: float) -> imaplib.IMAP4:
    if target.tls:
        return imaplib.IMAP4_SSL(
            target.host, target.port, ssl_context=ssl.create_default_context(), timeout=timeout
        )
    conn = imaplib.IMAP4(target.host, target.port, timeout=timeout)
    if "STARTTLS" in conn.capabilities:
        conn.starttls(ssl.create_default_context())
    elif target.host not in ("127.0.0.1", "::1", "localhost"):
        conn.shutdown()
        raise ConfigError(f"{target.host} offers no STARTTLS: use imaps:// (no clear passwords)")
    return conn


def poll_mailbox(rt: Runtime, url: str, *, timeout: float = 30.0) -> int:
    """Store every unseen message of the mailbox, marking each \\Seen once stored; how many."""
    from publisher.bounces.inbound import keep

    target = parse_imap_url(url)
    conn = _connect(target, timeout)
    stored = 0
    try:
        conn.login(target.user, target.password)
        status, _ = conn.select(f'"{target.mailbox}"')
        if status != "OK":
            raise ConfigError(f"IMAP mailbox {target.mailbox!r} cannot be opened")
        status, data = conn.uid("SEARCH", "UNSEEN")
        uids = (data[0] or b"").split() if status == "OK" and data else []
        for uid in (u.decode("ascii", "replace") for u in uids[:BATCH]):
            status, parts = conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((p[1] for p in parts or [] if isinstance(p, tuple) and len(p) > 1), None)
            if status != "OK" or not isinstance(raw, bytes):
                log.warning("IMAP message %s could not be fetched", uid)
                continue
            keep(rt, raw=raw[:MAX_MESSAGE], source="imap", envelope_to=target.mailbox)
            conn.uid("STORE", uid, "+FLAGS", "(\\Seen)")
            stored += 1
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            conn.logout()
    return stored
