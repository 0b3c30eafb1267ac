"""The durable outbox (issue 9, defect 7): a signup's confirmation survives any crash.

Real SMTP servers (aiosmtpd, scripted), real databases, and for the crash a real `publisher serve`
killed with SIGKILL right after a signup returned, while its confirmation sat at the server's
end of DATA: restarted, it sends the confirmation again (a second one is better than none).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from publisher.delivery.embedded import free_port
from publisher.models import OutboxState, SubscriberStatus
from publisher.pipeline.outbox import OutboxDeliverer
from publisher.pipeline.subscription import signup
from publisher.settings import Settings
from publisher.store import outbox as store
from publisher.store.subscribers import get_by_email, suppression_reason
from tests.conftest import FixedClockRuntime
from tests.service_support import processes, service_env, wait_until
from tests.smtp_servers import Recorder, smtp_server

ADDRESS = "ana@example.org"


@pytest.fixture
def smtp() -> Iterator[Recorder]:
    recorder = Recorder()
    with smtp_server(recorder) as port:
        recorder.url = f"smtp://127.0.0.1:{port}?starttls=never"  # type: ignore[attr-defined]
        yield recorder


def on(runtime: FixedClockRuntime, recorder: Recorder) -> FixedClockRuntime:
    runtime.settings = runtime.settings.model_copy(update={"smtp_url": recorder.url})  # type: ignore[attr-defined]
    return runtime


def sign_up(runtime: FixedClockRuntime, email: str = ADDRESS) -> int:
    with runtime.session() as session:
        row = signup(
            session, email=email, regions=["caribbean"], ip="203.0.113.9", form_version="t",
            now=runtime.now(),
        )  # fmt: skip
    assert row is not None
    return row


def row_of(runtime: FixedClockRuntime, row_id: int) -> Any:
    with runtime.session() as session:
        sub = get_by_email(session, email=ADDRESS)
        assert sub is not None and sub.id is not None
        return next(m for m in store.messages_of(session, subscriber_id=sub.id) if m.id == row_id)


def test_a_signup_is_in_the_outbox_before_anything_is_sent(
    runtime: FixedClockRuntime, smtp: Recorder
) -> None:
    row = sign_up(on(runtime, smtp))
    assert row_of(runtime, row).state == OutboxState.pending  # committed with the signup
    stats = OutboxDeliverer(runtime).drain()
    assert stats.sent == 1 and smtp.received() == {ADDRESS: 1}
    assert "/confirm/" in smtp.parsed(ADDRESS).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert row_of(runtime, row).state == OutboxState.sent
    assert OutboxDeliverer(runtime).drain().done == 0  # sent once


def test_a_4xx_defers_with_the_ledger_backoff_and_retries(
    runtime: FixedClockRuntime, smtp: Recorder
) -> None:
    row = sign_up(on(runtime, smtp))
    smtp.data_replies[ADDRESS] = "451 4.3.0 try again later"
    assert OutboxDeliverer(runtime).drain().deferred == 1
    deferred = row_of(runtime, row)
    assert deferred.state == OutboxState.deferred and "451" in deferred.last_error
    assert deferred.next_attempt == runtime.now() + timedelta(minutes=5)
    del smtp.data_replies[ADDRESS]
    assert OutboxDeliverer(runtime).drain().done == 0  # not due yet
    runtime.fixed_now += timedelta(minutes=5)
    assert OutboxDeliverer(runtime).drain().sent == 1
    assert row_of(runtime, row).state == OutboxState.sent and smtp.received() == {ADDRESS: 1}


def test_a_5xx_fails_and_the_address_gets_no_more_mail(
    runtime: FixedClockRuntime, smtp: Recorder
) -> None:
    row = sign_up(on(runtime, smtp))
    smtp.rcpt_replies[ADDRESS] = "550 5.1.1 no such user"
    assert OutboxDeliverer(runtime).drain().failed == 1
    assert row_of(runtime, row).state == OutboxState.failed
    with runtime.session() as session:
        assert suppression_reason(session, email=ADDRESS) == "hard_bounce"
        again = signup(
            session, email=ADDRESS, regions=["gt"], ip="", form_version="t", now=runtime.now()
        )
    assert again is None and smtp.received() == {}


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_a_confirmation_in_doubt_after_a_crash_is_sent_again(
    runtime: FixedClockRuntime, smtp: Recorder
) -> None:
    row = sign_up(on(runtime, smtp))
    dead = f"{socket.gethostname()[:40]}:{_dead_pid()}:cafe"
    with runtime.session() as session:  # a deliverer took it, and died with it in flight
        now = runtime.now()
        (claimed,) = store.claim(session, worker_id=dead, now=now, lease_until=now + timedelta(1))
    assert claimed.id == row
    stats = OutboxDeliverer(runtime).drain()
    assert (stats.recovered, stats.sent) == (1, 1)
    assert smtp.received() == {ADDRESS: 1} and row_of(runtime, row).state == OutboxState.sent


def test_erased_or_confirmed_meanwhile(runtime: FixedClockRuntime, smtp: Recorder) -> None:
    """A row whose subscriber was erased is dropped with them; nothing goes out."""
    from publisher.store.subscribers import erase

    sign_up(on(runtime, smtp))
    with runtime.session() as session:
        assert erase(session, email=ADDRESS, now=runtime.now())
    assert OutboxDeliverer(runtime).drain().done == 0 and smtp.received() == {}


class Stall:
    """An SMTP handler that takes the message and never answers the end of DATA."""

    def __init__(self) -> None:
        self.reached = threading.Event()

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.reached.set()
        await asyncio.sleep(120)
        return "451 too late"


def test_kill_9_serve_right_after_a_signup_and_the_confirmation_arrives_after_restart(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    rt = FixedClockRuntime(make_settings())
    rt.migrate()
    rt.fixed_now = datetime.now(UTC)
    stall, catch = Stall(), Recorder()
    with smtp_server(stall) as stall_port, smtp_server(catch) as catch_port, processes() as start:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        rt.settings = rt.settings.model_copy(
            update={"smtp_url": f"smtp://127.0.0.1:{stall_port}?starttls=never"}
        )
        first = start(["serve", "--port", str(port)], service_env(rt))
        wait_until(lambda: _healthy(base) or first.popen.poll() is not None, 60, "serve")
        answer = httpx.post(f"{base}/subscribe", data={"email": ADDRESS, "regions": "caribbean"})
        assert answer.status_code == 200
        assert stall.reached.wait(20), first.output()  # its message is at the end of DATA
        first.popen.kill()  # SIGKILL: no shutdown, nothing flushed
        first.wait(10)
        assert catch.received() == {}

        rt.settings = rt.settings.model_copy(
            update={"smtp_url": f"smtp://127.0.0.1:{catch_port}?starttls=never"}
        )
        second = start(["serve", "--port", str(port)], service_env(rt))
        wait_until(lambda: catch.received() == {ADDRESS: 1}, 60, "the confirmation after restart")
        assert "/confirm/" in catch.parsed(ADDRESS).get_body(("plain",)).get_content()  # type: ignore[union-attr]
        wait_until(lambda: _states(rt) == {"sent": 1}, 30, "the outcome recorded")
        second.stop()
    with rt.session() as session:
        sub = get_by_email(session, email=ADDRESS)
        assert sub is not None and sub.id is not None and sub.status == SubscriberStatus.pending
        (message,) = store.messages_of(session, subscriber_id=sub.id)
    assert message.state == OutboxState.sent and message.attempts == 2
    rt.close()


def _states(rt: FixedClockRuntime) -> dict[str, int]:
    with rt.session() as session:
        return store.states(session)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _cli(rt: FixedClockRuntime, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "publisher", *args], env=service_env(rt), cwd=tmp,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_cli_add_exits_only_after_its_confirmation_was_delivered(
    make_settings: Callable[..., Settings], tmp_path: Path, smtp: Recorder
) -> None:
    rt = on(FixedClockRuntime(make_settings()), smtp)
    rt.migrate()
    done = _cli(rt, tmp_path, "subscribers", "add", ADDRESS, "--region", "caribbean")
    assert done.returncode == 0, done.stderr
    assert smtp.received() == {ADDRESS: 1}  # already there when the command returned
    assert "confirmation emails sent: 1" in done.stdout

    smtp.data_replies["later@example.org"] = "452 4.2.2 mailbox full"
    deferred = _cli(rt, tmp_path, "subscribers", "add", "later@example.org", "--region", "gt")
    assert deferred.returncode == 0, deferred.stderr
    assert "1 confirmation email(s) deferred" in deferred.stderr
    with rt.session() as session:
        assert store.states(session) == {"sent": 1, "deferred": 1}
    rt.close()


def test_a_connection_lost_after_the_final_dot_is_sent_again_later_not_in_a_loop(
    runtime: FixedClockRuntime, smtp: Recorder
) -> None:
    from tests.smtp_servers import DROP

    row = sign_up(on(runtime, smtp))
    smtp.data_replies[ADDRESS] = DROP  # the server keeps it and hangs up before replying
    stats = OutboxDeliverer(runtime).drain()
    assert stats.unknown == 1 and smtp.received() == {ADDRESS: 1}  # once, not over and over
    doubt = row_of(runtime, row)
    assert doubt.state == OutboxState.unknown
    assert doubt.next_attempt == runtime.now() + timedelta(minutes=5)
    del smtp.data_replies[ADDRESS]
    runtime.fixed_now += timedelta(minutes=5)
    assert OutboxDeliverer(runtime).drain().sent == 1  # a second confirmation beats none
    assert smtp.received() == {ADDRESS: 2}


def test_the_confirmation_speaks_the_signup_language_when_it_leaves(
    runtime: FixedClockRuntime, smtp: Recorder
) -> None:
    """Built just before it is sent, the email takes the subscriber's locale and region names."""
    with on(runtime, smtp).session() as session:
        row = signup(
            session, email=ADDRESS, regions=["caribbean"], ip="", form_version="t",
            now=runtime.now(), locale="es",
        )  # fmt: skip
    assert row is not None and OutboxDeliverer(runtime).drain().sent == 1
    message = smtp.parsed(ADDRESS)
    assert message["Content-Language"] == "es"
    assert "Caribe" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
