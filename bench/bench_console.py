"""The console's pages at scale: every GET page under /admin (and /api/stats, /api/digests,
/metrics) timed over real HTTP on a PostgreSQL store of the issue's size, next to SELECT 1.

    .venv/bin/python bench/bench_console.py                 # 1M subscribers, 100k items, 5M ledger
    .venv/bin/python bench/bench_console.py --small         # 10k / 5k / 50k: a quick check
    .venv/bin/python bench/bench_console.py --reuse         # keep the store built by a last run
    .venv/bin/python bench/bench_console.py --trigger-cost 20000   # the triggers' cost to writers

Builds a fresh database (``--database``, default ``bench_console``) on the PostgreSQL server of
``--server`` with COPY: subscribers in every status following one or two countries, items over
``--weeks`` weeks, a digest per country and week, ledger rows spread over the weeks and every
delivery state (at most one per reader and week), bounce reports, sources. Then it creates an
editor and an admin with `publisher users add`, starts the app with uvicorn (one process, as
`publisher serve --web-only` runs it) and logs each of them in through the real login form with
httpx. It discovers the GET routes from the app itself, fills path parameters from the store
(an item's id, a subscriber's id, a week, a region), requests each page ``--requests`` times
after a warm-up, and prints p50 and p95 in milliseconds and the ratio of p50 to a bare
``SELECT 1`` round trip measured on the same server in the same run. Pages slower than
``--budget`` (300 ms) are marked. Also prints what the dashboard's sources cost counted live
(the queries /api/stats ran before tallies) against the tallies, in-process.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import psycopg
from rich.console import Console
from rich.table import Table

from publisher.settings import Settings

PLACES = ["gt", "hn", "sv", "ni", "cr", "pa", "bz", "mx", "cu", "do", "ht", "jm", "co", "pe"]
ZONES = ["America/Guatemala", "America/Mexico_City", "America/Bogota", "America/Lima", None]
WORDS = ["migrants", "returnees", "shelters", "families", "data", "training", "border", "health"]
SIZES = {
    "full": {"subscribers": 1_000_000, "items": 100_000, "ledger": 5_000_000},
    "small": {"subscribers": 10_000, "items": 5_000, "ledger": 50_000},
}
PASSWORD = "bench-password-123456"
USERS = {"editor": "editor@bench.example.org", "admin": "admin@bench.example.org"}
EXTRA = ["/api/stats", "/api/digests", "/metrics"]
TOKEN = "bench-admin-token"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
console = Console()


def settings_for(url: str, root: Path, port: int = 8000) -> Settings:
    return Settings(
        _env_file=None,
        database_url=url,
        feeds_dir=root / "feeds",
        var_dir=root / "var",
        secret_key="bench-secret",
        admin_token=TOKEN,
        base_url=f"http://127.0.0.1:{port}",
    )


# -- the store ----------------------------------------------------------------------------------
def naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def columns(conn: psycopg.Connection[Any], table: str) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
    )
    return {r[0] for r in rows}


def copy_rows(
    conn: psycopg.Connection[Any], table: str, names: list[str], rows: Iterator[tuple[Any, ...]]
) -> int:
    n = 0
    quoted = ", ".join(f'"{name}"' for name in names)
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def week_label(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def build(url: str, *, subscribers: int, items: int, ledger: int, weeks: int, seed: int) -> None:
    """Migrate, then COPY the whole store in; the tally triggers add their rows per COPY."""
    from publisher.runtime import Runtime
    from publisher.store import tallies

    rng = random.Random(seed)
    migrate(url)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    start = NOW - timedelta(weeks=weeks)
    with psycopg.connect(dsn) as conn:
        t0 = time.perf_counter()
        n = copy_rows(conn, "items", [
            "guid", "title", "summary", "link", "lang", "image_alt", "source",
            "regions_inferred", "published", "updated", "created", "visible_at",
        ], (
            (f"bench-{i}", " ".join(rng.choices(WORDS, k=7)).capitalize() + f" {i}",
             " ".join(rng.choices(WORDS, k=30)) + ".", f"https://example.org/news/{i}",
             "en", "", "bench", False, t, t, t, t)
            for i in range(1, items + 1)
            for t in [naive(start + (NOW - start) * (i / items))]
        ))  # fmt: skip
        copy_rows(conn, "item_regions", ["item_id", "region"], (
            (i, PLACES[i % len(PLACES)]) for i in range(1, n + 1)
        ))  # fmt: skip
        console.print(f"items: {n} in {time.perf_counter() - t0:.0f} s")

        t0 = time.perf_counter()
        sub_cols = ["email", "key", "status", "locale", "created", "confirmed", "left"]
        with_zone = "timezone" in columns(conn, "subscribers")
        if with_zone:
            sub_cols.append("timezone")
        statuses = ["active"] * 80 + ["pending"] * 8 + ["unsubscribed"] * 8 + ["bounced"] * 4

        def subscriber(i: int) -> tuple[Any, ...]:
            status = statuses[i % 100]
            created = naive(start - timedelta(days=i % 300))
            row = (
                f"reader{i}@example.org", f"{i:032x}", status, ("en", "es", "pt")[i % 3],
                created, created if status != "pending" else None,
                naive(NOW - timedelta(days=i % 90)) if status in ("unsubscribed", "bounced")
                else None,
            )  # fmt: skip
            return (*row, ZONES[i % len(ZONES)]) if with_zone else row

        copy_rows(conn, "subscribers", sub_cols, (subscriber(i) for i in range(1, subscribers + 1)))
        copy_rows(conn, "subscriptions", ["subscriber_id", "region"], (
            (i, region)
            for i in range(1, subscribers + 1)
            for region in {PLACES[i % len(PLACES)], PLACES[(i * 7) % len(PLACES)]}
        ))  # fmt: skip
        console.print(f"subscribers: {subscribers} in {time.perf_counter() - t0:.0f} s")

        t0 = time.perf_counter()
        digest_cols = columns(conn, "digests")
        names = [
            "region",
            "week",
            "status",
            "window_start",
            "window_end",
            "subject",
            "created",
            "item_ids",
            "html",
            "text",
            "locale",
        ]
        extra = [c for c in ("regions",) if c in digest_cols]
        digests: dict[tuple[int, str], int] = {}
        with conn.cursor() as cur:
            for w in range(weeks):
                end = start + timedelta(weeks=w + 1)
                for region in PLACES:
                    values = [
                        region, week_label(end - timedelta(days=1)), "assembled",
                        naive(end - timedelta(weeks=1)), naive(end), f"News of {region}",
                        naive(end), "", "", "", "en", *(region for _ in extra),
                    ]  # fmt: skip
                    cur.execute(
                        f"INSERT INTO digests ({', '.join(names + extra)}) VALUES "
                        f"({', '.join(['%s'] * len(values))}) RETURNING id",
                        values,
                    )
                    row = cur.fetchone()
                    assert row is not None
                    digests[(w, region)] = int(row[0])
        ledger_cols = [
            "digest_id",
            "subscriber_id",
            "state",
            "attempts",
            "next_attempt",
            "first_attempt",
            "sent_at",
            "last_error",
            "message_id",
            "locale",
        ]
        with_week = "week" in columns(conn, "deliveries")
        if with_week:
            ledger_cols.append("week")
        per_week = max(1, ledger // weeks)
        final = ["sent"] * 95 + ["failed"] * 2 + ["skipped"] * 2 + ["unknown"]
        running = ["pending"] * 40 + ["sent"] * 50 + ["deferred"] * 5 + ["failed"] * 3 + [
            "sending"] * 2  # fmt: skip
        failed_rows: list[tuple[int, int]] = []

        def ledger_rows() -> Iterator[tuple[Any, ...]]:
            row_id = 0
            for w in range(weeks):
                states = running if w == weeks - 1 else final
                sent = naive(start + timedelta(weeks=w + 1, hours=1))
                label = week_label(start + timedelta(weeks=w + 1) - timedelta(days=1))
                for k in range(min(per_week, subscribers)):
                    if row_id >= ledger:
                        return
                    row_id += 1
                    sid = (w * per_week + k) % subscribers + 1
                    state = states[(sid * 31 + w) % 100]
                    if state == "failed" and len(failed_rows) < 5000:
                        failed_rows.append((row_id, sid))
                    row = (
                        digests[(w, PLACES[sid % len(PLACES)])], sid, state,
                        0 if state == "pending" else 1,
                        sent + timedelta(hours=1) if state == "deferred" else None,
                        None if state == "pending" else sent,
                        sent if state == "sent" else None,
                        "" if state in ("pending", "sent", "sending") else f"{state} (bench)",
                        f"<{row_id}@bench>", ("en", "es", "pt")[sid % 3],
                    )  # fmt: skip
                    yield (*row, label) if with_week else row

        n = copy_rows(conn, "deliveries", ledger_cols, ledger_rows())
        console.print(
            f"ledger: {n} rows, {len(digests)} digests in {time.perf_counter() - t0:.0f} s"
        )

        t0 = time.perf_counter()
        recent = naive(NOW - timedelta(days=3))
        copy_rows(conn, "bounce_reports", [
            "key", "source", "envelope_to", "received", "state", "kind", "detail",
        ], (
            (f"bench-report-{i}", "inbound", f"bounces+{i}@bench", recent, "applied", "hard", "")
            for i in range(1, len(failed_rows) + 1)
        ))  # fmt: skip
        copy_rows(conn, "bounce_events", [
            "report_id", "delivery_id", "subscriber_id", "kind", "status", "diagnostic", "at",
        ], (
            (i, row_id, sid, "hard", "5.1.1", "user unknown", recent)
            for i, (row_id, sid) in enumerate(failed_rows, start=1)
        ))  # fmt: skip
        copy_rows(conn, "sources", [
            "url", "regions", "every", "lang", "paused", "failures", "next_poll", "last_result",
            "last_error", "created",
        ], (
            (f"https://feeds.example.org/{p}.xml", p, 1800, "es", False, 0, naive(NOW), "ok", "",
             naive(start))
            for p in PLACES
        ))  # fmt: skip
        conn.commit()
        console.print(f"bounces and sources in {time.perf_counter() - t0:.0f} s")
    with psycopg.connect(dsn, autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute("VACUUM ANALYZE")  # the visibility map lets index-only scans skip the heap
        console.print(f"VACUUM ANALYZE in {time.perf_counter() - t0:.0f} s")
    rt = Runtime(settings_for(url, Path(tempfile.gettempdir())))
    with rt.session() as session:
        tallies.fold(session)  # as the scheduler does every minute
    rt.close()


def migrate(url: str) -> None:
    from publisher.runtime import Runtime

    rt = Runtime(settings_for(url, Path(tempfile.gettempdir())))
    rt.migrate()
    rt.close()


def add_users(url: str, root: Path) -> None:
    """An editor and an admin, through the command an operator uses."""
    env = {**os.environ, "PUBLISHER_DATABASE_URL": url, "PUBLISHER_VAR_DIR": str(root / "var"),
           "PUBLISHER_SECRET_KEY": "bench-secret"}  # fmt: skip
    for role, email in USERS.items():
        subprocess.run(
            [sys.executable, "-m", "publisher", "users", "remove", email],
            env=env, input="", capture_output=True, text=True,
        )  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "publisher", "users", "add", email, "--role", role],
            env=env, input=PASSWORD + "\n", capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"users add {email}: {done.stderr.strip() or done.stdout.strip()}")


# -- the server and the pages ---------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(url: str, root: Path, port: int) -> None:
    """Child process: the app as `publisher serve --web-only` runs it (uvicorn, one process)."""
    import uvicorn

    from publisher.runtime import Runtime
    from publisher.web.app import create_app

    settings = settings_for(url, root, port)
    app = create_app(settings, runtime=Runtime(settings))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def discover() -> list[str]:
    """Every GET route of the console's routers (all the app mounts under /admin), then the
    dashboard's JSON sources. FastAPI 0.165 wraps included routers, so the routers are walked
    as ``create_app`` includes them, from ``publisher.web.admin.ROUTERS``."""
    from fastapi.routing import APIRoute

    from publisher.web.admin import ROUTERS

    def walk(routes: list[Any]) -> Iterator[APIRoute]:
        for route in routes:
            if isinstance(route, APIRoute):
                yield route
            inner = getattr(route, "original_router", None)
            if inner is not None:
                yield from walk(list(inner.routes))

    found = {
        r.path
        for router in ROUTERS
        for r in walk(list(router.routes))
        if "GET" in (r.methods or ()) and r.path.startswith("/admin")
    }
    return sorted(found) + EXTRA


def samples(dsn: str) -> dict[str, str]:
    """A value from the store for each kind of path parameter."""
    with psycopg.connect(dsn) as conn:

        def one(sql: str) -> str:
            row = conn.execute(sql).fetchone()
            return "" if row is None else str(row[0])

        item = one("SELECT max(id) FROM items")
        subscriber = one("SELECT min(id) FROM subscribers WHERE status = 'active'")
        return {
            "item": item,
            "subscriber": subscriber,
            "email": one(f"SELECT email FROM subscribers WHERE id = {subscriber or 0}"),
            "source": one("SELECT min(id) FROM sources"),
            "digest": one("SELECT max(id) FROM digests"),
            "edition": one("SELECT max(id) FROM digests"),
            "week": one("SELECT max(week) FROM digests"),
            "region": "gt",
            "slug": "gt",
            "user": one("SELECT min(id) FROM users") if _has(conn, "users") else "",
            "report": one("SELECT min(id) FROM bounce_reports"),
            "bounce": one("SELECT min(id) FROM bounce_reports"),
        }


def _has(conn: psycopg.Connection[Any], table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() not in (None, (None,))


def fill(path: str, values: dict[str, str]) -> str | None:
    """``path`` with each {param} replaced by a sample, or None when one has no sample."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0].lower()
        segment = path[: match.start()].rstrip("/").rsplit("/", 1)[-1].lower()
        for key in (name.removesuffix("_id"), segment.rstrip("s"), segment):
            if values.get(key):
                return values[key]
        raise KeyError(name)

    try:
        return re.sub(r"\{([^}]+)\}", value, path)
    except KeyError:
        return None


