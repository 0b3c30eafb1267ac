"""Subscribers, the regions they follow, their consents, and the suppression list.

Addresses are stored in the normal form of publisher.addresses and compared case-insensitively
through a unique index on lower(email). The suppression list holds hashes of addresses that get
no mail (hard bounce, complaint) or that left (unsubscribed, erased): an import or the API never
brings them back; only the person's own confirmation does (see pipeline.subscription).
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.addresses import address_key, normal_hash, normalize_address, suppression_hash
from publisher.errors import InputError, SuppressedError
from publisher.models import (
    Consent,
    Delivery,
    OutboxMessage,
    Subscriber,
    SubscriberStatus,
    Subscription,
    Suppression,
    SuppressionReason,
)
from publisher.regions.tree import RegionTree
from publisher.regions.zones import default_zone
from publisher.store import tallies
from publisher.store.sql import array_value

_CHUNK = 1_000
_S: sa.Table = Subscriber.__table__  # type: ignore[attr-defined]
_SUB: sa.Table = Subscription.__table__  # type: ignore[attr-defined]
_GONE = (SubscriberStatus.unsubscribed, SubscriberStatus.bounced)
# Stronger reasons replace weaker ones; bounces (soft or hard) and complaints get no mail at all.
_RANK = {
    SuppressionReason.erased: 0, SuppressionReason.unsubscribed: 1,
    SuppressionReason.soft_bounce: 2, SuppressionReason.hard_bounce: 3,
    SuppressionReason.complaint: 4,
}  # fmt: skip
MAIL_EVERY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class NewSubscriber:
    """A subscriber known to be new (not stored, not suppressed), ready for a bulk insert."""

    email: str
    regions: tuple[str, ...]
    status: SubscriberStatus = SubscriberStatus.pending
    locale: str = "en"


def new_key() -> str:
    """The opaque id signed links carry: 128 random bits in hex."""
    return secrets.token_hex(16)


def _email_key() -> sa.ColumnElement[str]:
    return sa.func.lower(col(Subscriber.email))


def get_by_key(session: Session, *, key: str) -> Subscriber | None:
    """The subscriber a signed link points at, or None (erased, or never existed)."""
    return session.exec(select(Subscriber).where(col(Subscriber.key) == key)).first()


def get_by_email(session: Session, *, email: str) -> Subscriber | None:
    """The subscriber with this address in any letter case, or None (also for a malformed one)."""
    try:
        wanted = address_key(email)
    except InputError:
        return None
    return session.exec(select(Subscriber).where(_email_key() == wanted)).first()


def existing_by_email(session: Session, *, emails: Collection[str]) -> dict[str, Subscriber]:
    """Stored subscribers among normalised ``emails``, keyed by lower-cased address."""
    found: dict[str, Subscriber] = {}
    keys = sorted({e.lower() for e in emails})
    for i in range(0, len(keys), _CHUNK):
        stmt = select(Subscriber).where(_email_key().in_(keys[i : i + _CHUNK]))
        found.update((s.email.lower(), s) for s in session.exec(stmt))
    return found


def is_suppressed(session: Session, *, email: str) -> bool:
    """Whether this address was erased and may not be re-added without fresh consent."""
    return session.get(Suppression, suppression_hash(email)) is not None


def suppressed_among(session: Session, *, emails: Collection[str]) -> set[str]:
    """Which of normalised ``emails`` are suppressed, as lower-cased addresses."""
    by_hash = {normal_hash(e): e.lower() for e in emails}
    hashes = list(by_hash)
    hit: set[str] = set()
    for i in range(0, len(hashes), _CHUNK):
        stmt = select(Suppression.email_hash).where(
            col(Suppression.email_hash).in_(hashes[i : i + _CHUNK])
        )
        hit.update(by_hash[h] for h in session.exec(stmt))
    return hit


def suppress(session: Session, *, email: str, reason: str, now: datetime) -> None:
    """Put the address's hash on the suppression list, or raise its reason (idempotent)."""
    digest = suppression_hash(email)
    found = session.get(Suppression, digest)
    if found is None:
        session.add(Suppression(email_hash=digest, reason=reason[:32], created=now))
    elif _RANK[_reason(reason)] > _RANK[_reason(found.reason)]:
        found.reason, found.created = reason[:32], now
        session.add(found)
    session.flush()


