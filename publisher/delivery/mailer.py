"""Which SMTP server to speak to, and single messages (confirmations) sent the digests' way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parseaddr

from publisher.delivery.embedded import maildir_server
from publisher.delivery.smtp import Outcome, SendResult, SmtpConnection
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


def send_one_message(
    settings: Settings, from_addr: str, to: str, message_bytes: bytes
) -> SendResult:
    """Send one message now (confirmation emails); DeliveryError unless the server took it.

    ``from_addr`` may be a full From header; its address is the envelope sender.
    """
    sender = envelope_sender(from_addr)
    with smtp_target(settings) as target:
        conn = SmtpConnection(target)
        try:
            result = conn.transact(sender, [to], message_bytes)[to]
        finally:
            conn.close()
    if result.outcome is not Outcome.sent:
        raise DeliveryError(f"could not send to {to} via {target.describe()}: {result.describe()}")
    return result
