"""Subscribers as the operator manages them: add, CSV import, export of a person's data, erase.

Import checks every row, reports bad ones as FILE:LINE: reason and keeps the good ones; new
addresses go in with a few bulk statements per thousand rows, existing ones only gain regions
(or move from pending to active), and a suppressed address (erased, unsubscribed, bounced)
is reported instead of re-added or re-activated.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from sqlmodel import Session

from publisher.addresses import normalize_address
from publisher.delivery.mailer import Mailer
from publisher.errors import InputError, UnknownRegionError
from publisher.models import Subscriber, SubscriberStatus, SuppressionReason
from publisher.pipeline.outbox import OutboxDeliverer, fixed_mailer
from publisher.regions.tree import RegionTree
from publisher.regions.zones import check_zone
from publisher.runtime import Runtime
from publisher.store import outbox
from publisher.store import subscribers as store
from publisher.store.subscriber_admin import regions_by_subscriber

FORM_VERSION = "cli-1"
_LOCALE = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*")
_CHUNK = 1_000
GONE = (SubscriberStatus.unsubscribed, SubscriberStatus.bounced)


@dataclass(frozen=True, slots=True)
class SubscriberRow:
    """One checked row of a subscribers CSV."""

    line: int
    email: str
    regions: tuple[str, ...]
    status: SubscriberStatus
    locale: str


@dataclass
class SubscriberImportReport:
    """What an import did; ``pending_ids`` are the new subscribers owed a confirmation email."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: int = 0  # rows refused because the address is suppressed (also in errors)
    errors: list[InputError] = field(default_factory=list)
    pending_ids: list[int] = field(default_factory=list)


def check_regions(values: list[str], tree: RegionTree) -> tuple[str, ...]:
    """Canonical slugs for the given names or codes; InputError if none or one is unknown."""
    if not values:
        raise InputError("no regions given; name at least one region slug")
    try:
        return tuple(dict.fromkeys(tree.normalize(v) for v in values))
    except UnknownRegionError as e:
        raise InputError(str(e)) from e


def check_locale(value: str) -> str:
    """A BCP 47-looking locale tag ("en", "es-CL"), defaulting to English."""
    value = value.strip() or "en"
    if len(value) > 16 or not _LOCALE.fullmatch(value):
        raise InputError(f"locale must look like en or es-CL, not {value[:20]!r}")
    return value


def parse_row(record: dict[str, Any], *, line: int, tree: RegionTree) -> SubscriberRow:
    """Check one CSV record (columns email, regions, optional status and locale)."""
    if None in record:
        raise InputError("more fields than the header has columns")
    email = normalize_address(record.get("email") or "")
    regions = check_regions((record.get("regions") or "").replace(",", " ").split(), tree)
    status_text = (record.get("status") or "").strip().lower() or "pending"
    if status_text not in ("pending", "active"):
        raise InputError(f"status must be active or pending, not {status_text!r}")
    locale = check_locale(record.get("locale") or "")
    return SubscriberRow(line, email, regions, SubscriberStatus(status_text), locale)


def read_subscriber_csv(path: str, *, tree: RegionTree) -> Iterator[SubscriberRow | InputError]:
    """The rows of a subscribers CSV, each checked; a bad row comes out as its InputError."""
    try:
        handle = Path(path).open(encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed below)
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", source=path) from e
    with handle:
        yield from read_subscriber_rows(handle, source=path, tree=tree)


def read_subscriber_rows(
    handle: TextIO, *, source: str, tree: RegionTree
) -> Iterator[SubscriberRow | InputError]:
    """The checked rows of a subscribers CSV already open as text (a file or an upload)."""
    reader = csv.DictReader(handle)
    try:
        header = [h.strip().lower() for h in reader.fieldnames or []]
    except (csv.Error, UnicodeDecodeError) as e:
        raise InputError(f"not a CSV file: {e}", source=source, line=1) from e
    missing = {"email", "regions"} - set(header)
    if missing:
        raise InputError(
            f"header lacks column(s) {', '.join(sorted(missing))}", source=source, line=1
        )
    reader.fieldnames = header
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as e:
            yield InputError(f"unreadable row: {e}", source=source, line=reader.line_num)
            continue
        try:
            yield parse_row(record, line=reader.line_num, tree=tree)
        except InputError as e:
            yield InputError(e.reason, source=source, line=reader.line_num)


def _consent(
    subscriber_id: int, action: str, regions: tuple[str, ...], now: datetime
) -> dict[str, object]:
    return {
        "subscriber_id": subscriber_id, "action": action, "at": now, "ip": "",
        "regions": " ".join(sorted(regions))[:2000], "form_version": FORM_VERSION,
    }  # fmt: skip