def _reason(value: str) -> SuppressionReason:
    try:
        return SuppressionReason(value)
    except ValueError:
        return SuppressionReason.erased


def suppression_of(session: Session, *, email: str) -> Suppression | None:
    """The suppression entry of an address, or None."""
    try:
        return session.get(Suppression, suppression_hash(email))
    except InputError:
        return None


def suppression_reason(session: Session, *, email: str) -> SuppressionReason | None:
    """Why this address is suppressed, or None."""
    found = suppression_of(session, email=email)
    return None if found is None else _reason(found.reason)


def suppress_bounced(session: Session, *, subscriber_ids: Collection[int], now: datetime) -> None:
    """Put the addresses of subscribers whose mail hard-bounced on the suppression list."""
    ids = sorted(subscriber_ids)
    for i in range(0, len(ids), _CHUNK):
        stmt = select(Subscriber.email).where(col(Subscriber.id).in_(ids[i : i + _CHUNK]))
        for email in session.exec(stmt):
            suppress(session, email=email, reason=SuppressionReason.hard_bounce, now=now)


def unsuppress(session: Session, *, email: str) -> None:
    """Take the address off the suppression list (its own confirmation brought it back)."""
    session.execute(
        sa.delete(Suppression).where(col(Suppression.email_hash) == suppression_hash(email))
    )


def may_mail(session: Session, *, email: str, now: datetime) -> bool:
    """Whether a confirmation may go to this address now; stamps it when it may.

    Not suppressed: always. Unsubscribed or erased: at most one a day. Bounced (soft or hard)
    or complained: never.
    """
    found = suppression_of(session, email=email)
    if found is None:
        return True
    if _reason(found.reason) not in (SuppressionReason.erased, SuppressionReason.unsubscribed):
        return False
    if found.last_mail is not None and now - found.last_mail < MAIL_EVERY:
        return False
    found.last_mail = now
    session.add(found)
    session.flush()
    return True


def regions_of(session: Session, *, subscriber_id: int) -> list[str]:
    """The region slugs a subscriber follows, sorted."""
    stmt = (
        select(Subscription.region)
        .where(col(Subscription.subscriber_id) == subscriber_id)
        .order_by(col(Subscription.region))
    )
    return list(session.exec(stmt))


def set_regions(session: Session, *, subscriber_id: int, regions: Iterable[str]) -> list[str]:
    """Make the subscriber follow exactly ``regions``; returns them sorted."""
    wanted = set(regions)
    have = set(regions_of(session, subscriber_id=subscriber_id))
    if have - wanted:
        session.execute(
            sa.delete(Subscription).where(
                col(Subscription.subscriber_id) == subscriber_id,
                col(Subscription.region).in_(sorted(have - wanted)),
            )
        )
    _follow(session, subscriber_id, wanted - have)
    if wanted != have:
        refresh_zones(session, subscriber_ids=[subscriber_id])
    return sorted(wanted)


def _follow(session: Session, subscriber_id: int, regions: Collection[str]) -> None:
    if regions:
        rows = [{"subscriber_id": subscriber_id, "region": r} for r in sorted(regions)]
        session.execute(sa.insert(Subscription), rows)


def set_status(
    session: Session, *, subscriber_id: int, status: SubscriberStatus | str, now: datetime
) -> Subscriber:
    """Move a subscriber to ``status``, stamping when they confirmed or left."""
    new = SubscriberStatus(status)
    sub = session.get(Subscriber, subscriber_id)
    if sub is None:
        raise InputError(f"no subscriber {subscriber_id}")
    if new == SubscriberStatus.active:
        sub.confirmed = sub.confirmed or now
        sub.left = None
    elif new in _GONE:
        sub.left = sub.left if sub.status == new else now
    else:
        sub.left = None
    sub.status = new
    session.add(sub)
    session.flush()
    return sub


