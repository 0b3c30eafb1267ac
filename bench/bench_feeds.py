"""Time building the whole feed family for many items, against Django's feedgenerator.

    .venv/bin/python bench/bench_feeds.py [--items 100000] [--limit 50] [--seed 7]

(a) ``build_feeds`` end to end into a temporary directory: check every entry, plan every
region's feed, render RSS, Atom and JSON Feed for each, write them and index.opml; then the
same build again into the same directory (nothing changed, so nothing is written).
(b) the baseline: Django's ``Rss201rev2Feed`` and ``Atom1Feed`` rendering the same planned
entries, next to our RSS + Atom alone on that plan, so the two columns compare like with like.
The region tree is the real M49 one (publisher.regions.tree) when it imports, otherwise, or
with --synthetic, a made-up tree of the same shape (world > 5 regions > 22 sub-regions >
intermediate regions > ~250 countries). Items are synthetic; no store is involved.
"""

from __future__ import annotations

import argparse
import importlib
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from publisher.syndication import (
    ALL,
    BuildReport,
    DirectoryWriter,
    FeedChannel,
    FeedEntry,
    FeedWriter,
    JsonRenderer,
    XmlRenderer,
    build_feeds,
    plan_feeds,
)

BASE_URL = "http://127.0.0.1:8000"
WORDS = [
    "migrantes", "personas", "refugiados", "frontera", "Guatemala", "México", "Honduras",
    "Caribbean", "support", "community", "health", "shelters", "families", "children",
    "returnees", "integration", "programme", "Central", "America", "workshop", "authorities",
    "data", "displacement", "climate", "resilience", "español", "niñez",
]  # fmt: skip


