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
    image_url: str | None = Field(default=None, max_length=2000)
    image_alt: str = Field(default="", max_length=300)


class Item(ItemBase, table=True):
    """A news item; ``guid`` is its stable identity across imports and edits."""

    __tablename__ = "items"
    id: int | None = Field(default=None, primary_key=True)
    guid: str = Field(max_length=300, unique=True)
    source: str = Field(default="", max_length=300)
    regions_inferred: bool = Field(default=False)
    # Set for items a polled source brought in (0007); the entry's upstream id, for reference.
    source_id: int | None = Field(default=None, index=True)
    entry_id: str | None = Field(default=None, max_length=2000)
    published: datetime = _ts(index=True)
    updated: datetime = _ts()
    created: datetime = _ts()
    # When the item is public: max(published, created); embargoed until then (0014).
    visible_at: datetime = _ts(index=True)


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
    visible_at: datetime | None = None


class SubscriberStatus(StrEnum):
    pending = "pending"
    active = "active"
    unsubscribed = "unsubscribed"
    bounced = "bounced"


class Subscriber(SQLModel, table=True):
    """A reader; ``key`` is the opaque id that signed links carry instead of the address."""

    __tablename__ = "subscribers"
    # Addresses compare case-insensitively; this index makes that unique and fast (0002).
    # The scheduler lists the zones of active readers every minute from this index (0016).
    __table_args__ = (
        sa.Index("ux_subscribers_email_lower", sa.text("lower(email)"), unique=True),
        sa.Index("ix_subscribers_status_timezone", "status", "timezone"),
    )
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    key: str = Field(max_length=32, unique=True)
    status: str = Field(default=SubscriberStatus.pending, max_length=16, index=True)
    locale: str = Field(default="en", max_length=16)
    # True once the reader picked their zone; otherwise it follows their regions (0016).
    timezone_chosen: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    created: datetime = _ts()
    confirmed: datetime | None = _ts(nullable=True)
    left: datetime | None = _ts(nullable=True)
    # The reader's IANA time zone (0015); None = TIMEZONE.
    timezone: str | None = Field(default=None, max_length=64)


class Subscription(SQLModel, table=True):
    """A subscriber following a region."""

    __tablename__ = "subscriptions"
    # Senders page through a region's recipients by id; this index serves them in order (0002).
    __table_args__ = (sa.Index("ix_subscriptions_region_subscriber", "region", "subscriber_id"),)
    subscriber_id: int = Field(foreign_key="subscribers.id", primary_key=True, ondelete="CASCADE")
    region: str = Field(foreign_key="regions.slug", primary_key=True, index=True, max_length=64)


