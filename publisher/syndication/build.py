"""Plan every region's feed, then write the whole family through an injected writer.

Collect first, write second (as Pelican does): ``plan_feeds`` decides which entries each feed
holds without rendering anything, ``build_feeds`` renders and hands bytes to a ``FeedWriter``,
so tests keep files in memory and production writes ``feeds/`` atomically.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import Protocol

from publisher.syndication.entries import ALL, FeedChannel, FeedEntry, entry_problem
from publisher.syndication.jsonfeed import VERSION as JSON_FEED_VERSION
from publisher.syndication.jsonfeed import JsonRenderer
from publisher.syndication.opml import render_opml
from publisher.syndication.xmlfeeds import GENERATOR, XmlRenderer

INDEX = "index.opml"
# What this package's own files start with or contain, so prune never deletes anything else.
_OWN_MARKS = {
    ".rss": f"<generator>{GENERATOR}</generator>".encode(),
    ".atom": f"<generator>{GENERATOR}</generator>".encode(),
    ".json": f'{{"version": "{JSON_FEED_VERSION}", '.encode(),
}


class FeedWriter(Protocol):
    """Where built files go; returns whether the stored bytes changed (None: cannot tell)."""

    def write(self, name: str, data: bytes) -> bool | None: ...


class DirectoryWriter:
    """Writes files into one directory atomically and only when their bytes change.

    Unchanged files keep their mtime, so HTTP Last-Modified and ETag stay put between builds.
    No fsync: every build rewrites whatever differs, so a file torn by a crash heals next time.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.changed: list[str] = []
        self._made = False

    def write(self, name: str, data: bytes) -> bool:
        """Store ``data`` as ``name`` unless it already holds exactly these bytes."""
        if not name or name != Path(name).name or name.startswith("."):
            raise ValueError(f"feed file name {name!r} must be a plain file name")
        path = self.directory / name
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                return False
        except FileNotFoundError:
            pass
        if not self._made:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._made = True
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                os.fchmod(fd, 0o644)  # mkstemp makes 0600; the web server must read the feeds
                file.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.changed.append(name)
        return True

    def prune(self, keep: Iterable[str]) -> list[str]:
        """Delete the feeds this package wrote that are not in ``keep``; return their names.

        A region that lost all its items must not keep serving its old feed; files that lack
        this package's marks (a README, someone's notes.json) are never touched.
        """
        keep = set(keep)
        if not self.directory.is_dir():
            return []
        removed = []
        for path in sorted(self.directory.iterdir()):
            mark = _OWN_MARKS.get(path.suffix)
            if mark is None or path.name in keep or not path.is_file():
                continue
            with path.open("rb") as file:
                head = file.read(4096)
            if mark in head:
                path.unlink()
                removed.append(path.name)
        return removed


@dataclass
class BuildReport:
    """What a build wrote, what changed on disk, and which items it left out and why."""

    files: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    per_feed: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def plan_feeds(
    entries: Sequence[FeedEntry],
    *,
    related: Callable[[str], frozenset[str]],
    slugs: Iterable[str],
    limit: int = 50,
    accept: Callable[[FeedEntry], bool] | None = None,
) -> dict[str, list[FeedEntry]]:
    """The newest ``limit`` entries of each region feed and of "all", newest first.

    An entry tagged t belongs to feed s iff s is in related(t) (related is symmetric), so the
    work runs per entry, not per slug x entry: one sort, then each entry lands in the buckets
    of its tags' relatives that are still open. ``accept`` is asked once about each entry a
    feed still has room for (build_feeds checks entries there, not all 100,000). Regions
    without entries are left out; "all" is always there, first, the others follow by slug.
    """
    wanted = set(slugs) - {ALL}
    everything: list[FeedEntry] = []
    buckets: dict[str, list[FeedEntry]] = {}
    relatives: dict[str, frozenset[str]] = {}
    targets: dict[tuple[str, ...], list[str]] = {}  # regions tuple -> its slugs not yet full

    def relatives_of(tag: str) -> frozenset[str]:
        if tag not in relatives:
            try:
                relatives[tag] = related(tag) & wanted
            except KeyError:  # a tag outside the tree only feeds its own slug, if wanted
                relatives[tag] = frozenset({tag}) & wanted
        return relatives[tag]

    for entry in _newest_first(entries, accept):
        tags = entry.regions
        try:
            room = targets.get(tags)
        except TypeError:  # unhashable: not a tuple of slugs, so "all" at most (accept decides)
            tags, room = (), targets.get(())
        if room is None:
            room = targets[tags] = sorted(frozenset().union(*map(relatives_of, tags)))
        if room:  # full buckets drop out for good, so later entries of these tags skip fast
            room = [slug for slug in room if len(buckets.get(slug, ())) < limit]
            targets[tags] = room
        if not room and len(everything) >= limit:
            continue
        if accept is not None and not accept(entry):
            continue
        if len(everything) < limit:
            everything.append(entry)
        for slug in room:
            buckets.setdefault(slug, []).append(entry)
    plan = {ALL: everything}
    plan.update((slug, buckets[slug]) for slug in sorted(buckets))
    return plan


