"""One digest to N subscribers on PostgreSQL, sent by 1, 2 and 4 `publisher worker` processes.

    .venv/bin/python bench/bench_workers.py [--subscribers 100000] [--workers 1,2,4]
        [--concurrency 4] [--verify 5000]

The store is set up once (bench_delivery's bulk inserts: the sample items and N active
subscribers of central-america, in a fresh PostgreSQL database); the digest is assembled once.
For each worker count, that many `publisher worker` processes are started and left idle, then the
N ledger rows are enqueued in one transaction and the clock runs until the ledger says all N are
sent. Messages go to Postfix's smtp-sink on a free 127.0.0.1 port; the ceiling is smtp-source
(same count, 16 sessions, the same message size) into the same sink, in the same command.

No message lost or duplicated: after each run the sink's own counter must have grown by exactly N
and the ledger must hold N sent rows (a row is marked sent only after the server's 250, so more
messages than rows means a duplicate, fewer means a loss). smtp-sink cannot count per recipient,
so a last pass sends ``--verify`` messages with 4 workers into an aiosmtpd server that does, and
checks that every recipient got exactly one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python bench/bench_workers.py` puts bench/ first, not the root

from bench.bench_delivery import (  # noqa: E402
    REGION,
    ceiling,
    console,
    database,
    message_size,
    settings_for,
    setup_store,
    sink_count,
    smtp_sink,
)
from publisher.delivery.embedded import free_port  # noqa: E402
from publisher.delivery.engine import EngineConfig  # noqa: E402
from publisher.models import Delivery, DeliveryState, Digest  # noqa: E402
from publisher.pipeline.digests import digest_mail  # noqa: E402
from publisher.pipeline.editions import fire_editions  # noqa: E402
from publisher.pipeline.send import DigestMessenger, deliver  # noqa: E402
from publisher.runtime import Runtime  # noqa: E402
from publisher.settings import Settings  # noqa: E402
from publisher.store import deliveries  # noqa: E402
from publisher.store.digests import get_digest  # noqa: E402

T: sa.Table = Delivery.__table__  # type: ignore[attr-defined]


class PerRecipient:
    """aiosmtpd handler counting accepted messages per recipient (the verification pass)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.counts.update(envelope.rcpt_tos)
        await asyncio.sleep(0)
        return "250 2.0.0 queued"


@contextmanager
def per_recipient_server() -> Iterator[tuple[PerRecipient, int]]:
    handler = PerRecipient()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


