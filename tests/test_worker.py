"""`publisher worker`: draining the ledger, recovering what dead workers left, SIGTERM and SIGKILL.

The SMTP server counts messages per recipient, so "exactly one copy" is checked where it matters:
at the server. Final ledger states must be sent or unknown, never silently missing.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from publisher.delivery.engine import EngineConfig
from publisher.models import Delivery, DeliveryState
from publisher.pipeline.editions import fire_editions
from publisher.service.metrics import Metrics
from publisher.service.worker import Worker, WorkerConfig
from publisher.settings import Settings
from tests.conftest import FixedClockRuntime
from tests.delivery_data import add_subscribers
from tests.service_support import (
    add_items_in_week,
    counting_smtp,
    ledger,
    ledger_states,
    processes,
    service_env,
    wait_until,
)

REGION = "central-america"


def queue_digest(rt: FixedClockRuntime, n: int) -> dict[int, str]:
    """A digest of ``n`` recipients queued in the ledger: {subscriber id: address}."""
    add_items_in_week(rt, "2026-W48", REGION)
    subscribers = dict(add_subscribers(rt, n))
    rt.fixed_now += timedelta(minutes=1)  # windows are half-open: items stamped now go next
    outcome = fire_editions(rt, now=rt.now(), zone=None, early=True, runner="test")
    assert outcome.queued == n
    return subscribers


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_worker_sends_each_due_row_once_and_counts_it(runtime: FixedClockRuntime) -> None:
    subscribers = queue_digest(runtime, 12)
    with counting_smtp() as (server, url):
        runtime.settings = runtime.settings.model_copy(update={"smtp_url": url})
        # A row a worker on this machine was sending when its process died:
        ghost = f"{socket.gethostname()[:40]}:{dead_pid()}:dead"
        rows = sorted(d.id for d in ledger(runtime) if d.id is not None)
        lease = runtime.now() + timedelta(minutes=10)
        with runtime.session() as session:
            t = Delivery.__table__  # type: ignore[attr-defined]
            session.execute(
                sa.update(t).where(t.c.id == rows[0])
                .values(state=DeliveryState.sending, claimed_by=ghost, lease_until=lease)
            )  # fmt: skip
        metrics = Metrics()
        worker = Worker(runtime, config=WorkerConfig(EngineConfig(concurrency=3)), metrics=metrics)
        stats = worker.drain()
        assert stats is not None and stats.sent == 11
        assert worker.drain() is None  # nothing left
        received = server.snapshot()
    by_row = {d.id: d for d in ledger(runtime)}
    assert by_row[rows[0]].state == DeliveryState.unknown  # may have gone out: never resent
    assert set(received.values()) == {1}
    assert len(received) == 11
    assert subscribers[by_row[rows[0]].subscriber_id] not in received
    sent = metrics.messages.labels(region=REGION, outcome="sent")
    assert sent._value.get() == 11
    assert metrics.registry.get_sample_value("publisher_send_seconds_count") == 11


def run_workers(
    rt: FixedClockRuntime, start: Callable[..., object], n: int, *extra: str
) -> list[object]:
    env = service_env(rt)
    args = ["worker", "--concurrency", "2", "--chunk", "40", "--idle", "0.2", *extra]
    return [start(args, env) for _ in range(n)]


@pytest.mark.postgres
def test_sigterm_finishes_in_flight_messages_and_releases_claims(
    pg_url: str, make_settings: Callable[..., Settings]
) -> None:
    rt = FixedClockRuntime(make_settings(database_url=pg_url))
    rt.migrate()
    subscribers = queue_digest(rt, 150)
    with counting_smtp(delay=0.04) as (server, url), processes() as start:
        rt.settings = rt.settings.model_copy(update={"smtp_url": url})
        (worker,) = run_workers(rt, start, 1)
        wait_until(lambda: server.total() >= 20, 30, "the worker to send some messages")
        worker.signal(signal.SIGTERM)  # type: ignore[attr-defined]
        assert worker.wait(15) == 0  # type: ignore[attr-defined]
        after_stop = server.snapshot()
        states = ledger_states(rt)
        assert states[DeliveryState.sending] == 0  # nothing left in flight
        assert states[DeliveryState.unknown] == 0  # a clean stop leaves no doubt
        assert states[DeliveryState.sent] == sum(after_stop.values()) < 150
        with rt.session() as session:
            t = Delivery.__table__  # type: ignore[attr-defined]
            held = session.execute(
                sa.select(sa.func.count()).where(
                    t.c.state == DeliveryState.pending, t.c.claimed_by.is_not(None)
                )
            ).scalar_one()
        assert held == 0  # claims given back: the next worker need not wait for the lease
        (finisher,) = run_workers(rt, start, 1, "--once")
        assert finisher.wait(30) == 0  # type: ignore[attr-defined]
        received = server.snapshot()
    assert ledger_states(rt) == {DeliveryState.sent: 150}
    assert received == dict.fromkeys(subscribers.values(), 1)
    rt.close()


@pytest.mark.postgres
def test_four_workers_one_killed_mid_send_no_copy_twice_none_missing(
    pg_url: str, make_settings: Callable[..., Settings]
) -> None:
    rt = FixedClockRuntime(make_settings(database_url=pg_url))
    rt.migrate()
    subscribers = queue_digest(rt, 400)
    with counting_smtp(delay=0.02) as (server, url), processes() as start:
        rt.settings = rt.settings.model_copy(update={"smtp_url": url})
        workers = run_workers(rt, start, 4, "--lease", "5")
        wait_until(lambda: server.total() >= 60, 40, "the workers to be sending")
        # Kill a worker at a moment it holds rows in flight, so the kill really lands mid-send.
        held: dict[int, Any] = {}

        def someone_holds_rows() -> bool:
            held.clear()
            for w in workers:
                pid = w.popen.pid  # type: ignore[attr-defined]
                if any(
                    d.state == DeliveryState.sending and f":{pid}:" in (d.claimed_by or "")
                    for d in ledger(rt)
                ):
                    held[pid] = w
                    return True
            return False

        wait_until(someone_holds_rows, 40, "a worker to hold rows in flight", step=0.02)
        victim = next(iter(held.values()))
        victim.popen.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
        victim.popen.wait(5)  # type: ignore[attr-defined]

        def settled() -> bool:
            states = ledger_states(rt)
            return states[DeliveryState.sent] + states[DeliveryState.unknown] == 400

        wait_until(settled, 60, "every row to end sent or unknown", step=0.3)
        received = server.snapshot()
    rows = {d.subscriber_id: d for d in ledger(rt)}
    assert len(rows) == 400
    # the kill landed mid-send: the journal leaves in doubt at most the message on each of the
    # victim's connections (its final dot out, no reply); the rest of its claim went back
    assert ledger_states(rt)[DeliveryState.unknown] <= rt.settings.smtp_concurrency
    assert max(received.values()) == 1, "a recipient got two copies"
    for sid, email in subscribers.items():
        state = rows[sid].state
        assert state in (DeliveryState.sent, DeliveryState.unknown)
        if state == DeliveryState.sent:
            assert received[email] == 1, f"{email} is marked sent but never arrived"
    missing = [e for sid, e in subscribers.items() if received[e] == 0]
    assert all(rows[sid].state == DeliveryState.unknown for sid in subscribers if
               subscribers[sid] in missing)  # fmt: skip
    rt.close()
