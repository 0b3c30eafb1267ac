"""Polling 1,000 sources on a local HTTP server, next to a bare concurrent httpx fetch of them.

    .venv/bin/python bench/bench_sources.py [--sources 1000] [--concurrency 20]

The server (its own process) answers a mix per source: 50% feeds of 20 entries that gain 5 new
ones per round, 20% with an ETag (304 the second round), 10% gzip, 5% slow (1.5 s), 10% errors
(500, 503 with Retry-After) and 5% malformed (HTML, junk). Each side runs in its own process so
peak RSS is its own (ru_maxrss). Round 1 is the first poll (every entry new, SQLite writes),
round 2 the next one (304s, 5 new entries per changing feed). The baseline fetches the same URLs
with the same concurrency and does nothing with the bodies: the floor any poller pays.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLACES = ["Guatemala", "Honduras", "Peru", "Chile", "Mexico", "Haiti", "Colombia", "Cuba"]
SLOW = 1.5


def feed(i: int, start: int, count: int = 20) -> bytes:
    items = "".join(
        f"<item><guid>s{i}-e{k}</guid><title>{PLACES[(i + k) % len(PLACES)]} opens centre {k}"
        f"</title><link>https://upstream.example/{i}/{k}</link><description>&lt;p&gt;Officials "
        f"met this week; report {k} of source {i} describes the needs of migrants and host "
        f'communities in detail.&lt;/p&gt;</description><enclosure url="https://img.example/'
        f'{i}/{k}.jpg" type="image/jpeg" length="1"/></item>'
        for k in range(start + count - 1, start - 1, -1)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Source {i}</title>'
        f"<link>https://upstream.example/{i}</link>{items}</channel></rss>"
    ).encode()


def answer(i: int, hits: int, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes, float]:
    """(status, headers, body, delay) for source ``i`` on its ``hits``-th request."""
    kind = i % 20
    if kind < 10:
        return 200, {}, feed(i, 5 * hits), 0.0
    if kind < 14:
        tag = f'"s{i}"'
        if headers.get("if-none-match") == tag:
            return 304, {"ETag": tag}, b"", 0.0
        return 200, {"ETag": tag}, feed(i, 0), 0.0
    if kind < 16:
        return 200, {"Content-Encoding": "gzip"}, gzip.compress(feed(i, 5 * hits)), 0.0
    if kind == 16:
        return 200, {}, feed(i, 0), SLOW
    if kind == 17:
        return 500, {}, b"oops", 0.0
    if kind == 18:
        return 503, {"Retry-After": "600"}, b"busy", 0.0
    return 200, {}, b"<html><body>moved to a web page</body></html>" if i % 2 else b"\x00junk", 0.0


def serve(port_out: multiprocessing.connection.Connection) -> None:
    hits: dict[int, int] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                i = int(path.rsplit("/", 1)[1])
                status, extra, body, delay = answer(i, hits.get(i, 0), headers)
                hits[i] = hits.get(i, 0) + 1
                if delay:
                    await asyncio.sleep(delay)
                extra["Content-Length"] = str(len(body))
                out = f"HTTP/1.1 {status} X\r\n" + "".join(
                    f"{k}: {v}\r\n" for k, v in extra.items()
                )
                writer.write(out.encode() + b"\r\n" + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        port_out.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu() -> float:
    """CPU seconds of this process, all threads: what a busy shared machine changes least."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_baseline(urls: list[str], concurrency: int) -> dict[str, float]:
    import httpx

    async def go() -> list[float]:
        limit = asyncio.Semaphore(concurrency)
        times = []
        async with httpx.AsyncClient(
            timeout=30, limits=httpx.Limits(max_connections=concurrency)
        ) as c:

            async def one(url: str) -> None:
                async with limit:
                    with contextlib.suppress(httpx.HTTPError):
                        await c.get(url)

            for _ in range(2):
                start, used = time.perf_counter(), cpu()
                await asyncio.gather(*(one(u) for u in urls))
                times += [time.perf_counter() - start, cpu() - used]
        return times

    first, cpu1, second, cpu2 = asyncio.run(go())
    return {"round1": first, "round2": second, "cpu1": cpu1, "cpu2": cpu2, "rss": peak_mb()}


def run_publisher(urls: list[str], concurrency: int) -> dict[str, float]:
    from publisher.pipeline.sources import poll_sources
    from publisher.runtime import Runtime
    from publisher.settings import Settings
    from publisher.store.sources import add_source

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None, database_url=f"sqlite:///{tmp}/bench.db",
            sources_allow_private=True, sources_concurrency=concurrency,
        )  # fmt: skip
        rt = Runtime(settings)
        rt.migrate()
        with rt.session() as session:
            for url in urls:
                add_source(session, url=url, regions=(), every=1800, lang="", now=rt.now())
        result: dict[str, float] = {}
        for n in (1, 2):
            start, used = time.perf_counter(), cpu()
            reports = poll_sources(rt, due_only=False)
            result[f"round{n}"] = time.perf_counter() - start
            result[f"cpu{n}"] = cpu() - used
            result[f"added{n}"] = sum(r.outcome.added for r in reports)
            result[f"failed{n}"] = sum(1 for r in reports if not r.outcome.ok)
            result[f"unchanged{n}"] = sum(1 for r in reports if r.outcome.not_modified)
        rt.close()
    result["rss"] = peak_mb()
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--child", choices=["baseline", "publisher"])
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.child:
        urls = [f"http://127.0.0.1:{args.port}/f/{i}" for i in range(args.sources)]
        run = run_baseline if args.child == "baseline" else run_publisher
        print(json.dumps(run(urls, args.concurrency)))
        return 0

    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=serve, args=(send,), daemon=True)
    server.start()
    port = receive.recv()
    results = {}
    try:
        for child in ("baseline", "publisher"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", child, "--port", str(port),
                 "--sources", str(args.sources), "--concurrency", str(args.concurrency)],
                capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent,
            )  # fmt: skip
            results[child] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
    base, pub = results["baseline"], results["publisher"]
    print(f"{args.sources} sources, concurrency {args.concurrency}, {int(args.sources * 0.05)} "
          f"answer after {SLOW} s")  # fmt: skip
    print(f"{'':24}{'round 1':>9}{'(CPU)':>8}{'round 2':>9}{'(CPU)':>8}{'peak RSS':>10}")
    for label, r in (("bare httpx fetch", base), ("publisher sources poll", pub)):
        print(f"{label:24}{r['round1']:>8.1f}s{r['cpu1']:>7.1f}s{r['round2']:>8.1f}s"
              f"{r['cpu2']:>7.1f}s{r['rss']:>7.0f} MB")  # fmt: skip
    ratios = [pub[k] / base[k] for k in ("round1", "cpu1", "round2", "cpu2")]
    widths = (8, 7, 8, 7)
    print(f"{'ratio':24}" + "".join(f"{r:>{w}.1f}x" for r, w in zip(ratios, widths, strict=True)))
    print(
        f"publisher: round 1 added {pub['added1']:.0f} items, {pub['failed1']:.0f} sources "
        f"failed; round 2 added {pub['added2']:.0f}, {pub['unchanged2']:.0f} not modified"
    )
    ok = max(pub["round1"], pub["round2"]) < 30 and pub["rss"] <= 150
    print("target (< 30 s per round, <= 150 MB):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