def worker_env(settings: Settings, port: int, concurrency: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env.update(
        PUBLISHER_DATABASE_URL=settings.database_url, PUBLISHER_SECRET_KEY=settings.secret_key,
        PUBLISHER_BASE_URL=settings.base_url, PUBLISHER_VAR_DIR=str(settings.var_dir),
        PUBLISHER_SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=never",
        PUBLISHER_SMTP_CONCURRENCY=str(concurrency), PUBLISHER_LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
    )  # fmt: skip
    return env


@contextmanager
def workers(count: int, env: dict[str, str], cwd: str) -> Iterator[list[subprocess.Popen[str]]]:
    """``count`` idle `publisher worker` processes (polling every 0.1 s), stopped with SIGTERM."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "publisher", "worker", "--idle", "0.1"],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        for proc in procs:  # each logs worker.started once it polls the ledger
            assert proc.stderr is not None
            for line in proc.stderr:
                if line.startswith("{") and json.loads(line).get("event") == "worker.started":
                    break
            else:
                raise SystemExit(f"a worker exited with {proc.wait()} before it started")
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            if proc.wait(60) != 0:
                raise SystemExit(f"a worker exited with {proc.returncode} on SIGTERM")


def states(rt: Runtime) -> Counter[str]:
    with rt.session() as session:
        return Counter(
            dict(session.execute(sa.select(T.c.state, sa.func.count()).group_by(T.c.state)).all())
        )


def timed_send(rt: Runtime, digest_id: int, ids: list[int], msg_id: Any, timeout: float) -> float:
    """Enqueue ``ids`` in one transaction for idle workers; seconds until all are sent."""
    with rt.session() as session:
        session.execute(sa.delete(T))
    with rt.session() as session:
        deliveries.enqueue(session, digest_id=digest_id, subscriber_ids=ids, message_id=msg_id)
    started = time.perf_counter()  # committed: the workers see every row from now on
    while (took := time.perf_counter() - started) < timeout:
        now = states(rt)
        if now[DeliveryState.sent] == len(ids):
            return took
        if now[DeliveryState.pending] + now[DeliveryState.sending] == 0:
            raise SystemExit(f"the run ended with rows not sent: {dict(now)}")
        time.sleep(0.1)
    raise SystemExit(f"not all sent after {timeout:.0f} s: {dict(states(rt))}")


def timed_deliver(
    rt: Runtime, digest_id: int, ids: list[int], mail: Any, concurrency: int
) -> float:
    """The `digests send` path after queueing: the same engine builder, in this process."""
    with rt.session() as session:
        session.execute(sa.delete(T))
    with rt.session() as session:
        deliveries.enqueue(
            session, digest_id=digest_id, subscriber_ids=ids, message_id=mail.message_id
        )
    started = time.perf_counter()
    stats = deliver(
        rt, DigestMessenger(lambda _id, _locale: mail), digest_ids=[digest_id],
        config=EngineConfig(concurrency=concurrency),
    )  # fmt: skip
    took = time.perf_counter() - started
    if stats.sent != len(ids):
        raise SystemExit(f"digests send path sent {stats.sent} of {len(ids)}")
    return took


def one_edition(rt: Runtime, reader: int) -> Digest:
    """The edition digest of REGION this week, made by the live path for one ``reader`` (whose
    own ledger row is dropped: the benchmark queues its recipients itself)."""
    fired = fire_editions(rt, now=datetime.now(UTC), zone=None, region=REGION, early=True,
                          runner="bench", subscriber_ids=[reader])  # fmt: skip
    assert fired.queued == 1, fired
    with rt.session() as session:
        session.execute(sa.delete(T).where(T.c.subscriber_id == reader))
        digest = get_digest(session, digest_id=fired.digest_ids[0])
    assert digest is not None and digest.id is not None
    return digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=4, help="SMTP connections per worker")
    parser.add_argument("--verify", type=int, default=5_000)
    parser.add_argument(
        "--no-send-path", action="store_true", help="skip the `digests send` comparison row"
    )
    args = parser.parse_args()
    n, counts = args.subscribers, [int(w) for w in args.workers.split(",")]
    now = datetime.now(UTC)
    rows: list[tuple[str, ...]] = []
    worker_vs_send = ""
    with (
        smtp_sink() as (port, log),
        tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp,
        database("postgres", Path(tmp)) as url,
    ):
        size = message_size(port)
        seconds = ceiling(port, n, size)
        base = n / seconds
        rows.append(("smtp-source (ceiling)", "-", "16", f"{n:,}", f"{seconds:.1f}",
                     f"{base:,.0f}", "1.00", "ok" if sink_count(log) == n else "?"))  # fmt: skip
        settings = settings_for(url, Path(tmp), port, args.concurrency)
        console.print(f"[dim]setting up {n:,} subscribers on PostgreSQL...[/]")
        setup_store(settings, max(n, args.verify) + 1, now)
        rt = Runtime(settings)
        digest = one_edition(rt, max(n, args.verify) + 1)
        assert digest.id is not None
        mail = digest_mail(digest, settings=settings, tree=rt.tree, tokens=rt.tokens)
        ids = list(range(1, n + 1))
        env = worker_env(settings, port, args.concurrency)
        send_rate = 0.0
        if not args.no_send_path:
            console.print(f"[dim]`digests send` engine: sending {n:,}...[/]")
            before = sink_count(log)
            took = timed_deliver(rt, digest.id, ids, mail, args.concurrency)
            time.sleep(0.5)
            received = sink_count(log) - before
            send_rate = n / took
            rows.append(("digests send engine", "-", str(args.concurrency), f"{n:,}",
                         f"{took:.1f}", f"{send_rate:,.0f}", f"{send_rate / base:.2f}",
                         "ok" if received == n else f"(!) sink {received:,}"))  # fmt: skip
        for k in counts:
            console.print(f"[dim]{k} worker(s): sending {n:,}...[/]")
            before = sink_count(log)
            with workers(k, env, tmp):
                took = timed_send(rt, digest.id, ids, mail.message_id, timeout=3600)
            time.sleep(0.5)  # smtp-sink updates its counter as the sessions end
            received = sink_count(log) - before
            final = states(rt)
            exact = received == n == final[DeliveryState.sent] and len(final) == 1
            verdict = "ok" if exact else f"(!) sink {received:,}, ledger {dict(final)}"
            rate = n / took
            rows.append((f"publisher worker x{k}", str(k), str(k * args.concurrency), f"{n:,}",
                         f"{took:.1f}", f"{rate:,.0f}", f"{rate / base:.2f}", verdict))  # fmt: skip
            if k == 1 and send_rate:
                worker_vs_send = f"one worker vs the `digests send` engine: {rate / send_rate:.2f}x"
        verified = ""
        if args.verify:
            console.print(f"[dim]verification: {args.verify:,} messages, 4 workers, aiosmtpd...[/]")
            with per_recipient_server() as (counter, vport):
                with workers(4, worker_env(settings, vport, args.concurrency), tmp):
                    timed_send(rt, digest.id, ids[: args.verify], mail.message_id, timeout=900)
                got = Counter(counter.counts)
            wanted = {f"s{i:07d}@example.org" for i in ids[: args.verify]}
            dup = sum(1 for c in got.values() if c > 1)
            missing = len(wanted - set(got))
            verified = (
                "verification, 4 workers into aiosmtpd counting per recipient: "
                f"{sum(got.values()):,} messages to {len(got):,} recipients of {len(wanted):,}; "
                f"duplicates {dup}, missing {missing}, strangers {len(set(got) - wanted)}"
            )
        rt.close()
    table = Table(
        "sender", "workers", "SMTP sessions", "messages", "seconds", "msg/s", "vs ceiling",
        "lost/duplicated",
        title=f"One digest ({size / 1000:.1f} KB) to {n:,} subscribers (PostgreSQL) into smtp-sink",
    )  # fmt: skip
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(
        "seconds: from the commit of the N ledger rows (workers already idle and polling) until "
        "the ledger holds N sent rows; ok = the sink counted exactly N new messages and the "
        "ledger exactly N sent rows."
    )
    if verified:
        console.print(verified)
    if worker_vs_send:
        console.print(worker_vs_send)


if __name__ == "__main__":
    main()
