"""The embedded report receiver: an SMTP server (aiosmtpd) the relay forwards bounces to.

Every message is committed to ``bounce_reports`` before the 250 goes back, so a report the
relay was told we have is never lost; applying happens after, in the service's applier
thread, which also applies whatever a killed process left pending when it starts. A report
that cannot be stored gets a 451 (the relay keeps it and retries); one that cannot be read is
stored anyway and marked, never stopping the receiver.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from aiosmtpd.controller import Controller

from publisher.bounces import policy
from publisher.bounces.imap import poll_mailbox
from publisher.logs import event
from publisher.runtime import Runtime
from publisher.store.bounces import report_key, store_report

log = logging.getLogger(__name__)
MAX_REPORT = 10 * 1024 * 1024
SWEEP_EVERY = 60.0


def idempotency_basis(raw: bytes) -> bytes:
    """A report's identity: its Message-ID with a hash of its body (the same report by SMTP and
    by IMAP differs only in trace headers), or all its bytes when it has no Message-ID."""
    try:
        head = BytesHeaderParser(policy=compat32).parsebytes(raw[:65536], headersonly=True)
        msgid = " ".join(str(head.get("Message-ID", "")).split())
    except Exception:
        msgid = ""
    if not msgid:
        return b"raw:" + raw
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    body = raw[min(ends) :].lstrip(b"\r\n") if ends else b""
    return b"msgid:" + msgid.encode("utf-8", "replace") + b"\0" + hashlib.sha256(body).digest()


def keep(rt: Runtime, *, raw: bytes, source: str, envelope_to: str = "") -> tuple[int, bool]:
    """Store one report (committed when this returns); (its id, whether it is new)."""
    with rt.session() as session:
        return store_report(
            session, key=report_key(idempotency_basis(raw)), source=source, raw=raw,
            envelope_to=envelope_to, now=rt.now(),
        )  # fmt: skip


class ReportHandler:
    """aiosmtpd handler: store each message, then answer; wake the applier."""

    def __init__(self, rt: Runtime, wake: threading.Event) -> None:
        self.rt = rt
        self.wake = wake
        self.stored = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= 50:
            return "452 4.5.3 too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        rcpts = " ".join(str(r) for r in envelope.rcpt_tos)
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(
                None, lambda: keep(self.rt, raw=raw, source="smtp", envelope_to=rcpts)
            )
        except Exception:
            log.exception("could not store an inbound report")
            return "451 4.3.0 could not store the report; try again later"
        self.stored += 1
        self.wake.set()
        return "250 2.0.0 report stored"


class InboundService:
    """The receiver (when a port is given), the IMAP poller (IMAP_URL) and the applier."""

    def __init__(self, rt: Runtime, *, port: int = 0, host: str | None = None) -> None:
        self.rt = rt
        self.port = port
        self.host = host or rt.settings.inbound_host
        self.wake = threading.Event()
        self.handler = ReportHandler(rt, self.wake)
        self.outcomes: Counter[policy.Outcome] = Counter()
        self.on_outcome: Callable[[policy.Outcome, int], None] | None = None
        self.ready = threading.Event()

    def _sweep(self) -> None:
        try:
            done = policy.sweep(self.rt)
        except Exception:
            log.exception("applying bounce reports failed; they stay pending")
            return
        for outcome, n in done.items():
            self.outcomes[outcome] += n
            if self.on_outcome is not None:
                self.on_outcome(outcome, n)
            event(log, "bounces.applied", state=outcome.state, kind=outcome.kind, count=n)

    def _poll(self) -> None:
        if not self.rt.settings.imap_url:
            return
        try:
            stored = poll_mailbox(self.rt, self.rt.settings.imap_url)
        except Exception as e:
            event(log, "bounces.imap_failed", level=logging.WARNING, error=str(e)[:300])
            return
        if stored:
            self.wake.set()

    def run(self, stop: threading.Event) -> None:
        """Receive and apply until ``stop`` is set; pending reports are applied first."""
        controller = None
        if self.port:
            controller = Controller(
                self.handler, hostname=self.host, port=self.port,
                data_size_limit=MAX_REPORT, server_hostname="publisher-inbound",
            )  # fmt: skip
            controller.start()
            event(log, "inbound.listening", host=self.host, port=self.port)
        self.ready.set()

        def wake_on_stop() -> None:  # the loop otherwise sleeps until a report or the next poll
            stop.wait()
            self.wake.set()

        threading.Thread(target=wake_on_stop, name="inbound-stop", daemon=True).start()
        every = float(self.rt.settings.imap_every)
        try:
            self._sweep()
            next_poll = time.monotonic()
            while not stop.is_set():
                if time.monotonic() >= next_poll:
                    self._poll()
                    next_poll = time.monotonic() + every
                self.wake.wait(timeout=max(0.0, min(SWEEP_EVERY, next_poll - time.monotonic())))
                self.wake.clear()
                if stop.is_set():
                    break
                self._sweep()
        finally:
            if controller is not None:
                controller.stop()
