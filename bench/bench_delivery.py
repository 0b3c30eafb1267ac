"""Deliver a week's editions to many subscribers into Postfix's smtp-sink; smtp-source is the
ceiling.

    .venv/bin/python bench/bench_delivery.py [--subscribers 100000] [--backends sqlite,postgres]
        [--concurrency 8] [--memory-only] [--audiences "en;en,es,pt"] [--region-sets 10000]
        [--repeat 1]

For each ledger backend (a SQLite file, a fresh PostgreSQL database) the parent process sets up the
store with bulk inserts (the sample items tagged americas, one short item per country of the
Americas, N active subscribers), then a child process runs ``send_digests`` (`digests send --all
--early`) end to end: fire the editions (group readers by region set, plan, render each item once
per language and each edition once per language, enqueue N edition and ledger rows), claim, mark
sending, build each message with the content side's DigestMail, send it on the SMTP pool, record
outcomes (SMTP_CONCURRENCY = --concurrency). The child reports its timings, CPU and peak RSS
(getrusage), so memory is the send path's own. The ceiling is /usr/sbin/smtp-source with the same
count, 16 sessions and the same message size, to the same /usr/sbin/smtp-sink, in the same
command, run before and after the publisher runs (the faster one counts, so a busy moment cannot
flatter the ratio). ``--memory-only`` runs SQLite alone (no ceiling), e.g. with
``--subscribers 1000000`` to check that memory stays flat.

Each backend runs once per audience in ``--audiences`` (";"-separated lists of languages; the
subscribers take them in turn): by default all-English, then split between English, Spanish
and Portuguese, in the same command, so the cost of rendering per language is one ratio. Each
audience runs twice: every subscriber following central-america (one region set, one edition),
then the subscribers spread over ``--region-sets`` distinct sets of two or three countries of
the Americas (subscriber i follows set i mod N, so every page of readers mixes sets). "vs one
set" is the second run's throughput over the first's: what thousands of region sets cost.
``--repeat N`` runs each pair N times, alternated, and prints the median ratio: single runs on
a shared two-core machine move by 20%.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/...` puts bench/ first

from bench.support import pg_database
from publisher.digest.windows import current_week
from publisher.intake.records import RawRecord
from publisher.models import Subscriber, Subscription
from publisher.pipeline.intake import import_records, read_source
from publisher.regions.tree import RegionTree
from publisher.runtime import Runtime
from publisher.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "publisher" / "data" / "demo-items.txt"
REGION = "central-america"
SETS_WITHIN = "americas"  # the distinct region sets are sets of this region's countries
SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"
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


def region_sets(tree: RegionTree, count: int, seed: int = 10) -> list[tuple[str, ...]]:
    """``count`` distinct sets of two or three countries of SETS_WITHIN, in a fixed order.

    Countries never contain one another, so each set is also a distinct canonical set (no
    two of them collapse into one edition); the same seed gives the same sets on any machine.
    """
    countries = sorted(
        r.slug for r in tree if r.level == "country" and SETS_WITHIN in tree.ancestors(r.slug)
    )
    rng = random.Random(seed)
    found: dict[tuple[str, ...], None] = {}
    if count > len(countries) ** 3 // 10:
        raise SystemExit(f"--region-sets {count}: too many for {len(countries)} countries")
    while len(found) < count:
        found.setdefault(tuple(sorted(rng.sample(countries, rng.choice((2, 3))))), None)
    return list(found)


def country_records(tree: RegionTree, now: datetime) -> list[RawRecord]:
    """One short item per country of SETS_WITHIN, so every reader's edition has a section per
    region they follow (the sample items, tagged SETS_WITHIN, fall in the first section)."""
    return [
        RawRecord(
            source="bench",
            line=n,
            title=f"Weekly update for {r.name_en}",
            summary=f"Figures and field notes from {r.name_en} this week.",
            published=now,
            regions=[r.slug],
        )
        for n, r in enumerate(tree, start=1)
        if r.level == "country" and SETS_WITHIN in tree.ancestors(r.slug)
    ]


def settings_for(url: str, var_dir: Path, port: int, concurrency: int) -> Settings:
    return Settings(
        _env_file=None, database_url=url, smtp_url=f"smtp://127.0.0.1:{port}",
        var_dir=var_dir, feeds_dir=var_dir / "feeds", secret_key="bench-secret",
        base_url="https://news.example.org", smtp_concurrency=concurrency,
    )  # fmt: skip


def setup_store(
    settings: Settings,
    subscribers: int,
    now: datetime,
    locales: tuple[str, ...] = ("en",),
    sets: int = 1,
) -> None:
    """Migrate, import the sample items (tagged SETS_WITHIN) and one item per country, and
    bulk-insert active subscribers: of REGION (``sets`` = 1), or spread over ``sets`` distinct
    region sets (subscriber i follows set i mod ``sets``, so every page mixes sets)."""
    rt = Runtime(settings)
    rt.migrate()
    with rt.session() as session:
        import_records(
            session, records=read_source(str(SEED), "seed"), tree=rt.tree,
            inferrer=rt.inferrer, now=now, forced_regions=(SETS_WITHIN,),
        )  # fmt: skip
        import_records(
            session, records=country_records(rt.tree, now), tree=rt.tree, inferrer=rt.inferrer,
            now=now,
        )  # fmt: skip
    followed = [(REGION,)] if sets == 1 else region_sets(rt.tree, sets)
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
                sa.insert(Subscription),
                [
                    {"subscriber_id": i, "region": slug}
                    for i in ids
                    for slug in followed[i % len(followed)]
                ],
            )
    if rt.engine.dialect.name == "postgresql":
        with rt.engine.begin() as conn:
            conn.execute(sa.text("SELECT setval('subscribers_id_seq', :n)"), {"n": subscribers})
            conn.execute(sa.text("ANALYZE"))
    rt.close()


def child(args: argparse.Namespace) -> None:
    """The measured part, in its own process: `digests send --all --early` end to end (fire the
    editions: assemble, render, queue; then deliver); prints JSON."""
    from publisher.pipeline import send

    settings = settings_for(args.url, Path(args.var), args.port, args.concurrency)
    rt = Runtime(settings)
    fire_seconds = 0.0
    fire = send.fire_editions

    def timed_fire(*a: Any, **k: Any) -> Any:
        nonlocal fire_seconds
        began = time.perf_counter()
        try:
            return fire(*a, **k)
        finally:
            fire_seconds += time.perf_counter() - began

    send.fire_editions = timed_fire
    start, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    report = send.send_digests(rt, regions=None, week=args.week, early=True)
    took, used = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    cpu_us = (used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime) * 1e6
    print(json.dumps({
        "seconds": took, "sent": report.run.sent, "queued": sum(d.queued for d in report.digests),
        "digests": len(report.digests), "fire": fire_seconds,
        "sets": sum(f.region_sets for f in report.fires),
        "fragments": sum(f.fragments for f in report.fires),
        "rss_mb": used.ru_maxrss / 1024, "cpu_us": cpu_us / max(report.run.sent, 1),
    }))  # fmt: skip
    rt.close()


@contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    """A fresh SQLite file or PostgreSQL database for one run, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    with pg_database("bench_delivery") as url:
        yield url


