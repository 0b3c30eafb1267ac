"""The ledger functions bound to a database engine and one worker id: the engine's ``Store``.

Each method is one short transaction, so a chunk's ``sending`` mark is durable before any of its
messages is queued, and outcomes become durable together with the claim of the next chunk.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy.engine import Engine

from publisher.db import session_scope
from publisher.delivery.ledger import Claim, RowUpdate
from publisher.delivery.recovery import worker_identity
from publisher.store import deliveries as ledger


class LedgerStore:
    """Ledger store functions for one worker; pass it to ``Engine(store=...)``."""

    def __init__(self, engine: Engine, *, worker_id: str | None = None) -> None:
        self.engine = engine
        self.worker_id = worker_id or worker_identity()

    def step(
        self,
        *,
        updates: Sequence[RowUpdate],
        bounced: Collection[int],
        claim: int,
        after_id: int,
        digest_ids: Collection[int] | None,
        lease_until: datetime,
        now: datetime,
    ) -> Claim:
        """Record outcomes, then claim up to ``claim`` more rows, in one transaction."""
        with session_scope(self.engine) as session:
            if updates:
                ledger.record(
                    session, worker_id=self.worker_id, updates=updates, now=now, bounced=bounced
                )
            if claim <= 0:
                return ledger.Claim([], [], 0)
            return ledger.claim_batch(
                session, worker_id=self.worker_id, limit=claim, lease_until=lease_until,
                now=now, after_id=after_id, digest_ids=digest_ids,
            )  # fmt: skip

    def release(self, *, ids: Collection[int]) -> int:
        if not ids:
            return 0
        with session_scope(self.engine) as session:
            return ledger.release(session, worker_id=self.worker_id, ids=ids)

    def renew(self, *, ids: Collection[int], lease_until: datetime) -> int:
        if not ids:
            return 0
        with session_scope(self.engine) as session:
            return ledger.renew(session, worker_id=self.worker_id, ids=ids, lease_until=lease_until)
