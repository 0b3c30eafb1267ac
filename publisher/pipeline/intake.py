"""Importing items: read, clean, tag (given or inferred), skip what the store has, write in bulk."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlmodel import Session

from publisher.errors import InputError, UnknownRegionError
from publisher.intake.readers import (
    Read,
    decode_text,
    parse_csv,
    parse_json,
    parse_seed,
    read_csv,
    read_json,
    read_seed,
)
from publisher.intake.records import NewItem, RawRecord, clean_record
from publisher.intake.remote import feed_records, parse_feed, read_feed
from publisher.regions.infer import RegionInferrer
from publisher.regions.tree import RegionTree
from publisher.store.items import ItemInsert, existing_guids, hold_stamps, insert_items

Format = Literal["seed", "csv", "json", "feed"]


@dataclass(frozen=True, slots=True)
class LineResult:
    """What became of one record (the console's per-line report)."""

    line: int
    result: Literal["added", "present", "skipped"]
    reason: str = ""
    title: str = ""
    item_id: int | None = None
    same_as: int | None = None


@dataclass
class ImportReport:
    """What an import did: counts for the operator, errors as FILE:LINE: reason."""

    added: int = 0
    existing: int = 0
    inferred: int = 0
    errors: list[InputError] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    lines: list[LineResult] = field(default_factory=list)

    def merge(self, other: ImportReport) -> None:
        self.added += other.added
        self.existing += other.existing
        self.inferred += other.inferred
        self.errors += other.errors
        self.ids += other.ids
        self.lines += other.lines


def guess_format(source: str) -> Format:
    """Pick a reader from the file name: .csv, .json, .xml/.rss/.atom or a URL, else seed text."""
    lower = source.lower()
    if lower.startswith(("http://", "https://")) or lower.endswith((".xml", ".rss", ".atom")):
        return "feed"
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith(".json"):
        return "json"
    return "seed"


def read_source(source: str, fmt: Format | None = None, *, allow_private: bool = False) -> Read:
    """The records of one file or URL in the given (or guessed) format."""
    fmt = fmt or guess_format(source)
    if fmt == "feed":
        return read_feed(source, allow_private=allow_private)
    reader = {"seed": read_seed, "csv": read_csv, "json": read_json}[fmt]
    return reader(Path(source))


def read_upload(data: bytes, *, name: str, fmt: Format | None = None) -> Read:
    """The records of an uploaded file (the console), in the given or guessed format."""
    fmt = fmt or guess_format(name)
    if fmt == "feed":
        yield from feed_records(parse_feed(data, source=name), source=name)
        return
    parse = {"seed": parse_seed, "csv": parse_csv, "json": parse_json}[fmt]
    yield from parse(decode_text(data, source=name), source=name)


def _tags(
    item: NewItem, *, tree: RegionTree, inferrer: RegionInferrer, forced: tuple[str, ...]
) -> tuple[tuple[str, ...], bool]:
    given = item.regions or forced
    if not given:
        return tuple(inferrer.infer(item.title, item.summary)), True
    try:
        return tuple(dict.fromkeys(tree.normalize(s) for s in given)), False
    except UnknownRegionError as e:
        raise InputError(str(e), source=item.source, line=item.line) from e


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cycle collector while a batch builds many long-lived, acyclic objects.

    Each collection would walk every record built so far; on 100,000 items that is a third of
    the import's time, for garbage that does not exist (reference counting frees the rest).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def import_records(
    session: Session,
    *,
    records: Iterable[RawRecord | InputError],
    tree: RegionTree,
    inferrer: RegionInferrer,
    now: datetime,
    forced_regions: tuple[str, ...] = (),
    clock: Callable[[], datetime] | None = None,
) -> ImportReport:
    """Take in records; bad ones are reported and skipped, known ones are left alone.

    Items without a date get ``now``, minus one second per position, so the file's
    first item stays the newest and the order is stable across runs. ``clock`` (the
    Runtime's): read again once the stamp lock is held, so no fire cuts between the moment
    an item is stamped visible and its commit.
    """
    with _no_cyclic_gc():
        return _import(
            session, records=records, tree=tree, inferrer=inferrer, now=now, forced=forced_regions,
            clock=clock,
        )  # fmt: skip


def _import(
    session: Session,
    *,
    records: Iterable[RawRecord | InputError],
    tree: RegionTree,
    inferrer: RegionInferrer,
    now: datetime,
    forced: tuple[str, ...],
    clock: Callable[[], datetime] | None,
) -> ImportReport:
    report = ImportReport()
    batch: dict[str, ItemInsert] = {}
    lines: dict[str, int] = {}
    for position, record in enumerate(records):
        try:
            if isinstance(record, InputError):
                raise record
            item = clean_record(record)
            if item.guid in batch:
                report.existing += 1
                report.lines.append(
                    LineResult(item.line, "present", title=item.title, same_as=lines[item.guid])
                )
                continue
            regions, inferred = _tags(item, tree=tree, inferrer=inferrer, forced=forced)
        except InputError as e:
            report.errors.append(e)
            report.lines.append(LineResult(e.line or 0, "skipped", e.reason))
            continue
        lines[item.guid] = item.line
        report.inferred += inferred
        batch[item.guid] = ItemInsert(
            guid=item.guid,
            title=item.title,
            summary=item.summary,
            link=item.link,
            published=item.published or now - timedelta(seconds=position),
            regions=regions,
            source=item.source[-300:],
            regions_inferred=inferred,
            lang=item.lang,
            image_url=item.image_url,
            image_alt=item.image_alt,
        )
    known = existing_guids(session, guids=batch.keys())
    fresh = [it for guid, it in batch.items() if guid not in known]
    report.existing += len(known)
    report.inferred -= sum(1 for g in known if batch[g].regions_inferred)
    if fresh:
        hold_stamps(session)
        if clock is not None:
            now = max(now, clock())
    report.ids = insert_items(session, items=fresh, now=now)
    report.added = len(fresh)
    ids = dict(zip((it.guid for it in fresh), report.ids, strict=True))
    for guid, it in batch.items():
        found = ids.get(guid)
        result: Literal["added", "present"] = "added" if found is not None else "present"
        report.lines.append(LineResult(lines[guid], result, title=it.title, item_id=found))
    report.lines.sort(key=lambda r: r.line)
    return report