class Suppression(SQLModel, table=True):
    """A hashed address that gets no mail: erased, unsubscribed, hard-bounced or complained.

    ``reason`` is one of ``SuppressionReason``; ``last_mail`` is when it was last sent a
    confirmation (an unsubscribed address gets at most one a day, a bounced one none) (0013).
    """

    __tablename__ = "suppressions"
    # The console lists entries newest first, by keyset (0019).
    __table_args__ = (sa.Index("ix_suppressions_created", "created", "email_hash"),)
    email_hash: str = Field(primary_key=True, max_length=64)
    reason: str = Field(max_length=32)
    created: datetime = _ts()
    last_mail: datetime | None = _ts(nullable=True)


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
    """A frozen edition: the items of one region set over one window, rendered once (0015).

    ``regions`` is the canonical region set (space-separated slugs); ``region`` is its first
    region (List-Id). ``window_end`` is the cutoff. Rows from before 0015 have regions = region.
    """

    __tablename__ = "digests"
    __table_args__ = (
        sa.UniqueConstraint(
            "regions", "week", "window_start", "window_end", name="uq_digest_edition"
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    region: str = Field(foreign_key="regions.slug", max_length=64)
    regions: str = Field(default="", sa_type=sa.Text)
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
    # The random key of the per-recipient markers in html/text (None: the old fixed markers).
    placeholder_key: str | None = Field(default=None, max_length=32)


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
        sa.UniqueConstraint("subscriber_id", "week", name="uq_delivery_subscriber_week"),
        sa.Index("ix_deliveries_state_due", "state", "next_attempt"),
    )
    id: int | None = Field(default=None, primary_key=True)
    # no index of their own: each leads one of the unique indexes above
    digest_id: int = Field(foreign_key="digests.id")
    subscriber_id: int
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
    # The ISO week of the edition (0015): at most one row per (subscriber, week); NULL = legacy.
    week: str | None = Field(default=None, max_length=8)


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


class EditionFragment(SQLModel, table=True):
    """One item as the editions of one language show it (HTML and text), stored once by content
    hash and shared by every frozen digest body that names it, so ten thousand region sets do
    not store each item ten thousand times (0021). Rows are never changed: an edited item is
    a new fragment, and bodies frozen before keep the old one."""

    __tablename__ = "edition_fragments"
    sha: str = Field(primary_key=True, max_length=64)
    html: str = Field(default="", sa_type=sa.Text)
    text: str = Field(default="", sa_type=sa.Text)
    created: datetime = _ts()


class Source(SQLModel, table=True):
    """An upstream feed polled on a schedule; its validators, backoff and last result (0007)."""

    __tablename__ = "sources"
    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000, unique=True)
    regions: str = Field(default="", max_length=2000)  # default slugs, space-separated
    every: int = Field(default=1800)  # seconds between polls
    lang: str = Field(default="", max_length=16)
    paused: bool = Field(default=False)
    etag: str | None = Field(default=None, max_length=1000)
    last_modified: str | None = Field(default=None, max_length=100)
    content_hash: str | None = Field(default=None, max_length=64)  # of the last body taken in
    failures: int = Field(default=0)
    next_poll: datetime = _ts(index=True)
    last_polled: datetime | None = _ts(nullable=True)
    last_ok: datetime | None = _ts(nullable=True)
    last_result: str = Field(default="", max_length=200)
    last_error: str = Field(default="", max_length=1000)
    created: datetime = _ts()


class RateLimit(SQLModel, table=True):
    """One key's sliding-window counters, shared by every web process (publisher.web.ratelimit).

    ``key`` is a 64-bit hash of the IP or address (never the address itself); ``window`` is
    the index of the current fixed window; rows two windows old are purged.
    """

    __tablename__ = "rate_limits"
    scope: str = Field(primary_key=True, max_length=16)
    key: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    window: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, index=True))
    previous: int = Field(default=0)
    current: int = Field(default=0)