def _import_chunk(
    session: Session, rows: list[SubscriberRow], *, source: str, now: datetime,
    report: SubscriberImportReport,
) -> None:  # fmt: skip
    emails = [r.email for r in rows]
    existing = store.existing_by_email(session, emails=emails)
    suppressed = store.suppressed_among(session, emails=emails)
    suppressed |= {e for e, sub in existing.items() if sub.status in GONE}
    fresh: dict[str, SubscriberRow] = {}
    later: list[SubscriberRow] = []
    for row in rows:
        low = row.email.lower()
        if low in suppressed:
            reason = store.suppression_reason(session, email=row.email) or existing[low].status
            report.suppressed += 1
            report.errors.append(
                InputError(
                    store.suppressed_text(row.email, reason) + "; not imported",
                    source=source,
                    line=row.line,
                )
            )
        elif low in existing or low in fresh:
            later.append(row)
        else:
            fresh[low] = row
    new = list(fresh.values())
    ids = store.bulk_add(
        session,
        rows=[store.NewSubscriber(r.email, r.regions, r.status, r.locale) for r in new],
        now=now,
    )
    store.record_consents(
        session, rows=[_consent(i, "import", r.regions, now) for i, r in zip(ids, new, strict=True)]
    )
    report.added += len(ids)
    report.pending_ids += [
        i for i, r in zip(ids, new, strict=True) if r.status == SubscriberStatus.pending
    ]
    follows = regions_by_subscriber(session, ids=[s.id for s in existing.values() if s.id])
    for row in later:
        known = existing.get(row.email.lower())
        if known is not None and _nothing_new(row, known, follows.get(known.id or 0, [])):
            report.unchanged += 1  # the common re-import: no query per row
        elif _update(session, row, now=now):
            report.updated += 1
        else:
            report.unchanged += 1


def _nothing_new(row: SubscriberRow, known: Subscriber, follows: list[str]) -> bool:
    """Whether a row would change nothing for a subscriber as stored before its chunk."""
    activates = known.status == SubscriberStatus.pending and row.status == SubscriberStatus.active
    return not activates and set(row.regions) <= set(follows)


def _update(session: Session, row: SubscriberRow, *, now: datetime) -> bool:
    """Add a row's regions (and activation) to an existing subscriber; True if anything changed."""
    before = store.get_by_email(session, email=row.email)
    assert before is not None and before.id is not None
    status, regions = before.status, set(store.regions_of(session, subscriber_id=before.id))
    sub, _ = store.add_or_update(
        session, email=row.email, regions=row.regions, status=row.status, now=now
    )
    assert sub.id is not None
    changed = (
        sub.status != status or set(store.regions_of(session, subscriber_id=sub.id)) != regions
    )
    if changed:
        store.record_consent(
            session,
            subscriber_id=sub.id,
            action="import",
            now=now,
            regions=row.regions,
            form_version=FORM_VERSION,
        )
    return changed


def import_subscribers(
    session: Session, *, path: str, tree: RegionTree, now: datetime
) -> SubscriberImportReport:
    """Import a subscribers CSV; a file that cannot be read at all raises InputError."""
    return import_subscriber_rows(
        session, rows=read_subscriber_csv(path, tree=tree), source=path, now=now
    )


def import_subscriber_rows(
    session: Session, *, rows: Iterator[SubscriberRow | InputError], source: str, now: datetime
) -> SubscriberImportReport:
    """Import checked rows (see read_subscriber_rows) a thousand at a time; the same rules
    for the CLI and the console: suppressed addresses are reported, never re-added."""
    report = SubscriberImportReport()
    while chunk := list(islice(rows, _CHUNK)):
        good: list[SubscriberRow] = []
        for row in chunk:
            if isinstance(row, InputError):
                report.errors.append(row)
            else:
                good.append(row)
        _import_chunk(session, good, source=source, now=now, report=report)
    report.errors.sort(key=lambda e: e.line or 0)
    return report


def add_subscriber(
    session: Session, *, email: str, regions: list[str], confirmed: bool, locale: str,
    tree: RegionTree, now: datetime, form_version: str = FORM_VERSION,
    timezone: str | None = None,
) -> tuple[Subscriber, bool]:  # fmt: skip
    """Add one subscriber (or regions to an existing one) as the operator; (subscriber, created).

    ``form_version`` names the tool in the consent record (the CLI's, the console's);
    ``timezone``: pin their zone (an IANA name); None leaves it to their regions.
    """
    slugs = check_regions(regions, tree)
    zone = None if timezone is None else check_zone(timezone)
    status = SubscriberStatus.active if confirmed else SubscriberStatus.pending
    sub, created = store.add_or_update(
        session, email=email, regions=slugs, status=status, locale=check_locale(locale), now=now
    )
    assert sub.id is not None
    if zone is not None:
        store.set_timezone(session, subscriber_id=sub.id, zone=zone)
    session.refresh(sub)
    store.record_consent(
        session,
        subscriber_id=sub.id,
        action="operator-add",
        now=now,
        regions=slugs,
        form_version=form_version,
    )
    return sub, created


