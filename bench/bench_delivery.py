"""Deliver one digest to many subscribers into Postfix's smtp-sink; smtp-source is the ceiling.

    .venv/bin/python bench/bench_delivery.py [--subscribers 100000] [--backends sqlite,postgres]
        [--concurrency 8] [--memory-only] [--audiences "en;en,es,pt"]

For each ledger backend (a SQLite file, a fresh PostgreSQL database) the parent process sets up the
store with bulk inserts (the sample items, N active subscribers of central-america), then a child
process runs ``send_digests`` end to end: assemble the digest, enqueue N ledger rows, claim, mark
sending, build each message with the content side's DigestMail, send it on the SMTP pool, record
outcomes (SMTP_CONCURRENCY = --concurrency). The child reports its timings, CPU and peak RSS
(getrusage), so memory is the send path's own. The ceiling is /usr/sbin/smtp-source with the same
count, 16 sessions and the same message size, to the same /usr/sbin/smtp-sink, in the same
command, run before and after the publisher runs (the faster one counts, so a busy moment cannot
flatter the ratio). ``--memory-only`` runs SQLite alone (no ceiling), e.g. with
``--subscribers 1000000`` to check that memory stays flat.

Each backend runs once per audience in ``--audiences`` (";"-separated lists of languages; the
subscribers take them in turn): by default all-English, then split between English, Spanish
and Portuguese, in the same command, so the cost of rendering per language is one ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from publisher.digest.windows import current_week
from publisher.models import Subscriber, Subscription
from publisher.pipeline.intake import import_records, read_source
from publisher.runtime import Runtime
from publisher.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "publisher" / "data" / "demo-items.txt"
REGION = "central-america"
SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"
PG_ADMIN = os.environ.get("PUBLISHER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_sink() -> Iterator[tuple[int, Path]]:
    """smtp-sink on a free port, counting messages (-c) into a log file we read at the end."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="smtp-sink-", suffix=".log")[1])
    with log.open("wb") as out:
        sink = subprocess.Popen(
            [SINK, "-c", "-u", "nobody", f"127.0.0.1:{port}", "1000"], stdout=out, stderr=out
        )
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port, log
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(timeout=10)
        log.unlink(missing_ok=True)


def sink_count(log: Path) -> int:
    """Messages smtp-sink has received so far (the last ``mesg=`` of its counter line)."""
    found = re.findall(rb"mesg=(\d+)", log.read_bytes())
    return int(found[-1]) if found else 0


def settings_for(url: str, var_dir: Path, port: int, concurrency: int) -> Settings:
    return Settings(
        _env_file=None, database_url=url, smtp_url=f"smtp://127.0.0.1:{port}",
        var_dir=var_dir, feeds_dir=var_dir / "feeds", secret_key="bench-secret",
        base_url="https://news.example.org", smtp_concurrency=concurrency,
    )  # fmt: skip


def setup_store(
    settings: Settings, subscribers: int, now: datetime, locales: tuple[str, ...] = ("en",)
) -> None:
    """Migrate, import the sample items, and bulk-insert active subscribers of REGION."""
    rt = Runtime(settings)
    rt.migrate()
    with rt.session() as session:
        import_records(
            session, records=read_source(str(SEED), "seed"), tree=rt.tree,
            inferrer=rt.inferrer, now=now, forced_regions=(REGION,),
        )  # fmt: skip
    chunk = 10_000
    for start in range(0, subscribers, chunk):
        ids = range(start + 1, min(start + chunk, subscribers) + 1)
        with rt.session() as session:
            session.execute(
                sa.insert(Subscriber),
                [
                    {
                        "id": i,
                        "email": f"s{i:07d}@example.org",
                        "key": f"{i:032x}",
                        "status": "active",
                        "locale": locales[i % len(locales)],
                        "created": now,
                        "confirmed": now,
                    }
                    for i in ids
                ],
            )
            session.execute(
                sa.insert(Subscription), [{"subscriber_id": i, "region": REGION} for i in ids]
            )
    if rt.engine.dialect.name == "postgresql":
        with rt.engine.begin() as conn:
            conn.execute(sa.text("SELECT setval('subscribers_id_seq', :n)"), {"n": subscribers})
            conn.execute(sa.text("ANALYZE"))
    rt.close()


def child(args: argparse.Namespace) -> None:
    """The measured part, in its own process: send_digests end to end; prints JSON."""
    from publisher.pipeline.send import send_digests

    settings = settings_for(args.url, Path(args.var), args.port, args.concurrency)
    rt = Runtime(settings)
    start, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    report = send_digests(rt, regions=[REGION], week=args.week, early=True)
    took, used = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    cpu_us = (used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime) * 1e6
    digest = report.digests[0]
    print(json.dumps({
        "seconds": took, "sent": report.run.sent, "counts": digest.counts, "queued": digest.queued,
        "rss_mb": used.ru_maxrss / 1024, "cpu_us": cpu_us / max(report.run.sent, 1),
    }))  # fmt: skip
    rt.close()


@contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    """A fresh SQLite file or PostgreSQL database for one run, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    name = f"bench_delivery_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{PG_ADMIN.split('://', 1)[1].rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_backend(
    backend: str, args: argparse.Namespace, port: int, log: Path, locales: tuple[str, ...]
) -> dict[str, Any]:
    now = datetime.now(UTC)
    week = current_week(now, ZoneInfo("UTC"))
    with (
        tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp,
        database(backend, Path(tmp)) as url,
    ):
        started = time.perf_counter()
        setup_store(
            settings_for(url, Path(tmp), port, args.concurrency), args.subscribers, now, locales
        )
        setup = time.perf_counter() - started
        before = sink_count(log)
        command = [
            sys.executable, __file__, "--child", "--url", url, "--var", tmp, "--port", str(port),
            "--week", week, "--concurrency", str(args.concurrency),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{backend} run failed:\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        time.sleep(0.3)  # smtp-sink prints its counter when the sessions end
        result.update(
            backend=backend, setup=setup, received=sink_count(log) - before,
            audience="/".join(locales),
        )  # fmt: skip
        return result


def message_size(port: int) -> int:
    """The size of one digest message as sent (built the way the child builds it)."""
    from publisher.email.outgoing import DigestMail
    from publisher.pipeline.digests import assemble_digest
    from publisher.tokens import Tokens

    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(f"sqlite:///{tmp}/size.db", Path(tmp), port, 1)
        now = datetime.now(UTC)
        setup_store(settings, 1, now)
        rt = Runtime(settings)
        with rt.session() as session:
            digest = assemble_digest(
                session, region=REGION, week=current_week(now, ZoneInfo("UTC")), settings=settings,
                tree=rt.tree, now=now,
            )  # fmt: skip
        mail = DigestMail(
            digest,
            settings=settings,
            tokens=Tokens(["bench-secret"]),
            region_name="Central America",
        )
        size = len(mail.build(subscriber_id=1, key="0" * 32, email="s0000001@example.org"))
        rt.close()
        return size


def ceiling(port: int, count: int, size: int) -> float:
    """smtp-source: ``count`` messages of ``size`` bytes over 16 parallel sessions; seconds."""
    started = time.perf_counter()
    subprocess.run(
        [SOURCE, "-s", "16", "-l", str(size), "-m", str(count), "-f", "news@example.org",
         "-t", "reader@example.org", f"127.0.0.1:{port}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--audiences", default="en;en,es,pt", help="readers' languages per run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--url", "--var", "--week"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    backends = ["sqlite"] if args.memory_only else args.backends.split(",")
    n = args.subscribers
    with smtp_sink() as (port, log):
        size = message_size(port)
        # smtp-source before and after the runs: the better one is the ceiling, so a machine
        # that was busy during one of them does not flatter the ratio
        ceilings = [] if args.memory_only else [ceiling(port, n, size)]
        runs = []
        audiences = [tuple(a.split(",")) for a in args.audiences.split(";") if a]
        for backend in backends:
            for locales in audiences:
                console.print(
                    f"[dim]{backend}, readers in {'/'.join(locales)}: "
                    f"setting up {n:,} subscribers, then sending...[/]"
                )
                runs.append(run_backend(backend, args, port, log, locales))
        if ceilings:
            ceilings.append(ceiling(port, n, size))
    rows: list[tuple[str, ...]] = []
    base = n / min(ceilings) if ceilings else None
    if ceilings:
        runs_s = " and ".join(f"{c:.1f}" for c in ceilings)
        rows.append((
            "smtp-source, 16 sessions (ceiling, best of before/after)", "-", "-", f"{n:,}", "-",
            f"{min(ceilings):.1f} ({runs_s})", f"{base:,.0f}", "1.00", "-",
        ))  # fmt: skip
    for r in runs:
        rate = r["sent"] / r["seconds"]
        ok = "" if r["received"] == n == r["sent"] else f" (!) received {r['received']:,}"
        rows.append((
            f"publisher, {args.concurrency} connections", r["backend"], r["audience"],
            f"{r['sent']:,}{ok}",
            f"{r['setup']:.1f}", f"{r['seconds']:.1f}", f"{rate:,.0f}",
            f"{rate / base:.2f}" if base else "-", f"{r['cpu_us']:.0f}", f"{r['rss_mb']:.0f}",
        ))  # fmt: skip
    table = Table(
        "sender",
        "ledger",
        "readers",
        "messages",
        "setup s",
        "send s",
        "msg/s",
        "vs ceiling",
        "CPU µs/msg",
        "peak RSS MB",
        title=f"One digest ({size / 1000:.1f} KB) to {n:,} subscribers into smtp-sink",
    )
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(
        "send s = send_digests end to end (assemble, enqueue the ledger, send, record); "
        "CPU and peak RSS of the sending process"
    )


if __name__ == "__main__":
    main()
