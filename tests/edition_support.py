"""Helpers for the edition tests: items arriving at a given moment, readers, what they got."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from sqlmodel import col, select

from publisher.intake.records import RawRecord
from publisher.models import Delivery, Edition, SubscriberStatus
from publisher.pipeline.intake import import_records
from publisher.store.subscribers import NewSubscriber, bulk_add
from tests.conftest import FixedClockRuntime

MONDAY = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # the W48 fire (TIMEZONE UTC)
NEXT_MONDAY = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # the W49 fire


def add_item(
    rt: FixedClockRuntime, title: str, regions: list[str], *, published: datetime,
    arrives: datetime,
) -> int:  # fmt: skip
    """An item with ``published`` that enters the store at ``arrives``."""
    rt.fixed_now = arrives
    record = RawRecord(source="t", line=1, title=title, summary=f"About {title}.",
                       published=published, regions=regions)  # fmt: skip
    with rt.session() as session:
        report = import_records(session, records=[record], tree=rt.tree, inferrer=rt.inferrer,
                                now=arrives)  # fmt: skip
    assert report.errors == [] and len(report.ids) == 1, report.errors
    return report.ids[0]


def add_reader(
    rt: FixedClockRuntime, email: str, regions: list[str], *, locale: str = "en",
    timezone: str | None = None,
) -> int:  # fmt: skip
    """An active reader of ``regions``."""
    row = NewSubscriber(email=email, regions=tuple(regions), status=SubscriberStatus.active,
                        locale=locale)  # fmt: skip
    with rt.session() as session:
        (sid,) = bulk_add(session, rows=[row], now=rt.now())
        if timezone is not None:
            from publisher.models import Subscriber

            sub = session.get(Subscriber, sid)
            assert sub is not None
            sub.timezone = timezone
            session.add(sub)
    return int(sid)


def editions_of(rt: FixedClockRuntime, subscriber_id: int) -> list[Edition]:
    with rt.session() as session:
        stmt = (
            select(Edition)
            .where(col(Edition.subscriber_id) == subscriber_id)
            .order_by(col(Edition.cutoff))
        )
        return list(session.exec(stmt))


def ledger(rt: FixedClockRuntime) -> list[Delivery]:
    with rt.session() as session:
        return list(session.exec(select(Delivery).order_by(col(Delivery.id))))


def per_reader_week(rt: FixedClockRuntime) -> Counter[tuple[int, str | None]]:
    return Counter((d.subscriber_id, d.week) for d in ledger(rt))