AUTO_ZONE = "auto"


def set_subscriber_timezone(
    session: Session, *, email: str, zone: str | None
) -> tuple[Subscriber, str | None] | None:
    """Pin a subscriber's time zone (an IANA name), or with None or "auto" let it follow their
    regions again; (subscriber, stored zone: None = TIMEZONE), None for an unknown address.

    InputError, and nothing changed, for a name that is not a zone.
    """
    wanted = None if zone is None or zone.strip().lower() == AUTO_ZONE else check_zone(zone)
    sub = store.get_by_email(session, email=email)
    if sub is None or sub.id is None:
        return None
    stored = store.set_timezone(session, subscriber_id=sub.id, zone=wanted)
    session.refresh(sub)
    return sub, stored


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def export_subscriber(session: Session, *, email: str) -> dict[str, Any] | None:
    """Everything stored about one person (their access request), or None if unknown."""
    sub = store.get_by_email(session, email=email)
    if sub is None or sub.id is None:
        return None
    return {
        "subscriber": {
            "id": sub.id, "email": sub.email, "status": sub.status, "locale": sub.locale,
            "timezone": sub.timezone, "timezone_chosen": sub.timezone_chosen,
            "created": _iso(sub.created), "confirmed": _iso(sub.confirmed), "left": _iso(sub.left),
        },
        "regions": store.regions_of(session, subscriber_id=sub.id),
        "consents": [
            {
                "action": c.action, "at": _iso(c.at), "ip": c.ip, "regions": c.regions.split(),
                "form_version": c.form_version,
            }
            for c in store.consents_of(session, subscriber_id=sub.id)
        ],
        "deliveries": [
            {
                "digest_id": d.digest_id, "state": d.state, "attempts": d.attempts,
                "sent_at": _iso(d.sent_at), "message_id": d.message_id,
            }
            for d in store.deliveries_of(session, subscriber_id=sub.id)
        ],
    }  # fmt: skip


def erase_subscriber(session: Session, *, email: str, now: datetime) -> bool:
    """Erase a person, keeping only a hashed suppression entry; False if the address is unknown."""
    try:
        normalize_address(email)
    except InputError:
        return False
    return store.erase(session, email=email, now=now)


def queue_confirmations(session: Session, *, subscriber_ids: list[int], now: datetime) -> int:
    """Put a confirmation email for each still-pending subscriber in the outbox; how many.

    Called in the transaction that added them, so the emails are as durable as the rows.
    """
    queued = 0
    for sid in subscriber_ids:
        sub = store.get_subscriber(session, subscriber_id=sid)
        if sub is None or sub.status != SubscriberStatus.pending:
            continue
        if store.may_mail(session, email=sub.email, now=now):
            outbox.add(session, subscriber_id=sid, now=now)
            queued += 1
    return queued


def send_confirmations(rt: Runtime, mailer: Mailer | None = None) -> tuple[int, list[str]]:
    """Deliver what waits in the outbox now (CLI commands, before they exit); (sent, problems).

    Through the one Mailer interface (SMTP_URL or the embedded server, or ``mailer``); a message
    the server deferred stays in the outbox for the deliverer to retry, and is reported.
    """
    deliverer = OutboxDeliverer(rt, mailer=fixed_mailer(mailer) if mailer else None)
    stats = deliverer.drain()
    problems = []
    if stats.deferred:
        problems.append(f"{stats.deferred} confirmation email(s) deferred; the deliverer retries")
    if stats.failed:
        problems.append(f"{stats.failed} confirmation email(s) refused by the server")
    if stats.unknown:
        problems.append(f"{stats.unknown} confirmation email(s) in doubt; they will be sent again")
    return stats.sent, problems


CLEARABLE = (SuppressionReason.soft_bounce, SuppressionReason.hard_bounce)


def clear_bounce(session: Session, *, email: str, now: datetime) -> bool:
    """Lift a bounce block (the mailbox works again, says the person); True if one was lifted.

    The address then stands as one that left, not as a subscriber: no import or console add
    brings it back, its owner's own confirmation does (at most one confirmation email a day).
    Complaints, unsubscribes and erasures are never lifted by an operator.
    """
    if store.suppression_reason(session, email=email) not in CLEARABLE:
        return False
    sub = store.get_by_email(session, email=email)
    store.unsuppress(session, email=email)
    if sub is None or sub.id is None:
        store.suppress(session, email=email, reason=SuppressionReason.erased, now=now)
        return True
    if sub.status == SubscriberStatus.bounced:
        store.set_status(
            session, subscriber_id=sub.id, status=SubscriberStatus.unsubscribed, now=now
        )
    store.suppress(session, email=email, reason=SuppressionReason.unsubscribed, now=now)
    return True
