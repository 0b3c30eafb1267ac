"""Polling sources: fetch many feeds concurrently, turn each entry into one item, keep it current.

Fetches run on one event loop (bounded by SOURCES_CONCURRENCY) through the guarded fetcher;
parsing and database writes run in worker threads, writes one at a time, so a slow feed never
holds the database and one bad feed never stops the others. An entry's identity is its source
and its own id (the item's guid is derived from both), so re-polling adds nothing twice and an
edited entry updates its item.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import anyio
import httpx

from publisher.errors import FeedFetchError, InputError
from publisher.intake.fetcher import Fetched, FetchError, fetch, make_client
from publisher.intake.records import NewItem, RawRecord, clean_record
from publisher.intake.remote import feed_records, parse_feed
from publisher.logs import event
from publisher.models import Source
from publisher.pipeline.poll_policy import Outcome, after_poll
from publisher.runtime import Runtime
from publisher.store import sources as store
from publisher.store.items import ItemInsert, hold_stamps, insert_items
from publisher.text import content_guid

log = logging.getLogger(__name__)
MAX_ENTRIES = 500  # per poll: a feed of many tiny entries must not hold the writer for long
MAX_FEED_BYTES = 5_000_000  # parsing costs ~1 s of CPU per MB; real feeds are well under 1 MB


@dataclass(frozen=True, slots=True)
class SourceRef:
    """The parts of a source row a poll needs, detached from any session."""

    id: int
    url: str
    regions: tuple[str, ...]
    every: int
    failures: int
    etag: str | None
    last_modified: str | None
    content_hash: str | None = None
    lang: str = ""  # the items' language when the source names one (else detected per item)

    @classmethod
    def of(cls, row: Source) -> SourceRef:
        assert row.id is not None
        return cls(
            row.id, row.url, tuple(row.regions.split()), row.every, row.failures, row.etag,
            row.last_modified, row.content_hash, row.lang,
        )  # fmt: skip

    @property
    def validators(self) -> dict[str, str]:
        """Conditional GET headers from the last successful answer."""
        found = {}
        if self.etag:
            found["If-None-Match"] = self.etag
        if self.last_modified:
            found["If-Modified-Since"] = self.last_modified
        return found


@dataclass
class PollReport:
    """One source's poll: the outcome saved on its row and the entries it could not take."""

    source_id: int
    url: str
    outcome: Outcome
    errors: list[InputError] = field(default_factory=list)


