"""Time one fire of the weekly editions: N readers over (nearly) N distinct region sets.

    .venv/bin/python bench/bench_fire.py [--readers 5000] [--database-url sqlite:///...]

The store gets the sample items (arrived two days before the fire) and N active readers, each
following 3 random countries (seeded) in English, Spanish or Portuguese; then ``fire_editions``
runs once at a fixed cutoff, and once more an hour later (a re-run: nothing is owed). It prints
the fire's counts (editions, region sets, frozen digests, item fragments rendered) and seconds.
Without --database-url it uses a fresh SQLite file in a temporary folder.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from publisher.models import SubscriberStatus
from publisher.pipeline.editions import fire_editions
from publisher.pipeline.intake import import_records, read_source
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.store.subscribers import NewSubscriber, bulk_add

CUTOFF = datetime(2026, 11, 30, 8, tzinfo=UTC)
SEED = Path(__file__).resolve().parents[1] / "publisher" / "data" / "demo-items.txt"


class FixedRuntime(Runtime):
    """The bench's clock stands at the cutoff."""

    def now(self) -> datetime:
        return CUTOFF


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=5000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        settings = Settings(
            _env_file=None, database_url=url, secret_key="bench", var_dir=Path(tmp) / "var",
            feeds_dir=Path(tmp) / "feeds",
        )  # fmt: skip
        rt = FixedRuntime(settings)
        rt.migrate()
        with rt.session() as session:
            import_records(session, records=read_source(str(SEED), "seed"), tree=rt.tree,
                           inferrer=rt.inferrer, now=CUTOFF - timedelta(days=2))  # fmt: skip
        countries = [r.slug for r in rt.tree if r.level == "country"]
        rng = random.Random(1)
        rows = [
            NewSubscriber(
                email=f"r{i}@example.org",
                regions=tuple(rng.sample(countries, 3)),
                status=SubscriberStatus.active,
                locale=rng.choice(["en", "es", "pt"]),
            )
            for i in range(args.readers)
        ]
        with rt.session() as session:
            bulk_add(session, rows=rows, now=CUTOFF - timedelta(days=10))
        started = time.perf_counter()
        r = fire_editions(rt, now=CUTOFF, zone=None, runner="bench")
        took = time.perf_counter() - started
        print(
            f"fire: readers={r.readers} region_sets={r.region_sets} editions={r.editions} "
            f"with_items={r.editions - r.empty} queued={r.queued} digests={len(r.digest_ids)} "
            f"fragments={r.fragments} seconds={took:.2f}"
        )
        started = time.perf_counter()
        again = fire_editions(rt, now=CUTOFF + timedelta(hours=1), zone=None, runner="bench")
        print(f"re-run: editions={again.editions} already={again.already} "
              f"seconds={time.perf_counter() - started:.2f}")  # fmt: skip
        rt.close()


if __name__ == "__main__":
    main()