def _merge_status(sub: Subscriber, wanted: SubscriberStatus, reconsent: bool) -> SubscriberStatus:
    current = SubscriberStatus(sub.status)
    if current in _GONE:
        # Someone who left comes back only by acting themselves, never through an import.
        return wanted if reconsent else current
    if current == SubscriberStatus.pending and wanted == SubscriberStatus.active:
        return wanted
    return current


def add_or_update(
    session: Session,
    *,
    email: str,
    regions: Iterable[str],
    status: SubscriberStatus | str = SubscriberStatus.pending,
    locale: str = "en",
    now: datetime,
    reconsent: bool = False,
) -> tuple[Subscriber, bool]:
    """Store a subscriber or add regions to an existing one; returns (subscriber, created).

    ``reconsent`` says the person acted just now (a signup form): only then may a suppressed
    address be stored again (it stays suppressed until its own confirmation). Without it, a
    suppressed, unsubscribed or bounced address raises SuppressedError and nothing changes.
    """
    address = normalize_address(email)
    wanted = SubscriberStatus(status)
    sub = get_by_email(session, email=address)
    reason = suppression_reason(session, email=address)
    why = reason or (sub.status if sub is not None and sub.status in _GONE else None)
    if why is not None and not reconsent:
        raise SuppressedError(suppressed_text(address, why))
    if sub is None:
        try:
            with session.begin_nested():
                sub = Subscriber(
                    email=address, key=new_key(), status=wanted, locale=locale[:16], created=now,
                    confirmed=now if wanted == SubscriberStatus.active else None,
                )  # fmt: skip
                session.add(sub)
                session.flush()
        except sa.exc.IntegrityError:
            sub = get_by_email(session, email=address)  # a concurrent signup won the race
            if sub is None:
                raise
        else:
            assert sub.id is not None
            _follow(session, sub.id, set(regions))
            refresh_zones(session, subscriber_ids=[sub.id])
            return sub, True
    assert sub.id is not None
    merged = _merge_status(sub, wanted, reconsent)
    if merged != sub.status:
        set_status(session, subscriber_id=sub.id, status=merged, now=now)
        if reconsent:
            sub.locale = locale[:16]
    added = set(regions) - set(regions_of(session, subscriber_id=sub.id))
    _follow(session, sub.id, added)
    if added:
        refresh_zones(session, subscriber_ids=[sub.id])
    return sub, False


def suppressed_text(address: str, reason: str) -> str:
    """The report line of an import or API add refused for a suppressed address."""
    if reason == SuppressionReason.erased:
        why = "was erased at the person's request"
    else:
        why = f"is suppressed ({reason})"
    return f"{address} {why}; only the person's own confirmation can bring it back"


_UNNEST_FOLLOWS = sa.text(
    "INSERT INTO subscriptions (subscriber_id, region)"
    " SELECT * FROM unnest(CAST(:ids AS integer[]), CAST(:regions AS varchar[]))"
)


def bulk_add(session: Session, *, rows: Sequence[NewSubscriber], now: datetime) -> list[int]:
    """Insert new subscribers with their regions in a few statements; ids in the order given.

    The caller has checked that none is stored or suppressed (see existing_by_email and
    suppressed_among); an import of a long list goes through here.
    """
    if not rows:
        return []
    tree = RegionTree.load()
    values = [
        {
            "email": r.email, "key": new_key(), "status": r.status, "locale": r.locale[:16],
            "created": now, "confirmed": now if r.status == SubscriberStatus.active else None,
            "left": None, "timezone": default_zone(tree, r.regions), "timezone_chosen": False,
        }
        for r in rows
    ]  # fmt: skip
    # Core insertmanyvalues with RETURNING batches the rows; ids are matched back by address.
    stmt = sa.insert(_S).returning(_S.c.id, _S.c.email)
    by_email = {email: int(i) for i, email in session.execute(stmt, values)}
    ids = [by_email[r.email] for r in rows]
    follows = [
        {"subscriber_id": i, "region": region}
        for i, r in zip(ids, rows, strict=True)
        for region in sorted(set(r.regions))
    ]
    if follows and session.get_bind().dialect.name == "postgresql":
        # One statement over arrays (one firing of the tally trigger, not one per row).
        session.execute(
            _UNNEST_FOLLOWS,
            {
                "ids": array_value([f["subscriber_id"] for f in follows]),
                "regions": array_value([f["region"] for f in follows]),
            },
        )
    elif follows:
        session.execute(sa.insert(_SUB), follows)
    return ids