def entry_guid(source_id: int, entry_id: str) -> str:
    """The item guid of one entry of one source: stable, short, unique per (source, entry)."""
    digest = hashlib.sha256(entry_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"src:{source_id}:{digest}"


def _regions(rt: Runtime, ref: SourceRef, item: NewItem) -> tuple[tuple[str, ...], bool]:
    """The source's regions plus any the text names; inference alone when the source has none."""
    inferred = rt.inferrer.infer(item.title, item.summary)
    if not ref.regions:
        return tuple(inferred), True
    named = [slug for slug in inferred if slug != rt.inferrer.default]
    return tuple(dict.fromkeys([*ref.regions, *named])), False


def take_in(
    rt: Runtime,
    ref: SourceRef,
    records: Sequence[RawRecord],
    *,
    now: datetime,
    hints: dict[str, Any] | None = None,
) -> tuple[Outcome, list[InputError]]:
    """Write a feed's entries as items (new ones added, edited ones updated) and the source's
    new state, in one transaction: validators are never saved without the entries they cover."""
    errors: list[InputError] = []
    batch: dict[str, tuple[NewItem, str, int]] = {}
    for position, raw in enumerate(records):
        try:
            entry_id = str(raw.guid or raw.link or "")
            item = clean_record(replace(raw, guid=None, regions=None))
            entry_id = entry_id or content_guid(item.title, item.summary)
            guid = entry_guid(ref.id, entry_id)
            batch.setdefault(guid, (replace(item, guid=guid), entry_id[:2000], position))
        except InputError as e:
            errors.append(e)
    with rt.session() as session:
        stored = store.entries_by_guid(session, guids=batch.keys())
        fresh, changes = [], []
        for guid, (item, entry_id, position) in batch.items():
            known = stored.get(guid)
            if known is None:
                regions, inferred = _regions(rt, ref, item)
                fresh.append(
                    ItemInsert(
                        guid=guid, title=item.title, summary=item.summary, link=item.link,
                        published=item.published or now - timedelta(seconds=position),
                        regions=regions, source=ref.url[-300:], regions_inferred=inferred,
                        image_url=item.image_url, image_alt=item.image_alt, source_id=ref.id,
                        entry_id=entry_id, lang=ref.lang or item.lang,
                    )
                )  # fmt: skip
                continue
            values = _edits(known, item)
            if values:
                changes.append((known.id, values))
        if fresh:
            hold_stamps(session)
            now = max(now, rt.now())
        insert_items(session, items=fresh, now=now)
        store.update_entries(session, changes=changes, now=now)
        outcome = Outcome(
            ok=True, added=len(fresh), updated=len(changes), skipped=len(errors), **(hints or {})
        )
        values = after_poll(every=ref.every, failures=ref.failures, outcome=outcome, now=now)
        store.save_source(session, source_id=ref.id, values=values)
    return outcome, errors


def _edits(known: store.StoredEntry, item: NewItem) -> dict[str, Any]:
    now = {"title": item.title, "summary": item.summary, "link": item.link,
           "image_url": item.image_url, "image_alt": item.image_alt}  # fmt: skip
    return {k: v for k, v in now.items() if getattr(known, k) != v}


def _parse(ref: SourceRef, fetched: Fetched) -> list[RawRecord]:
    """The feed's first MAX_ENTRIES entries (feeds list newest first; the rest are old news)."""
    parsed = parse_feed(fetched.body, source=ref.url)
    parsed.entries = parsed.entries[:MAX_ENTRIES]
    return feed_records(parsed, source=ref.url)


async def _poll_one(
    rt: Runtime, client: httpx.AsyncClient, ref: SourceRef, limits: dict[str, Any]
) -> PollReport:
    errors: list[InputError] = []
    async with limits["fetch"]:
        try:
            fetched = await fetch(
                client, ref.url, validators=ref.validators, max_bytes=MAX_FEED_BYTES
            )
        except FetchError as e:
            fetched, outcome = (
                None,
                Outcome(ok=False, error=e.reason, status=e.status, retry_after=e.retry_after),
            )
    if fetched is not None:
        hints: dict[str, Any] = {"etag": fetched.etag, "last_modified": fetched.last_modified,
                 "max_age": fetched.max_age, "moved_to": fetched.moved_to}  # fmt: skip
        digest = hashlib.sha256(fetched.body).hexdigest()
        if fetched.not_modified or digest == ref.content_hash:  # the same bytes: nothing new
            outcome = Outcome(ok=True, not_modified=True, **hints)
        else:
            hints["content_hash"] = digest
            try:
                records = await anyio.to_thread.run_sync(
                    _parse, ref, fetched, limiter=limits["cpu"]
                )
            except FeedFetchError as e:
                outcome = Outcome(ok=False, error=e.reason, moved_to=fetched.moved_to)
            else:
                now = rt.now()
                outcome, errors = await anyio.to_thread.run_sync(
                    lambda: _take_in_once_more_if_raced(rt, ref, records, now=now, hints=hints),
                    limiter=limits["db"],
                )
                _log(ref, outcome)
                return PollReport(ref.id, ref.url, outcome, errors)
    await anyio.to_thread.run_sync(lambda: _save(rt, ref, outcome), limiter=limits["db"])
    _log(ref, outcome)
    return PollReport(ref.id, ref.url, outcome, errors)


def _take_in_once_more_if_raced(
    rt: Runtime, ref: SourceRef, records: Sequence[RawRecord], **kw: Any
) -> tuple[Outcome, list[InputError]]:
    """take_in; if another poller (`sources poll` beside the scheduler) wrote the same entries
    first, the unique guid refuses ours and a second pass finds them stored."""
    try:
        return take_in(rt, ref, records, **kw)
    except store.DUPLICATE:
        return take_in(rt, ref, records, **kw)


def _save(rt: Runtime, ref: SourceRef, outcome: Outcome) -> None:
    values = after_poll(every=ref.every, failures=ref.failures, outcome=outcome, now=rt.now())
    with rt.session() as session:
        store.save_source(session, source_id=ref.id, values=values)


def _log(ref: SourceRef, outcome: Outcome) -> None:
    if outcome.ok:
        event(log, "source.polled", source=ref.id, result=outcome.summary)
    else:
        event(log, "source.failed", level=logging.WARNING, source=ref.id, error=outcome.error)


async def poll_refs(rt: Runtime, refs: Sequence[SourceRef]) -> list[PollReport]:
    """Poll ``refs`` concurrently (SOURCES_CONCURRENCY at a time); one report per source."""
    settings = rt.settings
    limits = {
        "fetch": anyio.Semaphore(settings.sources_concurrency),
        "cpu": anyio.CapacityLimiter(2),
        "db": anyio.CapacityLimiter(1),
    }
    reports: list[PollReport | None] = [None] * len(refs)

    async def one(i: int, ref: SourceRef) -> None:
        try:
            reports[i] = await _poll_one(rt, client, ref, limits)
        except Exception as e:  # a bug with one feed must not stop the others
            event(log, "source.crashed", level=logging.ERROR, source=ref.id, error=repr(e))
            reports[i] = PollReport(ref.id, ref.url, Outcome(ok=False, error=repr(e)[:300]))

    async with make_client(
        allow_private=settings.sources_allow_private,
        max_connections=settings.sources_concurrency,
    ) as client, anyio.create_task_group() as group:  # fmt: skip
        for i, ref in enumerate(refs):
            group.start_soon(one, i, ref)
    return [r for r in reports if r is not None]


def poll_sources(
    rt: Runtime, *, source_id: int | None = None, due_only: bool = True
) -> list[PollReport]:
    """Poll due sources (``due_only``), all active ones, or one by id (even a paused one)."""
    with rt.session() as session:
        if source_id is not None:
            row = store.get_source(session, source_id=source_id)
            if row is None:
                raise InputError(f"no source with id {source_id}")
            rows = [row]
        elif due_only:
            rows = store.due_sources(session, now=rt.now())
        else:
            rows = store.active_sources(session)
        refs = [SourceRef.of(row) for row in rows]
    if not refs:
        return []
    return anyio.run(poll_refs, rt, refs)
