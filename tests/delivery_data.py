"""Test data for the delivery tests: subscribers in bulk, digests, and ledger reads."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from itertools import islice

import sqlalchemy as sa
from sqlmodel import col, select

from publisher.models import Delivery, Digest, Subscriber, SubscriberStatus
from publisher.pipeline.intake import import_records, read_source
from publisher.runtime import Runtime
from publisher.store.subscribers import NewSubscriber, bulk_add
from tests.conftest import SEED

REGION = "central-america"
WEEK = "2026-W48"


def add_subscribers(
    rt: Runtime, n: int, *, region: str = REGION, prefix: str = "reader"
) -> list[tuple[int, str]]:
    """``n`` active subscribers of ``region``: [(id, email)] in id order."""
    rows = [
        NewSubscriber(
            email=f"{prefix}{i:05d}@example.org", regions=(region,), status=SubscriberStatus.active
        )
        for i in range(n)
    ]
    with rt.session() as session:
        ids = bulk_add(session, rows=rows, now=rt.now())
    return [(int(i), r.email) for i, r in zip(ids, rows, strict=True)]


def plain_digest(rt: Runtime, *, region: str = REGION, week: str = WEEK) -> int:
    """A stored digest row with no rendering (the ledger tests need only its id)."""
    with rt.session() as session:
        digest = Digest(
            region=region, regions=region, week=week, window_start=rt.now(), window_end=rt.now(),
            subject="s", created=rt.now(),
        )  # fmt: skip
        session.add(digest)
        session.flush()
        assert digest.id is not None
        return digest.id


def set_status(rt: Runtime, subscriber_id: int, status: str) -> None:
    with rt.session() as session:
        session.execute(
            sa.update(Subscriber).where(col(Subscriber.id) == subscriber_id).values(status=status)
        )


def rows(rt: Runtime) -> dict[int, Delivery]:
    """Ledger rows by subscriber id."""
    with rt.session() as session:
        return {d.subscriber_id: d for d in session.exec(select(Delivery))}


def states(rt: Runtime) -> Counter[str]:
    return Counter(d.state for d in rows(rt).values())


def status_of(rt: Runtime, subscriber_id: int) -> str:
    with rt.session() as session:
        sub = session.get(Subscriber, subscriber_id)
        return sub.status if sub else "erased"


def aware(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment


def seed_items(rt: Runtime, *, first: int | None = None) -> None:
    """The sample items (or its ``first`` ones: smaller digests), published a minute before
    the runtime's now (week 2026-W48 in the tests): windows are [start, cutoff), so a send at
    now holds them."""
    with rt.session() as session:
        import_records(
            session, records=islice(read_source(str(SEED), "seed"), first), tree=rt.tree,
            inferrer=rt.inferrer, now=rt.now() - timedelta(minutes=1),
        )  # fmt: skip


def use_smtp(rt: Runtime, port: int, **settings: object) -> None:
    """Point the runtime's SMTP_URL at a test server on ``port``."""
    update = {"smtp_url": f"smtp://127.0.0.1:{port}", **settings}
    rt.settings = rt.settings.model_copy(update=update)
