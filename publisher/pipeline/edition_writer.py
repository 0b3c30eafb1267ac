"""Writing one fire's editions: edition rows, frozen digests and ledger rows, in few transactions.

Small groups share a transaction (up to CHUNK readers), big ones are split into chunks; each
frozen digest is made once per fire (or read back when another process made it first) and
rendered once per language its readers need. Edition and ledger rows of a chunk go in together,
both guarded by UNIQUE(subscriber_id, week), and only the rows this fire won get a ledger row.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session

from publisher.digest.editions import EditionPlan
from publisher.email.message import message_id, sender
from publisher.email.placeholders import Placeholders
from publisher.errors import StoreError
from publisher.models import Digest, DigestRendition
from publisher.pipeline.edition_render import EditionRenderer, web_url
from publisher.runtime import Runtime
from publisher.store import editions as store
from publisher.store.deliveries import batched, enqueue
from publisher.store.renditions import add_rendition, find_rendition
from publisher.store.rows import add_unless_taken

if TYPE_CHECKING:
    from publisher.pipeline.editions import FireReport

CHUNK = 2_000
ASSEMBLED = "assembled"


class EditionWriter:
    """Writes a fire's editions: small groups share a transaction (up to CHUNK readers), big
    ones are split; each frozen digest is made once per fire and remembered."""

    def __init__(
        self, rt: Runtime, report: FireReport, renderer: EditionRenderer,
        notes: dict[str, dict[str, str]], *, early: bool,
    ) -> None:  # fmt: skip
        self.rt, self.report, self.renderer, self.notes, self.early = (
            rt,
            report,
            renderer,
            notes,
            early,
        )
        self.domain = sender(rt.settings.from_).domain.lower()
        self.batch: list[tuple[EditionPlan, dict[str, list[int]]]] = []
        self.size = 0
        self.frozen: dict[tuple[str, datetime], tuple[Digest, set[str]]] = {}
        self.own: set[int] = set()  # digests this fire created: no rendition of them exists yet

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
            if self.size >= CHUNK:
                self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        with self.rt.session() as session:
            for plan, by_language in self.batch:
                self._write(session, plan, by_language)
        self.batch, self.size = [], 0

    def _write(
        self, session: Session, plan: EditionPlan, by_language: dict[str, list[int]]
    ) -> None:
        """One group's edition rows (and, with items, its digest and ledger rows)."""
        report = self.report
        ids = [sid for part in by_language.values() for sid in part]
        digest = None if plan.empty else self._digest(session, plan, by_language)
        digest_id = None if digest is None else digest.id
        base = {"week": plan.week, "window_start": plan.window_start, "cutoff": plan.cutoff,
                "regions": " ".join(plan.regions), "created": report.cutoff, "early": self.early,
                "digest_id": digest_id}  # fmt: skip
        store.add_editions(session, rows=[{**base, "subscriber_id": sid} for sid in ids])
        mine = set(store.owners(session, week=plan.week, digest_id=digest_id,
                                cutoff=plan.cutoff, subscriber_ids=ids))  # fmt: skip
        report.editions += len(mine)
        if digest_id is None:
            report.empty += len(mine)
            return
        for language, part in sorted(by_language.items()):
            added = enqueue(
                session, digest_id=digest_id, subscriber_ids=[s for s in part if s in mine],
                week=plan.week, locale=language,
                message_id=lambda sid: message_id(digest_id, sid, self.domain),
            )  # fmt: skip
            report.queued += added
            report.queued_by_digest[digest_id] = report.queued_by_digest.get(digest_id, 0) + added

    def _digest(
        self, session: Session, plan: EditionPlan, by_language: dict[str, list[int]]
    ) -> Digest:
        key = (" ".join(plan.regions), plan.window_start)
        found = self.frozen.get(key)
        if found is None:
            found = self.frozen[key] = (self._freeze(session, plan), set())
        digest, languages = found
        assert digest.id is not None
        if digest.id not in self.report.digest_ids:
            self.report.digest_ids.append(digest.id)
        for language in set(by_language) - languages - {digest.locale}:
            self._rendition(session, digest, plan, language)
            languages.add(language)
        return digest

    def _freeze(self, session: Session, plan: EditionPlan) -> Digest:
        """Create the frozen digest of ``plan`` (default language), or read the one another
        process made first for the same region set and window."""
        rt, regions = self.rt, " ".join(plan.regions)
        language = rt.settings.default_locale
        marks = Placeholders.fresh()
        digest = Digest(
            region=plan.regions[0], regions=regions, week=plan.week, status=ASSEMBLED,
            window_start=plan.window_start, window_end=plan.cutoff,
            item_ids=json.dumps(list(plan.item_ids)), created=plan.cutoff, locale=language,
            placeholder_key=marks.key,
        )  # fmt: skip
        if not add_unless_taken(session, digest):
            winner = store.find_edition_digest(
                session, regions=regions, week=plan.week, window_start=plan.window_start,
                cutoff=plan.cutoff,
            )  # fmt: skip
            if winner is None:
                raise StoreError(f"edition {regions} {plan.week} was taken, then not found")
            return winner
        assert digest.id is not None
        self.own.add(digest.id)
        made = self.renderer.render(
            plan, language, marks=marks, notes=self.notes[plan.week],
            web_url=web_url(rt.settings, rt.tokens, digest.id, language),
        )  # fmt: skip
        digest.subject, digest.html, digest.text = made.subject[:300], made.html, made.text
        session.add(digest)
        session.flush()
        return digest

    def _rendition(
        self, session: Session, digest: Digest, plan: EditionPlan, language: str
    ) -> None:
        """Store ``digest`` in ``language`` once (the digest row holds its own language)."""
        assert digest.id is not None
        if digest.id not in self.own and find_rendition(
            session, digest_id=digest.id, locale=language
        ):
            return  # another process's digest, already rendered in it
        made = self.renderer.render(
            plan, language, marks=Placeholders.of(digest.placeholder_key),
            notes=self.notes[plan.week],
            web_url=web_url(self.rt.settings, self.rt.tokens, digest.id, language),
        )  # fmt: skip
        add_rendition(session, DigestRendition(
            digest_id=digest.id, locale=language, subject=made.subject[:300], html=made.html,
            text=made.text, created=digest.created,
        ))  # fmt: skip