def run_backend(
    backend: str, args: argparse.Namespace, port: int, log: Path, locales: tuple[str, ...],
    sets: int,
) -> dict[str, Any]:  # fmt: skip
    now = datetime.now(UTC)
    week = current_week(now, ZoneInfo("UTC"))
    with (
        tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp,
        database(backend, Path(tmp)) as url,
    ):
        started = time.perf_counter()
        setup_store(
            settings_for(url, Path(tmp), port, args.concurrency), args.subscribers, now, locales,
            sets,
        )  # fmt: skip
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
            audience="/".join(locales), region_sets=sets,
        )  # fmt: skip
        return result


def message_size(port: int, regions: tuple[str, ...] = (REGION,)) -> int:
    """The size of one edition message of ``regions`` as a send builds it (the preview is the
    same function with sample reader values)."""
    from publisher.pipeline.edition_tools import preview_edition, preview_message

    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(f"sqlite:///{tmp}/size.db", Path(tmp), port, 1)
        now = datetime.now(UTC)
        setup_store(settings, 1, now)
        rt = Runtime(settings)
        later = now + timedelta(seconds=1)
        size = len(preview_message(rt, preview_edition(rt, regions, "en", later), now=later))
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
    parser.add_argument(
        "--region-sets", type=int, default=10_000,
        help="distinct region sets of the second run of each audience (0: one-set runs only)",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="run each one-set / many-sets pair this many times, alternated; the ratio is the "
        "median of the pairs (single runs on a shared machine move by 20%%)",
    )  # fmt: skip
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
    set_counts = [1] + ([args.region_sets] if args.region_sets > 1 else [])
    with smtp_sink() as (port, log):
        size = message_size(port)
        sample = region_sets(RegionTree.load(), 1)[0]
        size_sets = message_size(port, sample)
        # smtp-source before and after the runs: the better one is the ceiling, so a machine
        # that was busy during one of them does not flatter the ratio
        ceilings = [] if args.memory_only else [ceiling(port, n, size)]
        runs = []
        audiences = [tuple(a.split(",")) for a in args.audiences.split(";") if a]
        for backend in backends:
            for locales in audiences:
                for turn in range(max(1, args.repeat)):
                    for sets in set_counts:
                        console.print(
                            f"[dim]{backend}, readers in {'/'.join(locales)}, {sets:,} region "
                            f"set(s), run {turn + 1}: setting up {n:,} subscribers, then "
                            "sending...[/]"
                        )
                        run = run_backend(backend, args, port, log, locales, sets)
                        runs.append({**run, "turn": turn})
        if ceilings:
            ceilings.append(ceiling(port, n, size))
    rows: list[tuple[str, ...]] = []
    base = n / min(ceilings) if ceilings else None
    if ceilings:
        runs_s = " and ".join(f"{c:.1f}" for c in ceilings)
        rows.append((
            "smtp-source, 16 sessions (ceiling, best of before/after)", "-", "-", "-", f"{n:,}",
            "-", f"{min(ceilings):.1f} ({runs_s})", "-", f"{base:,.0f}", "1.00", "-", "-", "-",
        ))  # fmt: skip
    one_set = {(r["backend"], r["audience"], r["turn"]): r for r in runs if r["region_sets"] == 1}
    pairs: dict[tuple[str, str], list[float]] = {}
    for r in runs:
        rate = r["sent"] / r["seconds"]
        ok = "" if r["received"] == n == r["sent"] else f" (!) received {r['received']:,}"
        ref = one_set.get((r["backend"], r["audience"], r["turn"]))
        vs_one = rate / (ref["sent"] / ref["seconds"]) if ref and ref["sent"] else None
        if vs_one is not None and r["region_sets"] > 1:
            pairs.setdefault((r["backend"], r["audience"]), []).append(vs_one)
        rows.append((
            f"publisher, {args.concurrency} connections", r["backend"], r["audience"],
            f"{r['region_sets']:,}", f"{r['sent']:,}{ok}", f"{r['setup']:.1f}",
            f"{r['seconds']:.1f}", f"{r['fire']:.1f}", f"{rate:,.0f}",
            f"{rate / base:.2f}" if base else "-",
            "-" if r["region_sets"] == 1 or vs_one is None else f"{vs_one:.2f}",
            f"{r['cpu_us']:.0f}", f"{r['rss_mb']:.0f}",
        ))  # fmt: skip
    table = Table(
        "sender",
        "ledger",
        "readers",
        "region sets",
        "messages",
        "setup s",
        "send s",
        "of which fire s",
        "msg/s",
        "vs ceiling",
        "vs one set",
        "CPU µs/msg",
        "peak RSS MB",
        title=(
            f"Editions ({size / 1000:.1f} KB for {REGION}; {size_sets / 1000:.1f} KB for "
            f"{' '.join(sample)}) to {n:,} subscribers into smtp-sink"
        ),
    )
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for (backend, audience), ratios in pairs.items():
        console.print(
            f"vs one set, {backend}, {audience}: median {statistics.median(ratios):.2f} of "
            f"{len(ratios)} pair(s) ({', '.join(f'{x:.2f}' for x in ratios)})"
        )
    console.print(
        "send s = `digests send --all --early` end to end (fire: assemble, render, queue the "
        "ledger; then send and record); fire s = its fire_editions part; vs one set = msg/s "
        "against the one-set run of the same ledger and readers; CPU and peak RSS of the "
        "sending process"
    )


if __name__ == "__main__":
    main()
