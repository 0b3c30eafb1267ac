"""Feeds over HTTP: the app (uvicorn, one worker) next to nginx serving the same file statically.

    .venv/bin/python bench/bench_web.py [--items 2000] [--duration 10] [--connections 64]

Builds a store of generated items in a temporary folder, builds its feeds, starts the app with
uvicorn (uvloop and httptools when installed, else asyncio and h11) and nginx (its own config,
``daemon off``, root = the feeds folder) on free ports, then runs ``wrk -t2 -cN -dS`` against
/feeds/central-america.rss on both: plain GETs (200) and GETs with If-None-Match (304).
Prints requests/s and the ratio to nginx. Needs wrk and nginx (Debian: wrk, nginx-light).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI, Request, Response
from rich.console import Console
from rich.table import Table

from publisher.settings import Settings

FEED = "/feeds/central-america.rss"
PLACES = ["gt", "hn", "sv", "ni", "cr", "pa", "bz", "mx", "cu", "do", "ht", "jm", "co", "pe"]
WORDS = ["migrants", "returnees", "shelters", "families", "data", "training", "border", "health"]
NGINX_CONF = """\
worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{
        application/rss+xml rss;
        application/atom+xml atom;
        application/feed+json json;
        text/x-opml opml;
    }}
    server {{
        listen 127.0.0.1:{port};
        location /feeds/ {{ alias {feeds}/; etag on; }}
    }}
}}
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(root: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=f"sqlite:///{root / 'bench.db'}",
        feeds_dir=root / "feeds",
        var_dir=root / "var",
        secret_key="bench-secret",
        admin_token="bench-token",
    )


def build_store(root: Path, items: int, seed: int) -> None:
    """Generated items tagged with Central American and Caribbean countries, and their feeds."""
    from publisher.intake.records import RawRecord
    from publisher.pipeline.feeds import build_store_feeds
    from publisher.pipeline.intake import import_records
    from publisher.runtime import Runtime

    rng = random.Random(seed)
    rt = Runtime(settings_for(root))
    rt.migrate()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    records = [
        RawRecord(
            source="bench",
            line=i,
            title=" ".join(rng.choices(WORDS, k=7)).capitalize() + f" {i}",
            summary=" ".join(rng.choices(WORDS, k=40)) + ".",
            link=f"https://example.org/news/{i}",
            published=(start + timedelta(minutes=17 * i)).isoformat(),
            regions=rng.choice(PLACES),
        )
        for i in range(1, items + 1)
    ]
    with rt.session() as session:
        import_records(session, records=records, tree=rt.tree, inferrer=rt.inferrer, now=start)
    with rt.session() as session:
        build_store_feeds(session, settings=rt.settings, tree=rt.tree)
    rt.close()


def fast_server() -> bool:
    return bool(importlib.util.find_spec("uvloop") and importlib.util.find_spec("httptools"))


def serve_app(root: Path, port: int) -> None:
    """Child process: the app as `publisher serve` runs it, minus migrations and feed builds."""
    import uvicorn

    from publisher.runtime import Runtime
    from publisher.web.app import create_app

    settings = settings_for(root)
    app = create_app(settings, runtime=Runtime(settings))
    fast = fast_server()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop" if fast else "asyncio",
        http="httptools" if fast else "h11",
    )


def serve_bare(root: Path, port: int) -> None:
    """Child process: the reference, a bare FastAPI route returning the file's bytes (or 304)."""
    import uvicorn

    body = (root / "feeds" / Path(FEED).name).read_bytes()
    etag = '"bare"'
    app = FastAPI()

    @app.get(FEED)
    async def feed(request: Request) -> Response:
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"etag": etag})
        return Response(body, media_type="application/rss+xml", headers={"etag": etag})

    fast = fast_server()
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
        loop="uvloop" if fast else "asyncio", http="httptools" if fast else "h11",
    )  # fmt: skip