class FormFields(HTMLParser):
    """The inputs of the first POST form on a page (the login form)."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.done = False
        self.action = ""
        self.fields: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "").lower() == "post" and not self.done:
            self.inside, self.action = True, a.get("action", "")
        elif tag == "input" and self.inside:
            self.fields.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.inside:
            self.inside, self.done = False, True


def login(client: httpx.Client, email: str) -> None:
    """Log in as a person would: GET the form, fill email and password, POST it with its token."""
    page = client.get("/admin/login")
    page.raise_for_status()
    form = FormFields()
    form.feed(page.text)
    data: dict[str, str] = {}
    for field in form.fields:
        kind, name = field.get("type", "text").lower(), field.get("name", "")
        if not name:
            continue
        if kind == "password":
            data[name] = PASSWORD
        elif kind == "email" or name in ("email", "username"):
            data[name] = email
        elif kind in ("hidden", "text"):
            data[name] = field.get("value", "")
    answer = client.post(form.action or "/admin/login", data=data, follow_redirects=False)
    if answer.status_code not in (302, 303) or "login" in answer.headers.get("location", ""):
        raise SystemExit(f"login as {email} failed: {answer.status_code}")


def timed(get: Callable[[], httpx.Response], n: int, warmup: int) -> tuple[int, list[float]]:
    status = 0
    for _ in range(warmup):
        status = get().status_code
    took = []
    for _ in range(n):
        t = time.perf_counter()
        status = get().status_code
        took.append((time.perf_counter() - t) * 1000)
    return status, took


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def select_one(dsn: str, n: int) -> list[float]:
    with psycopg.connect(dsn) as conn:
        for _ in range(20):
            conn.execute("SELECT 1").fetchone()
        took = []
        for _ in range(n):
            t = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            took.append((time.perf_counter() - t) * 1000)
    return took


def sources_live_vs_tallies(url: str, n: int) -> Table:
    """The dashboard's sources counted live (what /api/stats ran before) and from the tallies."""
    from publisher.runtime import Runtime
    from publisher.store import dashboard as store
    from publisher.store import delivery_counts
    from publisher.store import subscribers as subs

    rt = Runtime(settings_for(url, Path(tempfile.gettempdir())))
    since = NOW - timedelta(weeks=5)
    table = Table(title="dashboard sources in-process (ms, p50): live count vs tallies")
    for col in ("source", "live", "tallies"):
        table.add_column(col, justify="right" if col != "source" else "left")
    calls: dict[str, Callable[[Any, bool], object]] = {
        "subscribers per region and status": lambda s, live: subs.counts(s, live=live),
        "subscribers per status": lambda s, live: subs.status_counts(s, live=live),
        "ledger rows per state": lambda s, live: delivery_counts.per_state(s, live=live),
        "ledger per region and state, 5 weeks": lambda s, live: delivery_counts.per_region_state(
            s, since=since, live=live
        ),
        "active readers per time zone": lambda s, live: store.readers_per_zone(s, live=live),
    }
    with rt.session() as session:
        for name, call in calls.items():
            row = [name]
            for live in (True, False):
                took = []
                for _ in range(n):
                    t = time.perf_counter()
                    call(session, live)
                    took.append((time.perf_counter() - t) * 1000)
                row.append(f"{statistics.median(took):.1f}")
            table.add_row(*row)
    rt.close()
    return table