def record_consent(
    session: Session,
    *,
    subscriber_id: int,
    action: str,
    now: datetime,
    ip: str = "",
    regions: Iterable[str] = (),
    form_version: str = "",
) -> Consent:
    """Keep proof of a signup, confirmation, change or import: what, when, from where."""
    consent = Consent(
        subscriber_id=subscriber_id, action=action[:32], at=now, ip=ip[:64],
        regions=" ".join(sorted(regions))[:2000], form_version=form_version[:32],
    )  # fmt: skip
    session.add(consent)
    session.flush()
    return consent


def record_consents(session: Session, *, rows: Sequence[dict[str, object]]) -> None:
    """Bulk form of record_consent (dicts with the Consent columns), for imports."""
    if rows:
        session.execute(sa.insert(Consent.__table__), list(rows))  # type: ignore[attr-defined]


def consents_of(session: Session, *, subscriber_id: int) -> list[Consent]:
    """A subscriber's consent records, oldest first."""
    stmt = select(Consent).where(col(Consent.subscriber_id) == subscriber_id)
    return list(session.exec(stmt.order_by(col(Consent.at), col(Consent.id))))


def deliveries_of(session: Session, *, subscriber_id: int) -> list[Delivery]:
    """The ledger rows of a subscriber, oldest first (for a data export)."""
    stmt = select(Delivery).where(col(Delivery.subscriber_id) == subscriber_id)
    return list(session.exec(stmt.order_by(col(Delivery.id))))


def list_subscribers(
    session: Session,
    *,
    region: str | None = None,
    status: SubscriberStatus | str | None = None,
    after_id: int = 0,
    limit: int | None = None,
) -> list[Subscriber]:
    """Subscribers by id, optionally only those following ``region`` (exactly) or in ``status``."""
    stmt = select(Subscriber).where(col(Subscriber.id) > after_id).order_by(col(Subscriber.id))
    if region is not None:
        follows = select(Subscription.subscriber_id).where(col(Subscription.region) == region)
        stmt = stmt.where(col(Subscriber.id).in_(follows))
    if status is not None:
        stmt = stmt.where(col(Subscriber.status) == SubscriberStatus(status))
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.exec(stmt))


def recipient_ids(session: Session, *, region: str, after_id: int = 0, limit: int) -> list[int]:
    """Ids of active subscribers following exactly ``region``, id > ``after_id``, ascending.

    Keyset pages: pass the last id of one page as ``after_id`` of the next.
    """
    return [i for i, _ in recipient_locales(session, region=region, after_id=after_id, limit=limit)]


def erase(session: Session, *, email: str, now: datetime, reason: str = "erased") -> bool:
    """Delete everything about a person but a hashed suppression entry; False if unknown.

    Ledger rows stay for the digests' counts, detached: their subscriber_id is negated, because
    SQLite may give a deleted row's id to the next subscriber, who must not inherit them.
    """
    sub = get_by_email(session, email=email)
    if sub is None or sub.id is None:
        return False
    session.execute(
        sa.update(Delivery)
        .where(col(Delivery.subscriber_id) == sub.id)
        .values(subscriber_id=-sub.id)
    )
    session.execute(sa.delete(Subscription).where(col(Subscription.subscriber_id) == sub.id))
    session.execute(sa.delete(Consent).where(col(Consent.subscriber_id) == sub.id))
    session.execute(sa.delete(OutboxMessage).where(col(OutboxMessage.subscriber_id) == sub.id))
    address = sub.email
    session.delete(sub)
    session.flush()
    suppress(session, email=address, reason=reason, now=now)
    return True


def counts(session: Session, *, live: bool = False) -> dict[str, dict[str, int]]:
    """Subscribers per region and status: {region: {status: n}} (tallies on PostgreSQL)."""
    if not live and tallies.kept(session):
        found = tallies.followers(session)
        found.pop(tallies.EVERYONE, None)
        return found
    stmt = (
        sa.select(col(Subscription.region), col(Subscriber.status), sa.func.count())
        .join(Subscriber, col(Subscriber.id) == col(Subscription.subscriber_id))
        .group_by(col(Subscription.region), col(Subscriber.status))
    )
    table: dict[str, dict[str, int]] = defaultdict(dict)
    for region, status, n in session.execute(stmt):
        table[region][status] = int(n)
    return dict(table)


