"""Helpers for the bounce tests: a digest sent through a real SMTP server, fixture reports."""

from __future__ import annotations

import smtplib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from publisher.addresses import suppression_hash
from publisher.bounces.inbound import InboundService
from publisher.bounces.policy import Outcome
from publisher.delivery.embedded import free_port
from publisher.models import Subscriber, Suppression
from publisher.pipeline.send import send_digests
from publisher.runtime import Runtime
from tests.delivery_data import REGION, WEEK, add_subscribers, rows, seed_items, use_smtp
from tests.smtp_servers import Recorder, smtp_server

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
BOUNCE_ADDRESS = "bounces@example.org"


class EnvelopeRecorder(Recorder):
    """A Recorder that also keeps each recipient's envelope sender (MAIL FROM)."""

    def __init__(self) -> None:
        super().__init__()
        self.senders: dict[str, str] = {}

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.senders.update(dict.fromkeys(envelope.rcpt_tos, envelope.mail_from))
        return await super().handle_DATA(server, session, envelope)


@dataclass
class Sent:
    """A digest sent to readers: (id, email) pairs, each one's envelope sender and Message-ID."""

    readers: list[tuple[int, str]]
    senders: dict[str, str]
    message_ids: dict[str, str]
    row_ids: dict[int, int]


def with_verp(rt: Runtime, **settings: object) -> None:
    rt.settings = rt.settings.model_copy(update={"bounce_address": BOUNCE_ADDRESS, **settings})


def send_digest(rt: Runtime, n: int, *, prefix: str = "reader") -> Sent:
    """The week's Central America digest sent to ``n`` new readers through aiosmtpd."""
    seed_items(rt)
    readers = add_subscribers(rt, n, prefix=prefix)
    recorder = EnvelopeRecorder()
    with smtp_server(recorder) as port:
        use_smtp(rt, port)
        report = send_digests(rt, regions=[REGION], week=WEEK, early=True)
    assert report.run.sent == n
    ledger = rows(rt)
    ids = {email: str(recorder.parsed(email)["Message-ID"]) for _, email in readers}
    return Sent(readers, dict(recorder.senders), ids, {s: ledger[s].id or 0 for s, _ in readers})


def report(name: str, *, verp: str, rcpt: str, msgid: str = "<none@example.org>") -> bytes:
    """A fixture report addressed to ``verp`` about a message to ``rcpt``."""
    raw = (FIXTURES / name).read_bytes()
    for mark, value in (
        (b"{{VERP}}", verp), (b"{{RCPT}}", rcpt), (b"{{RCPT_LOCAL}}", rcpt.split("@")[0]),
        (b"{{MSGID}}", msgid),
    ):  # fmt: skip
        raw = raw.replace(mark, value.encode())
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def suppression_reason(rt: Runtime, email: str) -> str | None:
    with rt.session() as session:
        found = session.get(Suppression, suppression_hash(email))
        return found.reason if found else None


def status(rt: Runtime, subscriber_id: int) -> str:
    with rt.session() as session:
        sub = session.get(Subscriber, subscriber_id)
        assert sub is not None
        return sub.status


def smtp_report(port: int, raw: bytes, rcpt: str) -> tuple[int, bytes]:
    """Send one report to the receiver as a relay would (null sender); its final reply."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("relay.example.org")
        client.mail("<>")
        client.rcpt(rcpt)
        return client.data(raw)


class Outcomes:
    """Collects an InboundService's outcomes and lets a test wait for a number of them."""

    def __init__(self) -> None:
        self.seen: list[Outcome] = []
        self.cond = threading.Condition()

    def __call__(self, outcome: Outcome, n: int) -> None:
        with self.cond:
            self.seen.extend([outcome] * n)
            self.cond.notify_all()

    def wait(self, count: int, timeout: float = 20.0) -> list[Outcome]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.seen) >= count, timeout), self.seen
            return list(self.seen)


@contextmanager
def receiver(rt: Runtime) -> Iterator[tuple[int, Outcomes]]:
    """The embedded receiver on a free port, in a thread; yields (port, outcomes)."""
    service = InboundService(rt, port=free_port())
    outcomes = Outcomes()
    service.on_outcome = outcomes
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    assert service.ready.wait(10)
    try:
        yield service.port, outcomes
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive()


def keep_report(rt: Runtime, raw: bytes, source: str = "smtp") -> int:
    """Store one report as an entrance would; its id."""
    from publisher.bounces.inbound import keep

    return keep(rt, raw=raw, source=source)[0]