def trigger_cost(server: str, rows: int) -> None:
    """What the tally triggers cost the ledger's writers: enqueue ``rows`` rows, then claim and
    record them in batches of 100 as a worker does, with the triggers on and off, alternated."""
    from publisher.delivery.ledger import RowUpdate
    from publisher.models import DeliveryState
    from publisher.runtime import Runtime
    from publisher.store import deliveries as ledger

    name = "bench_console_triggers"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server.rpartition("/")
    url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://")
    migrate(url)
    with psycopg.connect(f"{base}/{name}") as conn:
        copy_rows(conn, "subscribers", ["email", "key", "status", "locale", "created"], (
            (f"r{i}@example.org", f"{i:032x}", "active", "en", naive(NOW)) for i in range(rows)
        ))  # fmt: skip
        digest_id = conn.execute(
            "INSERT INTO digests (region, week, status, window_start, window_end, item_ids,"
            " subject, html, text, created, locale) VALUES ('gt', '2026-W48', 'assembled',"
            " %s, %s, '', 's', '', '', %s, 'en') RETURNING id",
            (naive(NOW), naive(NOW), naive(NOW)),
        ).fetchone()[0]  # type: ignore[index]
        ids = [r[0] for r in conn.execute("SELECT id FROM subscribers ORDER BY id")]
        conn.commit()
    rt = Runtime(settings_for(url, Path(tempfile.gettempdir())))
    table = Table(title=f"ledger writes with and without the tally triggers ({rows} rows, PG)")
    for col in ("triggers", "enqueue rows/s", "claim+record rows/s"):
        table.add_column(col, justify="right" if col != "triggers" else "left")
    now = datetime.now(UTC)
    for mode in ("ENABLE", "DISABLE", "ENABLE", "DISABLE"):
        with rt.session() as session:
            session.execute(sa_text("TRUNCATE deliveries CASCADE"))
            session.execute(sa_text(f"ALTER TABLE deliveries {mode} TRIGGER USER"))
        t0 = time.perf_counter()
        with rt.session() as session:
            ledger.enqueue(session, digest_id=int(digest_id), subscriber_ids=ids)
        enqueue = time.perf_counter() - t0
        t0, after = time.perf_counter(), 0
        while True:
            with rt.session() as session:
                claim = ledger.claim_batch(
                    session, worker_id="bench", limit=100, lease_until=now + timedelta(hours=1),
                    now=now, after_id=after,
                )  # fmt: skip
                if claim.empty:
                    break
                after = claim.last_id
                updates = [RowUpdate(r.row.id, DeliveryState.sent) for r in claim.recipients]
                ledger.record(session, worker_id="bench", updates=updates, now=now)
        drain = time.perf_counter() - t0
        table.add_row(mode.lower() + "d", f"{rows / enqueue:,.0f}", f"{rows / drain:,.0f}")
    with rt.session() as session:
        session.execute(sa_text("ALTER TABLE deliveries ENABLE TRIGGER USER"))
    rt.close()
    console.print(table)


