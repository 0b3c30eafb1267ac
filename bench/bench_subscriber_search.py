"""The console's subscriber pages at 1,000,000 subscribers on PostgreSQL: p50/p95 per page.

    .venv/bin/python bench/bench_subscriber_search.py [--subscribers 1000000] [--runs 20]
                                                      [--import-lines 20000]

Builds a fresh database (PUBLISHER_TEST_PG, default postgresql://postgres@127.0.0.1:5432/test
as the admin connection) with set-based inserts (every subscriber follows one region, 100,000
suppression entries, 5 ledger rows for the subscriber shown), logs an admin in through the
form and times each GET page over HTTP (the app in-process, TestClient) next to a bare
``SELECT 1``, then uploads a CSV of ``--import-lines`` new addresses to the import page twice
(new, then a re-import of the same file) and drops the database. "contains" reads the pg_trgm
index of migration 0019 (three characters or more).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import pg_database, timed
from publisher.pipeline import accounts
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.web.app import create_app

ADMIN = ("bench-admin@example.org", "bench-password-1")
FILL = """
INSERT INTO subscribers (email, key, status, locale, created, confirmed)
SELECT (ARRAY['maria','jose','ana','juan','luis','carmen','pedro','sofia','diego','lucia'])
         [1 + g % 10] || '.' || substr(md5(g::text), 1, 6) || g || '@'
         || (ARRAY['example.org','mail.example.com','correo.example.net'])[1 + g % 3],
       md5('k' || g::text),
       CASE WHEN g % 50 = 0 THEN 'bounced' WHEN g % 20 = 0 THEN 'unsubscribed'
            WHEN g % 10 = 0 THEN 'pending' ELSE 'active' END,
       'es', timestamp '2026-01-01' + g * interval '10 seconds',
       timestamp '2026-01-01' + g * interval '10 seconds'
FROM generate_series(1, :n) g;
INSERT INTO subscriptions (subscriber_id, region)
SELECT id, (ARRAY['gt','sv','hn','central-america'])[1 + id % 4] FROM subscribers;
INSERT INTO consents (subscriber_id, action, at, ip, regions, form_version)
SELECT id, 'signup', created, '192.0.2.1', 'gt', 'subscribe-2026-11' FROM subscribers;
INSERT INTO suppressions (email_hash, reason, created)
SELECT md5(g::text) || md5('x' || g::text),
       CASE WHEN g % 3 = 0 THEN 'hard_bounce' ELSE 'unsubscribed' END,
       timestamp '2026-01-01' + g * interval '100 seconds'
FROM generate_series(1, :n / 10) g;
INSERT INTO digests (region, week, status, window_start, window_end, item_ids, subject, html,
                     text, created, locale)
SELECT 'gt', '2026-W' || lpad(w::text, 2, '0'), 'assembled', now(), now(), '', '', '', '',
       now(), 'en'
FROM generate_series(40, 44) w;
INSERT INTO deliveries (digest_id, subscriber_id, state, attempts, last_error, message_id, locale)
SELECT id, :n / 2, 'sent', 1, '', '', 'en' FROM digests;
"""


def build(rt: Runtime, n: int) -> None:
    with rt.engine.begin() as conn:
        for statement in FILL.split(";"):
            if statement.strip():
                conn.execute(sa.text(statement), {"n": n})
        conn.execute(sa.text("ANALYZE"))
    with rt.session() as session:
        accounts.add_user(
            session, email=ADMIN[0], role="admin", password=ADMIN[1], actor="bench", now=rt.now()
        )


def log_in(client: TestClient) -> None:
    page = client.get("/admin/login").text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    data = {"email": ADMIN[0], "password": ADMIN[1], "next": "", "csrf_token": found.group(1)}
    assert client.post("/admin/login", data=data).status_code == 303


def time_import(client: TestClient, lines: int) -> None:
    """POST the same CSV twice to the import page: new addresses, then a re-import."""
    body = "email,regions,status,locale\r\n" + "".join(
        f"imported{i}@example.org,gt sv,pending,es\r\n" for i in range(lines)
    )
    form = client.get("/admin/subscribers/import").text
    found = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert found
    for label in ("new", "again"):
        t = time.perf_counter()
        r = client.post(
            "/admin/subscribers/import",
            data={"csrf_token": found.group(1)},
            files={"file": ("bench.csv", body.encode(), "text/csv")},
        )
        took = time.perf_counter() - t
        assert r.status_code == 200, r.status_code
        print(
            f"import {lines:,} lines ({len(body) / 1e6:.1f} MB), {label}: {took:.1f} s, "
            f"{lines / took:,.0f} lines/s"
        )


def measure(rt: Runtime, args: argparse.Namespace) -> None:
    n, settings = args.subscribers, rt.settings
    rt.migrate()
    t = time.perf_counter()
    build(rt, n)
    print(f"{n:,} subscribers built in {time.perf_counter() - t:.1f} s")
    middle = n // 2
    with rt.engine.connect() as db:
        hexed = db.execute(
            sa.text("SELECT substr(md5(:g), 1, 6)"), {"g": str(middle + 1)}
        ).scalar_one()
    pages = [
        ("list, no filter", "/admin/subscribers"),
        ("list, half-way back", f"/admin/subscribers?before={middle}"),
        ("status bounced", "/admin/subscribers?status=bounced"),
        ("prefix 'maria.' (common)", "/admin/subscribers?q=maria."),
        ("prefix 'jose.' + 6 hex (1 row)", f"/admin/subscribers?q=jose.{hexed}"),
        ("prefix 'zzz' (no match)", "/admin/subscribers?q=zzz"),
        ("contains 'example.net' (common)", "/admin/subscribers?q=example.net&match=contains"),
        ("contains 'zzz' (no match)", "/admin/subscribers?q=zzz&match=contains"),
        ("a person (5 ledger rows)", f"/admin/subscribers/{middle}"),
        ("add form", "/admin/subscribers/new"),
        ("import form", "/admin/subscribers/import"),
        ("export form", "/admin/subscribers/export"),
        ("suppression list", "/admin/suppressions"),
        ("suppressions hard_bounce", "/admin/suppressions?reason=hard_bounce"),
        ("suppressions complaint (none)", "/admin/suppressions?reason=complaint"),
        ("suppression look-up", "/admin/suppressions?address=ana.x1@example.org"),
    ]  # fmt: skip
    app = create_app(settings, runtime=rt)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        log_in(client)
        print(f"{'GET page':38} {'p50 ms':>8} {'p95 ms':>8}")
        with rt.session() as session:
            p50, p95 = timed(lambda: session.execute(sa.text("SELECT 1")).all(), args.runs)
        print(f"{'SELECT 1 (round trip)':38} {p50:8.2f} {p95:8.2f}")
        for label, path in pages:
            assert client.get(path).status_code == 200, path

            def run(p: str = path) -> object:
                return client.get(p)

            p50, p95 = timed(run, args.runs)
            print(f"{label:38} {p50:8.2f} {p95:8.2f}")
        if args.import_lines:
            time_import(client, args.import_lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--import-lines", type=int, default=20_000)
    args = parser.parse_args()
    with pg_database("bench_subs") as url:
        settings = Settings(
            _env_file=None, database_url=url, secret_key="bench",
            base_url="http://testserver",
        )  # fmt: skip
        rt = Runtime(settings)
        try:
            measure(rt, args)
        finally:
            rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
