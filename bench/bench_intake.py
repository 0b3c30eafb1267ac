"""Import plus region inference of generated items, next to a bare sqlite3 insert of the same rows.

    .venv/bin/python bench/bench_intake.py [--items 100000]

Times are CPU seconds of this process (time.process_time), so a busy machine moves them little.
The baseline writes the same titles and summaries with sqlite3.executemany and no cleaning,
dedupe or inference: the floor any importer on the same file system pays.
"""

from __future__ import annotations

import argparse
import csv
import random
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from publisher.pipeline.intake import import_records, read_source
from publisher.runtime import Runtime
from publisher.settings import Settings

PLACES = [
    "Guatemala", "Honduras", "El Salvador", "Costa Rica", "Panama", "Mexico", "Belize",
    "Colombia", "Peru", "Ecuador", "Chile", "Brazil", "Argentina", "Haiti", "Jamaica",
    "the Dominican Republic", "Cuba", "Guyana", "Venezuela", "Canada", "Central America",
    "the Caribbean", "South America", "the Americas", "Kenya", "Spain", "Centroamérica",
]  # fmt: skip
TOPICS = [
    "strengthens border management", "opens a migrant reception centre",
    "publishes labour migration study", "trains officials on trafficking in persons",
    "launches return and reintegration programme", "updates displacement tracking data",
]  # fmt: skip


def generate(path: Path, n: int, seed: int = 7) -> None:
    """Write n distinct items as CSV, each naming one or two places."""
    rnd = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["title", "summary"])
        for i in range(n):
            place = rnd.choice(PLACES)
            other = rnd.choice(PLACES)
            w.writerow(
                [
                    f"{place} {rnd.choice(TOPICS)} ({i})",
                    f"Officials from {other} and partners met this week; report number {i} "
                    "describes the needs of migrants and host communities in detail.",
                ]
            )


def run_publisher(csv_path: Path, db: Path) -> float:
    rt = Runtime(Settings(_env_file=None, database_url=f"sqlite:///{db}"))
    rt.migrate()
    _ = rt.inferrer
    start = time.process_time()
    with rt.session() as s:
        report = import_records(
            s, records=read_source(str(csv_path)), tree=rt.tree, inferrer=rt.inferrer,
            now=datetime.now(UTC),
        )  # fmt: skip
    elapsed = time.process_time() - start
    assert not report.errors and report.added > 0
    rt.close()
    return elapsed


def run_baseline(csv_path: Path, db: Path) -> float:
    start = time.process_time()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, title TEXT, summary TEXT)")
    with csv_path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))[1:]
    conn.executemany("INSERT INTO items (title, summary) VALUES (?, ?)", rows)
    conn.commit()
    conn.close()
    return time.process_time() - start


def main(argv: list[str] | None = None) -> list[tuple[str, int, float, float]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "items.csv"
        generate(csv_path, args.items)
        ours = run_publisher(csv_path, Path(tmp) / "publisher.db")
        base = run_baseline(csv_path, Path(tmp) / "baseline.db")
    rows = [
        ("publisher: clean + infer + dedupe + insert", args.items, ours, args.items / ours),
        ("baseline: sqlite3 executemany, no checks", args.items, base, args.items / base),
    ]
    table = Table("import (SQLite file)", "items", "CPU seconds", "items/s", "vs baseline")
    for name, n, secs, rate in rows:
        table.add_row(name, f"{n:,}", f"{secs:.2f}", f"{rate:,.0f}", f"{base / secs:.2f}x")
    Console().print(table)
    return rows


if __name__ == "__main__":
    main()