def sa_text(sql: str) -> Any:
    import sqlalchemy as sa

    return sa.text(sql)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="bench_console")
    parser.add_argument("--small", action="store_true", help="10k subscribers, 5k items, 50k rows")
    parser.add_argument("--subscribers", type=int)
    parser.add_argument("--items", type=int)
    parser.add_argument("--ledger", type=int)
    parser.add_argument("--weeks", type=int, default=20)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--budget", type=float, default=300.0, help="ms; slower pages are marked")
    parser.add_argument("--reuse", action="store_true", help="keep the database of a last run")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--trigger-cost", type=int, metavar="ROWS",
        help="only measure the ledger writes with and without the tally triggers",
    )  # fmt: skip
    args = parser.parse_args()
    if args.trigger_cost:
        trigger_cost(args.server, args.trigger_cost)
        return
    base, _, _ = args.server.rpartition("/")
    dsn = f"{base}/{args.database}"
    url = dsn.replace("postgresql://", "postgresql+psycopg://")
    root = Path(tempfile.gettempdir()) / f"publisher-{args.database}"
    if args.serve:
        serve(url, root, args.serve)
        return
    size = SIZES["small" if args.small else "full"]
    counts = {k: getattr(args, k) or v for k, v in size.items()}
    console.print(f"load before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {counts}")
    if not args.reuse:
        with psycopg.connect(args.server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{args.database}"')
        t0 = time.perf_counter()
        build(url, weeks=args.weeks, seed=args.seed, **counts)
        console.print(f"store built in {time.perf_counter() - t0:.0f} s")
    else:
        migrate(url)  # a store built by an older checkout gets the newer migrations
    add_users(url, root)
    paths = discover()
    values = samples(dsn)
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, __file__, "--server", args.server, "--database", args.database,
         "--serve", str(port)],
    )  # fmt: skip
    try:
        base_url = f"http://127.0.0.1:{port}"
        for _ in range(400):
            if child.poll() is not None:
                raise SystemExit("the app did not start")
            try:
                httpx.get(f"{base_url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        rows = measure(base_url, paths, values, args)
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=20)
    one = select_one(dsn, 200)
    ref = statistics.median(one)
    table = Table(title=f"console pages over HTTP, {args.requests} requests each (ms)")
    for col in ("page", "as", "status", "p50", "p95", "p50 / SELECT 1"):
        table.add_column(col, justify="left" if col in ("page", "as") else "right")
    table.add_row("SELECT 1 (psycopg)", "", "", f"{ref:.2f}", f"{pct(one, 0.95):.2f}", "1")
    for path, who, status, took in rows:
        if not took:
            table.add_row(path, who, status, "", "", "")
            continue
        p50, p95 = statistics.median(took), pct(took, 0.95)
        mark = " > budget" if p95 > args.budget else ""
        table.add_row(path, who, status, f"{p50:.1f}", f"{p95:.1f}{mark}", f"{p50 / ref:.0f}x")
    console.print(table)
    console.print(sources_live_vs_tallies(url, 5))
    console.print(f"load after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


def measure(
    base_url: str, paths: list[str], values: dict[str, str], args: argparse.Namespace
) -> list[tuple[str, str, str, list[float]]]:
    rows: list[tuple[str, str, str, list[float]]] = []
    clients = {}
    for role, email in USERS.items():
        client = httpx.Client(base_url=base_url, timeout=60)
        login(client, email)
        clients[role] = client
    api = httpx.Client(base_url=base_url, timeout=60, headers={"authorization": f"Bearer {TOKEN}"})
    try:
        for path in paths:
            target = fill(path, values)
            if target is None:
                rows.append((path, "", "no sample for its parameter", []))
                continue
            client, who = (
                (clients["admin"], "admin") if path.startswith("/admin") else (api, "token")
            )
            status, took = timed(
                lambda c=client, t=target: c.get(t),  # type: ignore[misc]
                args.requests, args.warmup,
            )  # fmt: skip
            rows.append((target, who, str(status), took))
    finally:
        for client in [*clients.values(), api]:
            client.close()
    return rows


if __name__ == "__main__":
    main()