class BounceReport(SQLModel, table=True):
    """A bounce or complaint report as it arrived, stored before it is acknowledged.

    ``key`` makes a report that arrives twice (by two entrances, or retried) one row; ``state``
    moves pending -> applied | unmatched | ignored | duplicate | malformed; ``raw`` is purged
    (set to NULL) after 90 days, the row itself stays for the counts.
    """

    __tablename__ = "bounce_reports"
    __table_args__ = (sa.Index("ix_bounce_reports_state_received", "state", "received"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    source: str = Field(max_length=32)
    envelope_to: str = Field(default="", max_length=1000)
    received: datetime = _ts()
    state: str = Field(default="pending", max_length=16)
    kind: str = Field(default="", max_length=16)
    detail: str = Field(default="", max_length=1000)
    raw: bytes | None = Field(default=None, sa_column=sa.Column(sa.LargeBinary, nullable=True))


class BounceEvent(SQLModel, table=True):
    """What one report said about one message: a hard or soft bounce or a complaint.

    ``delivery_id`` links it to its ledger row; an unmatched report has no event. One event per
    (ledger row, kind): the same bounce reported twice counts once.
    """

    __tablename__ = "bounce_events"
    __table_args__ = (
        sa.UniqueConstraint("delivery_id", "kind", name="uq_bounce_event_delivery_kind"),
        sa.Index("ix_bounce_events_subscriber_kind_at", "subscriber_id", "kind", "at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="bounce_reports.id", index=True)
    delivery_id: int = Field(foreign_key="deliveries.id")
    subscriber_id: int
    kind: str = Field(max_length=16)
    status: str = Field(default="", max_length=16)
    diagnostic: str = Field(default="", max_length=500)
    at: datetime = _ts(index=True)


class WithdrawnItem(SQLModel, table=True):
    """What is left of a public item that was deleted: enough to say "withdrawn", never a dead link.

    ``item_id`` is the deleted item's id (its permalink answers 410); ``regions`` are its region
    slugs separated by spaces, so the archive can still list it in the week it became visible.
    """

    __tablename__ = "withdrawn_items"
    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(index=True)
    guid: str = Field(max_length=300)
    title: str = Field(max_length=500)
    regions: str = Field(default="", max_length=2000)
    visible_at: datetime = _ts(index=True)
    withdrawn_at: datetime = _ts()


class SuppressionReason(StrEnum):
    """Why an address is on the suppression list; the first two may ask to come back."""

    erased = "erased"
    unsubscribed = "unsubscribed"
    soft_bounce = "soft_bounce"  # repeated soft bounces (publisher.bounces.policy): no mail either
    hard_bounce = "hard_bounce"
    complaint = "complaint"


# An outbox message moves through the ledger's states (``skipped``: no longer owed).
OutboxState = DeliveryState


class OutboxMessage(SQLModel, table=True):
    """One transactional email (a confirmation) owed to a subscriber, durable until it leaves.

    Written in the same transaction as the signup, so it survives any crash; the deliverer
    claims it ``sending`` with a lease and builds the message just before it goes out (0013).
    """

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_state_due", "state", "next_attempt"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="confirmation", max_length=32)
    subscriber_id: int = Field(index=True)
    state: str = Field(default=OutboxState.pending, max_length=16)
    attempts: int = Field(default=0)
    created: datetime = _ts()
    next_attempt: datetime | None = _ts(nullable=True)
    first_attempt: datetime | None = _ts(nullable=True)
    claimed_by: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = _ts(nullable=True)
    sent_at: datetime | None = _ts(nullable=True)
    last_error: str = Field(default="", max_length=1000)
    # A finished message to a fixed address (kind "test": an edition's test copy) (0015).
    address: str | None = Field(default=None, max_length=320)
    body: bytes | None = Field(default=None, sa_column=sa.Column(sa.LargeBinary, nullable=True))


# SQLite has autoincrement only on INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit sequence.
_TALLY_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class FollowerTally(SQLModel, table=True):
    """A change in the number of subscribers per (region, status); region "" counts everyone.

    On PostgreSQL triggers append one row per statement that changes subscribers or
    subscriptions, so a count is a sum over a small table instead of a scan of a million rows;
    ``store.tallies.fold`` merges the rows of one key now and then. SQLite counts live (0018).
    """

    __tablename__ = "follower_tallies"
    id: int | None = Field(default=None, sa_column=sa.Column(_TALLY_ID, primary_key=True))
    region: str = Field(max_length=64)
    status: str = Field(max_length=16)
    n: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class ZoneTally(SQLModel, table=True):
    """A change in the number of subscribers per (chosen time zone, status), kept like
    ``FollowerTally``; zone "" = no zone chosen (TIMEZONE applies)."""

    __tablename__ = "zone_tallies"
    id: int | None = Field(default=None, sa_column=sa.Column(_TALLY_ID, primary_key=True))
    zone: str = Field(max_length=64)
    status: str = Field(max_length=16)
    n: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class LedgerTally(SQLModel, table=True):
    """A change in the number of ledger rows per (digest, state), kept like ``FollowerTally``."""

    __tablename__ = "ledger_tallies"
    id: int | None = Field(default=None, sa_column=sa.Column(_TALLY_ID, primary_key=True))
    digest_id: int = Field(index=True)
    state: str = Field(max_length=16)
    n: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class UserRole(StrEnum):
    """What a console account may do: editors work on items and editions; admins on all."""

    editor = "editor"
    admin = "admin"


class User(SQLModel, table=True):
    """A console account (``publisher users add``); the password is kept as an Argon2id hash."""

    __tablename__ = "users"
    # Logins compare addresses case-insensitively; unique on lower(email) like subscribers (0017).
    __table_args__ = (sa.Index("ux_users_email_lower", sa.text("lower(email)"), unique=True),)
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320)
    role: str = Field(default=UserRole.editor, max_length=16)
    password_hash: str = Field(max_length=255)
    created: datetime = _ts()
    password_changed: datetime = _ts()


class AdminSession(SQLModel, table=True):
    """A console login, kept server-side so logout and a password change end it at once.

    ``id`` is the SHA-256 hex of the random token in the cookie (a stolen table opens nothing);
    ``csrf`` is the secret every form of this session must carry back.
    """

    __tablename__ = "admin_sessions"
    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    created: datetime = _ts()
    expires: datetime = _ts(index=True)
    csrf: str = Field(max_length=64)


class AuditEntry(SQLModel, table=True):
    """One thing someone did in the console or with the CLI: who, what, to what, and when."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_actor_id", "actor", "id"),
        sa.Index("ix_audit_log_action_id", "action", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts(index=True)
    actor: str = Field(max_length=320)
    action: str = Field(max_length=32)
    target: str = Field(default="", max_length=500)
    detail: str = Field(default="", max_length=2000)


class Edition(SQLModel, table=True):
    """One reader's edition of one ISO week: its window and the frozen digest it got (0015).

    ``digest_id`` is NULL when the window held no items (no email; the window still moves on).
    The next edition starts at this one's ``cutoff``.
    """

    __tablename__ = "editions"
    __table_args__ = (
        sa.UniqueConstraint("subscriber_id", "week", name="uq_edition_subscriber_week"),
        sa.Index("ix_editions_subscriber_cutoff", "subscriber_id", "cutoff"),
    )
    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int
    week: str = Field(max_length=8, index=True)
    window_start: datetime = _ts()
    cutoff: datetime = _ts()
    digest_id: int | None = Field(default=None, index=True)
    regions: str = Field(default="", sa_type=sa.Text)
    created: datetime = _ts()
    early: bool = Field(default=False)


class EditionNote(SQLModel, table=True):
    """An editor's note for a week: region '' tops the whole edition, a slug tops its section."""

    __tablename__ = "edition_notes"
    __table_args__ = (sa.UniqueConstraint("week", "region", name="uq_edition_note_week_region"),)
    id: int | None = Field(default=None, primary_key=True)
    week: str = Field(max_length=8)
    region: str = Field(default="", max_length=64)
    text: str = Field(max_length=500)
    updated_by: str = Field(default="", max_length=320)
    updated: datetime = _ts()


class SendHold(SQLModel, table=True):
    """A week whose scheduled send waits for approval; approved_at set = it may go."""

    __tablename__ = "send_holds"
    week: str = Field(primary_key=True, max_length=8)
    held_by: str = Field(default="", max_length=320)
    held_at: datetime = _ts()
    approved_by: str | None = Field(default=None, max_length=320)
    approved_at: datetime | None = _ts(nullable=True)


class ZoneFire(SQLModel, table=True):
    """The scheduler's record of one weekly fire of a time zone's editions (zone, week) (0016).

    APScheduler moves a job's next fire time on before running it, so a scheduler that dies in
    the middle leaves only this row unfinished; the next leader fires again (idempotent: the
    editions' unique keys) for the same week.
    """

    __tablename__ = "zone_fires"
    zone: str = Field(primary_key=True, max_length=64)
    week: str = Field(primary_key=True, max_length=8)
    fire_time: datetime = _ts()
    started: datetime = _ts()
    finished: datetime | None = _ts(nullable=True)
    runner: str = Field(default="", max_length=64)
    status: str = Field(default="", max_length=16)
    queued: int = Field(default=0)