def _newest_first(
    entries: Sequence[FeedEntry], accept: Callable[[FeedEntry], bool] | None
) -> list[FeedEntry]:
    """Entries by published then id, both descending; ones that cannot be ordered are dropped."""
    try:
        newest = sorted(entries, key=attrgetter("id"), reverse=True)  # two stable sorts
        newest.sort(key=attrgetter("published"), reverse=True)  # beat one on tuples
        return newest
    except (TypeError, AttributeError):  # a naive or missing date, or a non-integer id
        pass
    orderable = []
    for entry in entries:
        published = getattr(entry, "published", None)
        if (
            type(entry.id) is int
            and isinstance(published, datetime)
            and published.utcoffset() is not None
        ):
            orderable.append(entry)
        elif accept is not None:
            accept(entry)  # rejects it, and build_feeds records why
    return _newest_first(orderable, None)


def build_feeds(
    entries: Sequence[FeedEntry],
    *,
    channel_for: Callable[[str], FeedChannel],
    related: Callable[[str], frozenset[str]],
    slugs: Iterable[str],
    category_names: Mapping[str, str],
    writer: FeedWriter,
    limit: int = 50,
    opml_title: str | None = None,
) -> BuildReport:
    """Write {slug}.rss/.atom/.json for every planned feed and index.opml listing them all.

    Bad entries are left out and listed once in ``report.skipped``; they never stop a feed.
    Entries are checked where a feed has room for them, so a bad item too old for any feed
    is neither rendered nor reported. With a ``DirectoryWriter``, feeds that no longer exist
    are removed (``report.removed``).
    """
    report = BuildReport()
    reported: set[tuple[int, str]] = set()

    def skip(entry: FeedEntry, reason: str) -> None:
        if (entry.id, reason) not in reported:
            reported.add((entry.id, reason))
            report.skipped.append((entry.id, reason))

    def accept(entry: FeedEntry) -> bool:
        problem = entry_problem(entry)
        if problem is not None:
            skip(entry, problem)
        return problem is None

    def put(name: str, data: bytes) -> None:
        report.files.append(name)
        if writer.write(name, data) is not False:
            report.changed.append(name)

    channels = []
    xml_feeds, json_feeds = XmlRenderer(category_names), JsonRenderer(category_names)
    plan = plan_feeds(entries, related=related, slugs=slugs, limit=limit, accept=accept)
    for slug, planned in plan.items():
        channel = channel_for(slug)
        channels.append(channel)
        left_out: set[int] = set()

        def feed_skip(entry: FeedEntry, reason: str, left_out: set[int] = left_out) -> None:
            left_out.add(entry.id)
            skip(entry, reason)

        rss, atom = xml_feeds.both(channel, planned, on_skip=feed_skip, checked=True)
        put(f"{slug}.rss", rss)
        put(f"{slug}.atom", atom)
        put(f"{slug}.json", json_feeds.render(channel, planned, on_skip=feed_skip, checked=True))
        report.per_feed[slug] = len(planned) - len(left_out)

    title = opml_title or f"{channels[0].author_name}: all feeds"
    date = max((entry.updated for feed in plan.values() for entry in feed), default=None)
    put(INDEX, render_opml(channels, title=title, date=date))
    if isinstance(writer, DirectoryWriter):
        report.removed = writer.prune(report.files)
    return report