def status_counts(session: Session, *, live: bool = False) -> dict[str, int]:
    """Subscribers per status, whatever they follow (tallies on PostgreSQL)."""
    if not live and tallies.kept(session):
        return tallies.followers(session).get(tallies.EVERYONE, {})
    stmt = sa.select(col(Subscriber.status), sa.func.count()).group_by(col(Subscriber.status))
    return {status: int(n) for status, n in session.execute(stmt)}


def set_locale(session: Session, *, subscriber_id: int, locale: str) -> None:
    """Change the language a subscriber's emails and pages use (the preferences page)."""
    session.execute(sa.update(_S).where(_S.c.id == subscriber_id).values(locale=locale[:16]))


def recipient_locales(
    session: Session, *, region: str, after_id: int = 0, limit: int
) -> list[tuple[int, str]]:
    """(id, locale) of active subscribers following exactly ``region``, id > ``after_id``."""
    stmt = (
        sa.select(_SUB.c.subscriber_id, _S.c.locale)
        .join(_S, _S.c.id == _SUB.c.subscriber_id)
        .where(
            _SUB.c.region == region,
            _SUB.c.subscriber_id > after_id,
            _S.c.status == SubscriberStatus.active,
        )
        .order_by(_SUB.c.subscriber_id)
        .limit(limit)
    )
    return [(int(i), str(loc)) for i, loc in session.execute(stmt)]


def requested_regions(session: Session, *, subscriber_id: int) -> list[str]:
    """The regions asked for in a subscriber's latest signup (waiting for the confirmation)."""
    stmt = (
        select(Consent.regions)
        .where(col(Consent.subscriber_id) == subscriber_id, col(Consent.action) == "signup")
        .order_by(col(Consent.at).desc(), col(Consent.id).desc())
        .limit(1)
    )
    found = session.exec(stmt).first()
    return found.split() if found else []


def get_subscriber(session: Session, *, subscriber_id: int) -> Subscriber | None:
    """The subscriber with this id, or None."""
    return session.get(Subscriber, subscriber_id)


def refresh_zones(session: Session, *, subscriber_ids: Collection[int]) -> None:
    """Reset the zone of these subscribers to their regions' default unless they chose one.

    Called whenever what they follow changes: the main zone of the first country they follow
    (publisher.regions.zones), or NULL, which means the TIMEZONE setting.
    """
    ids = sorted(subscriber_ids)
    tree = RegionTree.load()
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        stmt = (
            sa.select(_S.c.id, _S.c.timezone, _SUB.c.region)
            .select_from(_S.outerjoin(_SUB, _SUB.c.subscriber_id == _S.c.id))
            .where(_S.c.id.in_(part), _S.c.timezone_chosen.is_(False))
        )
        current: dict[int, str | None] = {}
        follows: dict[int, list[str]] = defaultdict(list)
        for sid, zone, region in session.execute(stmt):
            current[int(sid)] = zone
            if region is not None:
                follows[int(sid)].append(region)
        for sid, zone in current.items():
            wanted = default_zone(tree, follows[sid])
            if wanted != zone:
                session.execute(sa.update(_S).where(_S.c.id == sid).values(timezone=wanted))


def set_timezone(session: Session, *, subscriber_id: int, zone: str | None) -> str | None:
    """Pin a subscriber's zone (a checked IANA name), or None: follow their regions again.

    Returns the zone now stored (None = the TIMEZONE setting).
    """
    chosen = zone is not None
    session.execute(
        sa.update(_S).where(_S.c.id == subscriber_id).values(timezone=zone, timezone_chosen=chosen)
    )
    if not chosen:
        refresh_zones(session, subscriber_ids=[subscriber_id])
    stored: str | None = session.execute(
        sa.select(_S.c.timezone).where(_S.c.id == subscriber_id)
    ).scalar_one_or_none()
    return stored
