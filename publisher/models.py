"""Tables and their public shapes (SQLModel families: Base, Create, table, Public).

Everything the store keeps is declared here, so that one Alembic history covers
SQLite and PostgreSQL alike. Times are stored as UTC and always come back tz-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and read back as aware UTC on every backend."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; attach a time zone")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, tz-aware; the one place the store asks the clock."""
    return datetime.now(UTC)


def _ts(*, nullable: bool = False, index: bool = False) -> Any:
    column: sa.Column[datetime] = sa.Column(UTCDateTime(), nullable=nullable, index=index)
    return Field(default=None, sa_column=column) if nullable else Field(sa_column=column)


class RegionRow(SQLModel, table=True):
    """A node of the M49 tree mirrored in the store, with per-region digest overrides."""

    __tablename__ = "regions"
    slug: str = Field(primary_key=True, max_length=64)
    m49: str = Field(max_length=3)
    parent: str | None = Field(default=None, max_length=64)
    level: str = Field(max_length=24)
    name_en: str = Field(max_length=200)
    name_es: str = Field(max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    digest_day: str | None = Field(default=None, max_length=3)
    digest_time: str | None = Field(default=None, max_length=5)


class ItemBase(SQLModel):
    title: str = Field(max_length=500)
    summary: str = Field(default="", sa_type=sa.Text)
    link: str | None = Field(default=None, max_length=2000)
    # The language the item is written in (BCP 47, e.g. "es"); "" = not known.
    lang: str = Field(default="", max_length=16)


class Item(ItemBase, table=True):
    """A news item; ``guid`` is its stable identity across imports and edits."""

    __tablename__ = "items"
    id: int | None = Field(default=None, primary_key=True)
    guid: str = Field(max_length=300, unique=True)
    source: str = Field(default="", max_length=300)
    regions_inferred: bool = Field(default=False)
    published: datetime = _ts(index=True)
    updated: datetime = _ts()
    created: datetime = _ts()


class ItemRegion(SQLModel, table=True):
    """One region tag of one item."""

    __tablename__ = "item_regions"
    item_id: int = Field(foreign_key="items.id", primary_key=True, ondelete="CASCADE")
    region: str = Field(foreign_key="regions.slug", primary_key=True, index=True, max_length=64)


class ItemCreate(ItemBase):
    regions: list[str] = []
    published: datetime | None = None
    guid: str | None = None


class ItemPublic(ItemBase):
    id: int
    guid: str
    published: datetime
    updated: datetime
    regions: list[str]


class SubscriberStatus(StrEnum):
    pending = "pending"
    active = "active"
    unsubscribed = "unsubscribed"
    bounced = "bounced"


class Subscriber(SQLModel, table=True):
    """A reader; ``key`` is the opaque id that signed links carry instead of the address."""

    __tablename__ = "subscribers"
    # Addresses compare case-insensitively; this index makes that unique and fast (0002).
    __table_args__ = (sa.Index("ux_subscribers_email_lower", sa.text("lower(email)"), unique=True),)
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    key: str = Field(max_length=32, unique=True)
    status: str = Field(default=SubscriberStatus.pending, max_length=16, index=True)
    locale: str = Field(default="en", max_length=16)
    created: datetime = _ts()
    confirmed: datetime | None = _ts(nullable=True)
    left: datetime | None = _ts(nullable=True)


class Subscription(SQLModel, table=True):
    """A subscriber following a region."""

    __tablename__ = "subscriptions"
    # Senders page through a region's recipients by id; this index serves them in order (0002).
    __table_args__ = (sa.Index("ix_subscriptions_region_subscriber", "region", "subscriber_id"),)
    subscriber_id: int = Field(foreign_key="subscribers.id", primary_key=True, ondelete="CASCADE")
    region: str = Field(foreign_key="regions.slug", primary_key=True, index=True, max_length=64)


class Suppression(SQLModel, table=True):
    """A hashed address that was erased, so that a later import cannot silently re-add it."""

    __tablename__ = "suppressions"
    email_hash: str = Field(primary_key=True, max_length=64)
    reason: str = Field(max_length=32)
    created: datetime = _ts()


class Consent(SQLModel, table=True):
    """Proof of a signup, confirmation or change: when, from where, what, on which form."""

    __tablename__ = "consents"
    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscribers.id", index=True, ondelete="CASCADE")
    action: str = Field(max_length=32)
    at: datetime = _ts()
    ip: str = Field(default="", max_length=64)
    regions: str = Field(default="", max_length=2000)
    form_version: str = Field(default="", max_length=32)


class Digest(SQLModel, table=True):
    """One region's digest for one ISO week, frozen when assembled."""

    __tablename__ = "digests"
    __table_args__ = (sa.UniqueConstraint("region", "week", name="uq_digest_region_week"),)
    id: int | None = Field(default=None, primary_key=True)
    region: str = Field(foreign_key="regions.slug", max_length=64)
    week: str = Field(max_length=8)
    status: str = Field(default="assembled", max_length=16)
    window_start: datetime = _ts()
    window_end: datetime = _ts()
    item_ids: str = Field(default="", sa_type=sa.Text)
    subject: str = Field(default="", max_length=300)
    html: str = Field(default="", sa_type=sa.Text)
    text: str = Field(default="", sa_type=sa.Text)
    created: datetime = _ts()
    # The language subject/html/text are in; other languages are DigestRendition rows (0009).
    locale: str = Field(default="en", max_length=16)


class DeliveryState(StrEnum):
    """A ledger row's state; ``last_error`` says why for deferred, failed, unknown and skipped.

    pending -> sending (committed before the message goes to SMTP) -> sent | deferred | failed |
    unknown; deferred rows come back when due. ``skipped`` is terminal: the subscriber was no
    longer active (unsubscribed, bounced, erased) when their message's turn came.
    """

    pending = "pending"
    sending = "sending"
    sent = "sent"
    deferred = "deferred"
    failed = "failed"
    unknown = "unknown"
    skipped = "skipped"


class Delivery(SQLModel, table=True):
    """The ledger: one row per (digest, subscriber), the only record of what was sent."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.UniqueConstraint("digest_id", "subscriber_id", name="uq_delivery_digest_subscriber"),
        sa.Index("ix_deliveries_state_due", "state", "next_attempt"),
    )
    id: int | None = Field(default=None, primary_key=True)
    digest_id: int = Field(foreign_key="digests.id", index=True)
    subscriber_id: int = Field(index=True)
    state: str = Field(default=DeliveryState.pending, max_length=16)
    attempts: int = Field(default=0)
    next_attempt: datetime | None = _ts(nullable=True)
    first_attempt: datetime | None = _ts(nullable=True)
    claimed_by: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = _ts(nullable=True)
    sent_at: datetime | None = _ts(nullable=True)
    last_error: str = Field(default="", max_length=1000)
    message_id: str = Field(default="", max_length=300)
    # The language fixed when the row was queued: its message is that rendition (0009).
    locale: str = Field(default="en", max_length=16)


class SchedulerJob(SQLModel, table=True):
    """APScheduler's job store (SQLAlchemyJobStore with this table name), written only by it.

    Declared here so the one Alembic history creates it (0005); only the active scheduler
    (the leader, see publisher.schedule.leader) ever reads or writes it.
    """

    __tablename__ = "scheduler_jobs"
    id: str = Field(primary_key=True, max_length=191)
    next_run_time: float | None = Field(
        default=None, sa_column=sa.Column(sa.Float(25), index=True, nullable=True)
    )
    job_state: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))


class DigestRun(SQLModel, table=True):
    """The scheduler's record of one weekly digest job for (region, week).

    APScheduler moves a job's next fire time on before running it, so a scheduler that dies in
    the middle leaves only this row unfinished; the next leader finishes the (idempotent) work.
    """

    __tablename__ = "digest_runs"
    region: str = Field(foreign_key="regions.slug", primary_key=True, max_length=64)
    week: str = Field(primary_key=True, max_length=8)
    fire_time: datetime = _ts()
    started: datetime = _ts()
    finished: datetime | None = _ts(nullable=True)
    runner: str = Field(default="", max_length=64)
    status: str = Field(default="", max_length=16)
    queued: int = Field(default=0)


class DigestRendition(SQLModel, table=True):
    """A frozen digest rendered in one more language, once, when it first has readers of it."""

    __tablename__ = "digest_renditions"
    __table_args__ = (
        sa.UniqueConstraint("digest_id", "locale", name="uq_digest_rendition_locale"),
    )
    id: int | None = Field(default=None, primary_key=True)
    digest_id: int = Field(foreign_key="digests.id", index=True, ondelete="CASCADE")
    locale: str = Field(max_length=16)
    subject: str = Field(default="", max_length=300)
    html: str = Field(default="", sa_type=sa.Text)
    text: str = Field(default="", sa_type=sa.Text)
    created: datetime = _ts()
