"""The console's item list query at 100,000 items on PostgreSQL: p50/p95 per filter.

Summaries are about 2,400 characters (the demo's average is 420), so the text filter's bounded
window is measured pessimistically.

    .venv/bin/python bench/bench_item_search.py [--items 100000] [--runs 30]

Builds a fresh database (PUBLISHER_TEST_PG, default postgresql://postgres@127.0.0.1:5432/test
as the admin connection) with bulk inserts, runs each filter ``runs`` times next to a bare
``SELECT 1``, and drops the database. The text filter reads at most SCAN rows per page.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import pg_database, timed
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.store.item_search import SCAN, ItemFilter, search_items
from publisher.store.items import ItemInsert, insert_items

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
WORDS = [
    "floods", "roads", "elections", "mining", "sugar", "migrants", "border", "school", "health",
    "water", "court",
]  # fmt: skip
PLACES = [("gt",), ("hn",), ("sv",), ("mx",), ("cl",), ("co",), ("cu", "caribbean"), ("br",)]


def build(rt: Runtime, n: int) -> None:
    rng = random.Random(7)
    start = NOW - timedelta(days=3 * 365)
    rows = []
    for i in range(n):
        words = " ".join(rng.choice(WORDS) for _ in range(8))
        rows.append(
            ItemInsert(
                guid=f"b{i}", title=f"Item {i} {words}", summary=(words + " ") * 40,
                link=None, published=start + timedelta(minutes=15 * i), regions=PLACES[i % 8],
                source="bench", regions_inferred=False, lang=("en", "es", "pt")[i % 3],
            )
        )  # fmt: skip
    with rt.session() as session:
        insert_items(session, items=rows, now=NOW - timedelta(days=4 * 365))
    with rt.engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))


def pages(rt: Runtime, runs: int) -> None:
    """The whole GET /admin/items pages (session check, query, template) in-process."""
    from fastapi.testclient import TestClient

    from publisher.pipeline import accounts
    from publisher.web.app import create_app

    with rt.session() as session:
        accounts.add_user(
            session, email="bench@example.org", role="editor", password="bench-password-1",
            actor="bench", now=NOW,
        )  # fmt: skip
    app = create_app(rt.settings, runtime=rt)
    with TestClient(app, base_url=rt.settings.base_url, follow_redirects=False) as client:
        form = client.get("/admin/login").text
        token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post(
            "/admin/login",
            data={"email": "bench@example.org", "password": "bench-password-1",
                  "csrf_token": token, "next": "/admin/items"},
        )  # fmt: skip
        print(f"\n{'page (HTTP, in-process)':34} {'p50 ms':>8} {'p95 ms':>8}")
        for url in (
            "/admin/items", "/admin/items?region=central-america", "/admin/items?q=zzzz",
            "/admin/items?q=border&region=cl&language=es", "/admin/items/new",
            "/admin/items/1/edit", "/admin/items/upload",
        ):  # fmt: skip

            def get(u: str = url) -> object:
                answer = client.get(u)
                assert answer.status_code == 200, (u, answer.status_code)
                return answer

            p50, p95 = timed(get, runs)
            print(f"{url:34} {p50:8.2f} {p95:8.2f}")


def measure(rt: Runtime, args: argparse.Namespace) -> None:
    rt.migrate()
    t = time.perf_counter()
    build(rt, args.items)
    print(f"{args.items:,} items built in {time.perf_counter() - t:.1f} s; SCAN={SCAN:,}")
    tree = rt.tree
    central = tree.descendants("central-america") | {"central-america"}
    with rt.session() as session:
        middle = search_items(session, wanted=ItemFilter(), now=NOW, limit=1, after=None).rows[0]
    deep = (middle.published - timedelta(days=500), 10**9)
    cases: list[tuple[str, ItemFilter, object]] = [
        ("no filter", ItemFilter(), None),
        ("no filter, page 500 days back", ItemFilter(), deep),
        ("region central-america", ItemFilter(regions=central), None),
        ("region cl (1 in 8)", ItemFilter(regions=frozenset({"cl"})), None),
        ("language pt", ItemFilter(lang="pt"), None),
        ("text common (floods)", ItemFilter(text="floods"), None),
        ("text absent (zzzz)", ItemFilter(text="zzzz"), None),
        ("text + region + dates", ItemFilter(
            text="border", regions=central, since=NOW - timedelta(days=400),
            until=NOW - timedelta(days=100)), None),
        ("status embargoed", ItemFilter(status="embargoed"), None),
        ("status withdrawn", ItemFilter(status="withdrawn"), None),
    ]  # fmt: skip
    print(f"{'query':34} {'p50 ms':>8} {'p95 ms':>8} {'rows':>5}")
    with rt.session() as session:
        p50, p95 = timed(lambda: session.execute(sa.text("SELECT 1")).all(), args.runs)
        print(f"{'SELECT 1 (round trip)':34} {p50:8.2f} {p95:8.2f}")
        for label, wanted, after in cases:
            found = search_items(session, wanted=wanted, now=NOW, after=after)  # type: ignore[arg-type]

            def run(w: ItemFilter = wanted, a: object = after) -> object:
                return search_items(session, wanted=w, now=NOW, after=a)  # type: ignore[arg-type]

            p50, p95 = timed(run, args.runs)
            print(f"{label:34} {p50:8.2f} {p95:8.2f} {len(found.rows):5}")
    pages(rt, args.runs)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with pg_database("bench_items") as url:
        settings = Settings(_env_file=None, database_url=url, secret_key="bench")
        rt = Runtime(settings)
        try:
            measure(rt, args)
        finally:
            rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
