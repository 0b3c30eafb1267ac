"""Helpers shared by the web tests: an app on the `runtime` fixture with a recording mailer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from fastapi import FastAPI
from fastapi.testclient import TestClient

from publisher.delivery.embedded import free_port
from publisher.pipeline.feeds import build_store_feeds
from publisher.pipeline.intake import import_records, read_source
from publisher.pipeline.subscription import ConfirmationMailer
from publisher.runtime import Runtime
from publisher.web.app import create_app
from publisher.web.deps import WebState
from publisher.web.ratelimit import SlidingWindow
from tests.conftest import SEED

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
_LINK = re.compile(r"https?://[^\s\"<>]+/confirm/[A-Za-z0-9_.\-]+")


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Outbox:
    """Messages the app tried to send, as (recipient, raw bytes)."""

    sent: list[tuple[str, bytes]] = field(default_factory=list)

    def deliver(self, to: str, message: bytes) -> None:
        self.sent.append((to, message))

    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(raw, policy=policy.default) for _, raw in self.sent]  # type: ignore[misc]

    def confirm_links(self) -> list[str]:
        links = []
        for msg in self.messages():
            body = msg.get_body(("plain",))
            assert body is not None
            links += _LINK.findall(body.get_content())
        return links


@dataclass
class Web:
    app: FastAPI
    client: TestClient
    runtime: Runtime
    outbox: Outbox
    clock: FakeClock

    @property
    def state(self) -> WebState:
        state: WebState = self.app.state.web
        return state

    def flush(self) -> None:
        self.state.mailer.flush()


def seed(runtime: Runtime) -> None:
    """The demo items, with regions inferred, and their feeds built."""
    with runtime.session() as session:
        import_records(
            session,
            records=read_source(str(SEED), "seed"),
            tree=runtime.tree,
            inferrer=runtime.inferrer,
            now=runtime.now(),
        )
    with runtime.session() as session:
        build_store_feeds(session, settings=runtime.settings, tree=runtime.tree)


def make_web(runtime: Runtime, **settings_overrides: object) -> Iterator[Web]:
    settings = runtime.settings.model_copy(update=settings_overrides)
    outbox = Outbox()
    clock = FakeClock()
    app = create_app(
        settings,
        runtime=runtime,
        mailer=ConfirmationMailer(runtime, settings=settings, deliver=outbox.deliver),
        ip_limit=SlidingWindow(limit=20, window=600, clock=clock),
        address_limit=SlidingWindow(limit=3, window=3600, clock=clock),
    )
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield Web(app, client, runtime, outbox, clock)


def seeded_web(runtime: Runtime) -> Iterator[Web]:
    """The app over the seeded store (use as a fixture body: ``yield from seeded_web(runtime)``)."""
    seed(runtime)
    yield from make_web(runtime)


class Capture:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), bytes(content)))
        return "250 OK"


def smtp_capture() -> Iterator[tuple[str, Capture]]:
    """A real SMTP server on a free 127.0.0.1 port: (SMTP_URL, handler)."""
    handler = Capture()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}", handler
    finally:
        controller.stop()
