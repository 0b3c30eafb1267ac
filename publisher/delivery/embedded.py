"""The embedded SMTP server used when SMTP_URL is empty: aiosmtpd on 127.0.0.1 writing a Maildir.

The sender still speaks real SMTP to it, so the demo exercises the same path as production; every
accepted recipient gets its own file under var/mail/new/ with Return-Path and Delivered-To on top.
"""

from __future__ import annotations

import mailbox
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from publisher.delivery.smtp_url import SmtpTarget
from publisher.errors import DeliveryError


class MaildirHandler:
    """aiosmtpd handler that delivers each message once per recipient into a Maildir."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(path, create=True)
        self._lock = threading.Lock()
        self.delivered = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        with self._lock:
            for rcpt in envelope.rcpt_tos:
                head = f"Return-Path: <{envelope.mail_from}>\r\nDelivered-To: {rcpt}\r\n"
                self.maildir.add(head.encode("utf-8", "replace") + content)
                self.delivered += 1
        return "250 2.0.0 OK: delivered to Maildir"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def maildir_server(path: Path, *, host: str = "127.0.0.1") -> Iterator[SmtpTarget]:
    """Run the Maildir SMTP server on a free port for the duration of the block."""
    handler = MaildirHandler(path)
    last: Exception | None = None
    for _ in range(5):  # another process may take the free port between probing and binding
        controller = Controller(handler, hostname=host, port=free_port(host))
        try:
            controller.start()
        except (OSError, RuntimeError) as e:
            last = e
            continue
        try:
            yield SmtpTarget(host=host, port=controller.port, starttls="never")
        finally:
            controller.stop()
        return
    raise DeliveryError(f"cannot start the embedded SMTP server on {host}: {last}") from last