def wait_up(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{what} did not start")


def wrk(url: str, *, etag: str | None, duration: int, connections: int) -> tuple[float, int]:
    """(requests/s, non-2xx-or-3xx responses) from one wrk run."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    if etag:
        cmd += ["-H", f"If-None-Match: {etag}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if rate is None:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    return float(rate.group(1)), int(bad.group(1)) if bad else 0


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--nginx-workers", default="1")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--serve-app", nargs=2, metavar=("ROOT", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", nargs=2, metavar=("ROOT", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_app:
        serve_app(Path(args.serve_app[0]), int(args.serve_app[1]))
        return
    if args.serve_bare:
        serve_bare(Path(args.serve_bare[0]), int(args.serve_bare[1]))
        return
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is not installed (Debian: apt-get install wrk nginx-light)")
    console = Console()
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # nginx's worker (www-data or nobody) must read the feeds
        began = time.perf_counter()
        build_store(root, args.items, args.seed)
        size = (root / "feeds" / Path(FEED).name).stat().st_size
        console.print(
            f"store of {args.items} items and its feeds built in "
            f"{time.perf_counter() - began:.1f} s; {FEED} is {size:,} bytes"
        )

        app_port, bare_port, nginx_port = free_port(), free_port(), free_port()
        (root / "nginx").mkdir()
        conf = root / "nginx" / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                workers=args.nginx_workers,
                tmp=root / "nginx",
                port=nginx_port,
                feeds=root / "feeds",
            )
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--serve-app", str(root), str(app_port)], env=env
            ),
            subprocess.Popen(
                [sys.executable, __file__, "--serve-bare", str(root), str(bare_port)], env=env
            ),
            subprocess.Popen(
                [nginx, "-c", str(conf), "-p", str(root / "nginx")], stderr=subprocess.DEVNULL
            ),
        ]
        try:
            targets = {
                "app": f"http://127.0.0.1:{app_port}{FEED}",
                "bare": f"http://127.0.0.1:{bare_port}{FEED}",
                "nginx": f"http://127.0.0.1:{nginx_port}{FEED}",
            }
            for (name, url), proc in zip(targets.items(), procs, strict=True):
                wait_up(url, proc, name)
            results: dict[tuple[str, int], tuple[float, int]] = {}
            for name, url in targets.items():
                etag = httpx.get(url).headers["etag"]
                check = httpx.get(url, headers={"if-none-match": etag})
                if check.status_code != 304:
                    raise SystemExit(f"{name} answered {check.status_code} to If-None-Match")
                for status, tag in ((200, None), (304, etag)):
                    results[(name, status)] = wrk(
                        url, etag=tag, duration=args.duration, connections=args.connections
                    )
        finally:
            for proc in procs:
                stop(proc)
    server = "uvloop + httptools" if fast_server() else "asyncio + h11"
    table = Table(
        title=f"wrk -t2 -c{args.connections} -d{args.duration}s {FEED}",
        caption=f"Python servers: uvicorn, 1 worker, {server}",
    )
    for column in ("server", "response", "requests/s", "vs nginx", "errors"):
        table.add_column(column, justify="left" if column in ("server", "response") else "right")
    for (name, status), (rate, bad) in results.items():
        base = results[("nginx", status)][0]
        label = {
            "app": "publisher app",
            "bare": "bare FastAPI route (reference)",
            "nginx": f"nginx, static file ({args.nginx_workers} worker)",
        }[name]
        table.add_row(label, str(status), f"{rate:,.0f}", f"{rate / base:.2f}", str(bad))
    console.print(table)
    goal, bare = results[("app", 304)][0], results[("bare", 304)][0]
    console.print(
        f"app 304 path: {goal:,.0f} requests/s (goal 8,000); "
        f"{goal / bare:.2f}x a bare FastAPI route on this machine right now"
    )


if __name__ == "__main__":
    main()
