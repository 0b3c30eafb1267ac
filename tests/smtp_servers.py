"""Real SMTP servers for the delivery tests: aiosmtpd in-process, capturing and scripted.

``Recorder`` keeps every message per recipient and answers from a script: a reply per recipient
at RCPT or at the end of DATA, "drop" to close the connection without replying, and hooks that
run when a message arrives (to kill a sender, or unsubscribe someone mid-send).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from publisher.delivery.embedded import free_port

DROP = "drop"


class Recorder:
    """An aiosmtpd handler that records messages and misbehaves on request."""

    def __init__(self, *, pipelining: bool = False) -> None:
        self.pipelining = pipelining
        self.rcpt_replies: dict[str, str] = {}
        self.data_replies: dict[str, str] = {}
        self.mail_reply: str | None = None
        self.on_data: Callable[[str, int], None] | None = None
        self.on_mail: Callable[[int], None] | None = None
        self.messages: list[tuple[str, bytes]] = []
        self.sessions = 0
        self.delay = 0.0  # seconds to think before answering the end of DATA
        self.lock = threading.Lock()

    # -- what the tests read --------------------------------------------------------------
    def received(self) -> Counter[str]:
        with self.lock:
            return Counter(rcpt for rcpt, _ in self.messages)

    def parsed(self, rcpt: str) -> EmailMessage:
        with self.lock:
            data = next(d for r, d in self.messages if r == rcpt)
        msg = message_from_bytes(data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg

    # -- aiosmtpd hooks ---------------------------------------------------------------------
    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self.sessions += 1
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.on_mail is not None:
            with self.lock:
                count = len(self.messages)
            self.on_mail(count)
        if self.mail_reply is not None:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address)
        if reply == DROP:
            server.transport.close()
            return "250 never seen"
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        replies = [self.data_replies.get(r) for r in envelope.rcpt_tos]
        reply = next((r for r in replies if r is not None), None)
        if reply is not None and reply != DROP:
            return reply
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.messages.append((rcpt, envelope.original_content))
            count = len(self.messages)
        if self.on_data is not None:
            self.on_data(envelope.rcpt_tos[0], count)
        if reply == DROP:  # the message arrived, but the client never hears so
            server.transport.close()
        return "250 2.0.0 queued"


@contextmanager
def smtp_server(handler: object, **kwargs: Any) -> Iterator[int]:
    """Run ``handler`` on 127.0.0.1 on a free port; yields the port."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()
