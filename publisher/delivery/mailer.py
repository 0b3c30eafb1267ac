"""The one outgoing-mail interface: ``Mailer``, its SMTP and in-memory forms, and SMTP_URL's target.

Digests (through the send engine), confirmations and test sends all hand finished messages to a
``Mailer``: ``smtp_mailer`` opens a pool on SMTP_URL (or the embedded Maildir server), and
``MemoryMailer`` keeps them in a list for unit tests that need no SMTP server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from email.utils import parseaddr
from typing import Protocol

from publisher.delivery.embedded import maildir_server
from publisher.delivery.smtp import Outcome, SendResult, SmtpPool
from publisher.delivery.smtp_url import SmtpTarget, parse_smtp_url
from publisher.errors import ConfigError, DeliveryError
from publisher.settings import Settings


@contextmanager
def smtp_target(settings: Settings) -> Iterator[SmtpTarget]:
    """SMTP_URL's target, or the embedded Maildir server (var/mail/) while the block runs."""
    if settings.smtp_url.strip():
        yield parse_smtp_url(settings.smtp_url)
        return
    with maildir_server(settings.mail_dir) as target:
        yield target


def envelope_sender(from_header: str) -> str:
    """The bare address of a From header, used as MAIL FROM."""
    address = parseaddr(from_header)[1]
    if "@" not in address:
        raise ConfigError(f"PUBLISHER_FROM has no address: {from_header!r}")
    return address


class Mailer(Protocol):
    """Where finished messages leave: one transaction, each recipient's result (thread-safe)."""

    def send(
        self, sender: str, recipients: Sequence[str], message: bytes
    ) -> dict[str, SendResult]: ...


@contextmanager
def smtp_mailer(settings: Settings, connections: int = 1) -> Iterator[SmtpPool]:
    """A Mailer on SMTP_URL (or the embedded server) with up to ``connections`` connections."""
    with smtp_target(settings) as target, SmtpPool(target, connections) as pool:
        yield pool


class MemoryMailer:
    """A Mailer that keeps every message (sender, recipients, bytes) in ``sent``: unit tests."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[str, ...], bytes]] = []
        self._lock = threading.Lock()

    def send(self, sender: str, recipients: Sequence[str], message: bytes) -> dict[str, SendResult]:
        with self._lock:
            self.sent.append((sender, tuple(recipients), message))
        return {r: SendResult(Outcome.sent, 250, "kept in memory") for r in recipients}


def send_one(mailer: Mailer, sender: str, to: str, message: bytes, *, via: str = "") -> SendResult:
    """Send one message to one address; DeliveryError unless the server took it."""
    result = mailer.send(sender, [to], message)[to]
    if result.outcome is not Outcome.sent:
        where = f" via {via}" if via else ""
        raise DeliveryError(f"could not send to {to}{where}: {result.describe()}")
    return result


def send_one_message(
    settings: Settings, from_addr: str, to: str, message_bytes: bytes
) -> SendResult:
    """Send one message now (confirmation emails); DeliveryError unless the server took it.

    ``from_addr`` may be a full From header; its address is the envelope sender.
    """
    sender = envelope_sender(from_addr)
    with smtp_target(settings) as target, SmtpPool(target, 1) as pool:
        return send_one(pool, sender, to, message_bytes, via=target.describe())