def synthetic_tree(rng: random.Random) -> tuple[dict[str, str | None], dict[str, str]]:
    """A parent map and names shaped like M49: 1 + 5 + 22 + 8 + ~250 nodes."""
    parent: dict[str, str | None] = {"world": None}
    countries = iter(f"{a}{b}" for a in "abcdefghijklmnopqrstuvwxyz" for b in "abcdefghij")
    for r in range(5):
        region = f"region-{r}"
        parent[region] = "world"
        for s in range(22 // 5 + (r < 22 % 5)):
            sub = f"{region}-sub-{s}"
            parent[sub] = region
            homes = [sub]
            if len([p for p in parent if "-mid-" in p]) < 8 and s == 0:
                homes = [f"{sub}-mid-{m}" for m in range(2)]
                parent.update(dict.fromkeys(homes, sub))
            for home in homes:
                for _ in range(rng.randint(6, 14)):
                    parent[next(countries)] = home
    names = {slug: slug.replace("-", " ").title() for slug in parent}
    return parent, names


def related_from(parent: dict[str, str | None]) -> Callable[[str], frozenset[str]]:
    """related(slug) = the slug, its ancestors and its descendants, as DESIGN.md defines it."""
    up: dict[str, set[str]] = {}
    for slug in parent:
        chain, node = {slug}, parent[slug]
        while node is not None:
            chain.add(node)
            node = parent[node]
        up[slug] = chain
    family = {slug: set(chain) for slug, chain in up.items()}
    for slug, chain in up.items():
        for ancestor in chain:
            family[ancestor].add(slug)
    frozen = {slug: frozenset(members) for slug, members in family.items()}
    return frozen.__getitem__


def real_tree() -> tuple[list[str], Callable[[str], frozenset[str]], dict[str, str]] | None:
    """Slugs, related and English names of the packaged M49 tree, or None if it is missing."""
    try:  # imported by name: the bench must run (and type-check) whatever state it is in
        tree = importlib.import_module("publisher.regions.tree").RegionTree.load()
    except ImportError:
        return None
    return [r.slug for r in tree], tree.related, {r.slug: r.name_en for r in tree}


def synthetic_entries(n: int, slugs: Sequence[str], rng: random.Random) -> list[FeedEntry]:
    """Items spread over a year: mostly one country, some two, some a whole region."""
    countries = [s for s in slugs if len(s) == 2]
    areas = [s for s in slugs if len(s) > 2]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    entries = []
    for i in range(1, n + 1):
        roll = rng.random()
        if roll < 0.8:
            regions: tuple[str, ...] = (rng.choice(countries),)
        elif roll < 0.9:
            regions = tuple(rng.sample(countries, 2))
        else:
            regions = (rng.choice(areas),)
        published = start + timedelta(seconds=rng.randrange(365 * 86400))
        entries.append(
            FeedEntry(
                id=i,
                guid=f"bench-{i}",
                title=" ".join(rng.choices(WORDS, k=8)).capitalize(),
                summary=" ".join(rng.choices(WORDS, k=40)) + ".",
                link=f"https://example.org/news/{i}" if i % 2 else None,
                published=published,
                updated=published + timedelta(minutes=rng.randrange(3000)),
                regions=regions,
            )
        )
    return entries


def django_render(plan: dict[str, list[FeedEntry]], names: dict[str, str]) -> int:
    """Render RSS and Atom for every planned feed with django.utils.feedgenerator; total bytes."""
    from django.conf import settings

    if not settings.configured:
        settings.configure()
    from django.utils.feedgenerator import Atom1Feed, Rss201rev2Feed

    total = 0
    for slug, entries in plan.items():
        for kind, ext in ((Rss201rev2Feed, "rss"), (Atom1Feed, "atom")):
            feed = kind(
                title=f"News: {slug}",
                link=f"{BASE_URL}/regions/{slug}",
                description="Regional news",
                feed_url=f"{BASE_URL}/feeds/{slug}.{ext}",
                author_name="Regional News",
                author_email="news@example.org",
                language="en",
            )
            for e in entries:
                feed.add_item(
                    title=e.title,
                    link=f"{BASE_URL}/items/{e.id}",
                    description=e.summary,
                    unique_id=e.guid,
                    unique_id_is_permalink=False,
                    pubdate=e.published,
                    updateddate=e.updated,
                    categories=[names.get(s, s) for s in e.regions],
                )
            total += len(feed.writeString("utf-8"))
    return total


def best_of(repeat: int, run: Callable[[], object]) -> float:
    """The fastest of ``repeat`` runs: the least disturbed by whatever else the machine does."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    """Parse options, run every timing and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="report the best of N runs")
    parser.add_argument("--synthetic", action="store_true", help="use the made-up tree")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    real = None if args.synthetic else real_tree()
    if real is None:
        parent, names = synthetic_tree(rng)
        slugs, related, tree_name = sorted(parent), related_from(parent), "synthetic"
    else:
        (slugs, related, names), tree_name = real, "M49"
    entries = synthetic_entries(args.items, slugs, rng)

    def channel_for(slug: str) -> FeedChannel:
        title = "All regions" if slug == ALL else names[slug]
        return FeedChannel(
            slug, f"Regional News: {title}", "Regional news", BASE_URL, "Regional News",
            "news@example.org",
        )  # fmt: skip

    def build(writer: FeedWriter) -> BuildReport:
        return build_feeds(
            entries, channel_for=channel_for, related=related, slugs=slugs,
            category_names=names, writer=writer, limit=args.limit,
        )  # fmt: skip

    plan = plan_feeds(entries, related=related, slugs=slugs, limit=args.limit)
    channels = {slug: channel_for(slug) for slug in plan}

    def xml_only() -> None:
        renderer = XmlRenderer(names)
        for slug, planned in plan.items():
            renderer.both(channels[slug], planned)

    def json_only() -> None:
        renderer = JsonRenderer(names)
        for slug, planned in plan.items():
            renderer.render(channels[slug], planned)

    reports: list[BuildReport] = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = (Path(tmp) / f"run{n}" for n in range(args.repeat))
        steps: list[tuple[str, Callable[[], object]]] = [
            ("(a) build_feeds into an empty dir",
             lambda: reports.append(build(DirectoryWriter(next(fresh))))),
            ("    the same, again (no file changes)",
             lambda: reports.append(build(DirectoryWriter(Path(tmp) / "run0")))),
            ("    the same, writer that keeps nothing", lambda: build(Discard())),
            ("    plan_feeds alone",
             lambda: plan_feeds(entries, related=related, slugs=slugs, limit=args.limit)),
            ("    our RSS + Atom alone (feedgen)", xml_only),
            ("    our JSON Feed alone", json_only),
        ]  # fmt: skip
        if real is not None:
            steps.append(
                (f"(c) the same from a SQLite store of {args.items:,} items",
                 store_build(entries, Path(tmp), args.limit))
            )  # fmt: skip
        steps.append(("(b) Django RSS + Atom (baseline)", lambda: django_render(plan, names)))
        rows = [(label, best_of(args.repeat, run)) for label, run in steps]
    django = rows[-1][1]
    table = Table(
        title=f"{args.items:,} items, {len(slugs)} {tree_name} slugs, {len(plan)} feeds, "
        f"limit {args.limit}, best of {args.repeat}"
    )
    table.add_column("what")
    table.add_column("seconds", justify="right")
    table.add_column("vs Django RSS+Atom", justify="right")
    for label, seconds in rows:
        table.add_row(label, f"{seconds:.3f}", f"{seconds / django:.2f}x")
    console = Console()
    console.print(table)
    first, again = reports[0], reports[args.repeat]
    built = rows[0][1]
    console.print(
        f"files {len(first.files)}: written {len(first.changed)}, on the rebuild "
        f"{len(again.changed)}; entries across feeds {sum(first.per_feed.values()):,}; "
        f"skipped {len(first.skipped)}; goal (a) < 2 s {'met' if built < 2 else 'missed'}"
    )


def store_build(entries: Sequence[FeedEntry], folder: Path, limit: int) -> Callable[[], object]:
    """A SQLite file store holding ``entries``, and a call that builds every feed from it."""
    from publisher.pipeline.feeds import build_store_feeds
    from publisher.runtime import Runtime
    from publisher.settings import Settings
    from publisher.store.items import ItemInsert, insert_items

    settings = Settings(
        _env_file=None, database_url=f"sqlite:///{folder / 'store.db'}", base_url=BASE_URL,
        feeds_dir=folder / "feeds", feed_limit=limit,
    )  # fmt: skip
    rt = Runtime(settings)
    rt.migrate()
    rows = [
        ItemInsert(e.guid, e.title, e.summary, e.link, e.published, e.regions, "bench", False)
        for e in entries
    ]
    with rt.session() as session:
        insert_items(session, items=rows, now=max(e.updated for e in entries))

    def build() -> object:
        with rt.session() as session:
            return build_store_feeds(session, settings=settings, tree=rt.tree)

    return build


class Discard:
    """A writer that keeps nothing, to time the build without the disk."""

    def write(self, name: str, data: bytes) -> bool:
        """Accept the bytes and drop them."""
        return True


if __name__ == "__main__":
    main()
