"""Writing one fire's editions: edition rows, frozen digests and ledger rows, in few transactions.

Small groups share a transaction (up to CHUNK readers), big ones are split into chunks; each
frozen digest is made once per fire (or read back when another process made it first) and
rendered once per language its readers need. A transaction writes its digests, renditions and
edition rows with one statement each (publisher.store.edition_digests), not per group, and the
section fragments their bodies name (publisher.email.fragments), each once per fire. Edition
and ledger rows go in together, both guarded by UNIQUE(subscriber_id, week), and only the rows
this fire won get a ledger row. On PostgreSQL a batch's edition and ledger rows are written
on a second thread, in the batch's own transaction, while the next batch is rendered: the
server does most of that writing, so the two overlap (SQLite takes one writer at a time).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from publisher.digest.editions import EditionPlan
from publisher.email.message import message_id, sender
from publisher.email.placeholders import Placeholders
from publisher.email.render import RenderedEmail
from publisher.errors import StoreError
from publisher.pipeline.edition_render import EditionRenderer, web_url
from publisher.runtime import Runtime
from publisher.store import edition_digests as batches
from publisher.store import edition_fragments as fragments
from publisher.store import editions as store
from publisher.store.deliveries import Queued, batched, enqueue_many
from publisher.store.edition_digests import DigestKey, StoredDigest

if TYPE_CHECKING:
    from publisher.pipeline.editions import FireReport

log = logging.getLogger(__name__)
Batch = list[tuple[EditionPlan, dict[str, list[int]]]]

# readers per transaction: those of thousands of region sets land scattered over the indexes
# by subscriber, and each commit writes every index page it touched; 10,000 instead of 2,000
# took a fire of 10,000 sets from 7.5 s to 6.4 s (one set: the same 3.2 s)
CHUNK = 10_000
ASSEMBLED = "assembled"


class EditionWriter:
    """Writes a fire's editions: small groups share a transaction (up to CHUNK readers), big
    ones are split; each frozen digest is made once per fire and remembered."""

    def __init__(
        self, rt: Runtime, report: FireReport, renderer: EditionRenderer,
        notes: dict[str, dict[str, str]], *, early: bool, replacing: Replacing | None = None,
        keep_frozen: bool = False,
    ) -> None:  # fmt: skip
        self.rt, self.report, self.renderer, self.notes, self.early = (
            rt,
            report,
            renderer,
            notes,
            early,
        )
        self.domain = sender(rt.settings.from_).domain.lower()
        self.batch: Batch = []
        self.size = 0
        self.behind = rt.engine.dialect.name == "postgresql"
        self._pool: ThreadPoolExecutor | None = None
        self._writing: Future[None] | None = None
        self.frozen: dict[DigestKey, _Frozen] = {}
        self.fragments_stored: set[str] = set()
        self.replacing = replacing
        self.keep_frozen = keep_frozen

    def add(self, plan: EditionPlan, by_language: dict[str, list[int]]) -> None:
        report = self.report
        if report.dry_run:
            count = sum(len(ids) for ids in by_language.values())
            report.editions += count
            report.empty += count if plan.empty else 0
            report.queued += 0 if plan.empty else count
            return
        pairs = [(lang, sid) for lang, ids in sorted(by_language.items()) for sid in ids]
        for part in batched(pairs, CHUNK):
            piece: dict[str, list[int]] = defaultdict(list)
            for lang, sid in part:
                piece[lang].append(sid)
            self.batch.append((plan, piece))
            self.size += len(part)
            if self.size >= CHUNK and self.replacing is None:
                self._flush()

    def flush(self) -> None:
        """Write what is left and wait until every batch is written (an error of any is raised
        here or by ``add``: the batches before it stay written, as they would one by one)."""
        self._flush()
        self._wait()

    def close(self) -> None:
        """Let a batch still being written finish (a fire that failed meanwhile raises its
        own error, and this one's is logged), and end the writing thread."""
        writing, self._writing = self._writing, None
        if writing is not None and (error := writing.exception()) is not None:
            log.error("a batch of editions was not written", exc_info=error)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _flush(self) -> None:
        """Write the batch in one transaction. A rebuild (``replacing``) writes everything here,
        once, after dropping the editions it replaces in the same transaction: a crash leaves
        them all in place, and the rebuild can simply run again."""
        replacing, self.replacing = self.replacing, None
        batch, self.batch, self.size = self.batch, [], 0
        if not batch and replacing is None:
            return
        if self._writing is not None and self._writing.done():
            self._wait()  # the batch before failed: stop before starting this one
        with ExitStack() as stack:
            session = stack.enter_context(self.rt.session())
            if replacing is not None:
                kept = store.replace_editions(session, week=replacing.week,
                                              editions=replacing.editions)  # fmt: skip
                batch = self._leave_out(batch, kept)
            self._freeze(session, batch)
            # the batch before commits first (one behind at most): a rendition may name a
            # digest it made (a group split between the two), and a foreign key sees only
            # committed rows; fragments it stored are then there for this batch's bodies
            self._wait()
            self._renditions(session, batch)
            self._store_fragments(session)
            if replacing is not None or not self.behind:
                self._write(session, batch)
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="edition-writer")
            handed = stack.pop_all()
            try:
                self._writing = self._pool.submit(self._finish, handed, session, batch)
            except BaseException as error:
                handed.__exit__(type(error), error, error.__traceback__)  # rolls back
                raise

    def _finish(self, transaction: ExitStack, session: Session, batch: Batch) -> None:
        """The batch's edition and ledger rows, then its commit (a rollback on any error)."""
        with transaction:
            self._write(session, batch)

    def _wait(self) -> None:
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def _leave_out(self, batch: Batch, kept: set[int]) -> Batch:
        """Take readers whose message left meanwhile (their edition stays) out of the batch."""
        if not kept:
            return batch
        rest_of_batch: Batch = []
        for plan, by_language in batch:
            rest: dict[str, list[int]] = {}
            for lang, ids in by_language.items():
                left = [s for s in ids if s not in kept]
                self.report.already += len(ids) - len(left)
                self.report.readers -= len(ids) - len(left)
                if left:
                    rest[lang] = left
            if rest:
                rest_of_batch.append((plan, rest))
        return rest_of_batch

    def _write(self, session: Session, batch: Batch) -> None:
        """The batch's edition rows in one insert; its ledger rows for the editions it won."""
        report = self.report
        rows: list[dict[str, object]] = []
        for plan, by_language in batch:
            base = {"week": plan.week, "window_start": plan.window_start, "cutoff": plan.cutoff,
                    "regions": " ".join(plan.regions), "created": report.cutoff,
                    "early": self.early, "digest_id": self._digest_id(plan)}  # fmt: skip
            rows += [{**base, "subscriber_id": sid} for ids in by_language.values() for sid in ids]
        store.add_editions(session, rows=rows)
        held = batches.edition_owners(
            session, weeks={plan.week for plan, _ in batch},
            subscriber_ids=[int(str(row["subscriber_id"])) for row in rows],
        )  # fmt: skip
        queued: list[Queued] = []
        for plan, by_language in batch:
            digest_id = self._digest_id(plan)
            ours = (digest_id, plan.cutoff)
            mine = {sid for ids in by_language.values() for sid in ids
                    if held.get((sid, plan.week)) == ours}  # fmt: skip
            report.editions += len(mine)
            if digest_id is None:
                report.empty += len(mine)
                continue
            queued += [
                Queued(digest_id, sid, message_id(digest_id, sid, self.domain), language, plan.week)
                for language, ids in sorted(by_language.items()) for sid in ids if sid in mine
            ]  # fmt: skip
        for digest_id, added in enqueue_many(session, queued).items():
            report.queued += added
            report.queued_by_digest[digest_id] = report.queued_by_digest.get(digest_id, 0) + added

    def _store_fragments(self, session: Session) -> None:
        """The fragments the batch's bodies name and this fire has not stored yet, in
        the same transaction as the bodies (a body never names a fragment that is not there)."""
        new = [f for sha, f in self.renderer.by_sha.items() if sha not in self.fragments_stored]
        if not new:
            return
        fragments.add_fragments(session, [
            {"sha": f.sha, "html": f.html, "text": f.text, "created": self.report.cutoff}
            for f in new
        ])  # fmt: skip
        self.fragments_stored.update(f.sha for f in new)

    def _digest_id(self, plan: EditionPlan) -> int | None:
        return None if plan.empty else self.frozen[_key(plan)].digest.id

    def _freeze(self, session: Session, batch: Batch) -> None:
        """Create the batch's new frozen digests (default language) in one insert, or use the
        ones another process made first for the same region set and window. The bodies need
        the ids (the web copy's link holds it): on PostgreSQL the ids are reserved first and
        each row is written once, whole; on SQLite the rows go in empty and get their bodies
        once their ids are known."""
        language = self.rt.settings.default_locale
        new: dict[DigestKey, EditionPlan] = {}
        for plan, _ in batch:
            if not plan.empty and _key(plan) not in self.frozen:
                new.setdefault(_key(plan), plan)
        if not new:
            return
        marks = {key: Placeholders.fresh().key for key in new}
        rows: dict[DigestKey, dict[str, Any]] = {
            key: {"region": plan.regions[0], "regions": key[0], "week": plan.week,
                  "status": ASSEMBLED, "window_start": plan.window_start,
                  "window_end": plan.cutoff, "item_ids": json.dumps(list(plan.item_ids)),
                  "created": plan.cutoff, "locale": language, "placeholder_key": marks[key],
                  "subject": "", "html": "", "text": ""}
            for key, plan in new.items()
        }  # fmt: skip
        ids = batches.reserve_digest_ids(session, len(new))
        if ids is not None:
            for (key, plan), digest_id in zip(new.items(), ids, strict=True):
                made = self._render(plan, StoredDigest(digest_id, language, marks[key],
                                                       plan.cutoff), language)  # fmt: skip
                rows[key].update(id=digest_id, subject=made.subject[:300], html=made.html,
                                 text=made.text)  # fmt: skip
        found = batches.add_digests(session, list(rows.values()))
        if len(found) < len(new):  # another process made some first: use theirs
            found.update(batches.find_digests(session, new.keys() - found.keys()))
        bodies = []
        for key, plan in new.items():
            digest = found.get(key)
            if digest is None:
                raise StoreError(f"edition {key[0]} {plan.week} was taken, then not found")
            own = digest.placeholder_key == marks[key]
            self.frozen[key] = _Frozen(digest, own)
            self.report.digest_ids.append(digest.id)
            if own and ids is None:
                made = self._render(plan, digest, language)
                bodies.append({"id": digest.id, "subject": made.subject[:300],
                               "html": made.html, "text": made.text})  # fmt: skip
                rows[key].update(bodies[-1])
            if own and self.keep_frozen:
                self.report.frozen[digest.id] = rows[key]
        batches.set_bodies(session, bodies)

    def _render(self, plan: EditionPlan, digest: StoredDigest, language: str) -> RenderedEmail:
        """``plan`` as the frozen ``digest`` in ``language``, with the digest's own markers."""
        return self.renderer.render(
            plan, language, marks=Placeholders.of(digest.placeholder_key), stored=True,
            notes=self.notes[plan.week],
            web_url=web_url(self.rt.settings, self.rt.tokens, digest.id, language),
        )  # fmt: skip

    def _renditions(self, session: Session, batch: Batch) -> None:
        """Each digest of the batch in every other language its readers need, stored once (a
        rendition another process stored first is kept)."""
        wanted: list[tuple[_Frozen, EditionPlan, str]] = []
        for plan, by_language in batch:
            if plan.empty:
                continue
            frozen = self.frozen[_key(plan)]
            for language in sorted(set(by_language) - frozen.languages - {frozen.digest.locale}):
                frozen.languages.add(language)
                wanted.append((frozen, plan, language))
        foreign = {frozen.digest.id for frozen, _, _ in wanted if not frozen.own}
        done = batches.rendered_languages(session, foreign) if foreign else set()
        rows = []
        for frozen, plan, language in wanted:
            digest = frozen.digest
            if (digest.id, language) in done:
                continue  # another process's digest, already rendered in it
            made = self._render(plan, digest, language)
            rows.append({"digest_id": digest.id, "locale": language,
                         "subject": made.subject[:300], "html": made.html, "text": made.text,
                         "created": digest.created})  # fmt: skip
        batches.add_renditions(session, rows)


@dataclass(frozen=True, slots=True)
class Replacing:
    """A rebuild: the editions of ``week`` it replaces (subscriber id -> edition id)."""

    week: str
    editions: dict[int, int]


@dataclass(slots=True)
class _Frozen:
    """A digest this fire uses, whether this fire made it, and the languages it has."""

    digest: StoredDigest
    own: bool
    languages: set[str] = field(default_factory=set)


def _key(plan: EditionPlan) -> DigestKey:
    return (" ".join(plan.regions), plan.week, plan.window_start, plan.cutoff)
