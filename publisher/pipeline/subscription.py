"""The subscription lifecycle: sign up, confirm, change regions, leave (web forms, admin API, CLI).

Signing up never reveals whether an address is known: every address gets the same answer. The
confirmation email is an outbox row written in the signup's transaction (publisher.pipeline.
outbox sends it); a suppressed address keeps its status, gets at most one a day (none after a
hard bounce), and only a confirmation signed after it left brings it back. Requested regions
wait in the signup's consent record and are merged into the subscriptions only when the
confirmation link is opened, so nobody can add regions to somebody else's subscription. Every
change keeps a consent record (time, IP, regions, form).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Sequence
from datetime import datetime

from sqlmodel import Session

from publisher.models import Subscriber, SubscriberStatus, SuppressionReason
from publisher.pipeline.outbox import NO_MAIL, DeliverMailer, OutboxDeliverer, fixed_mailer
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.store import outbox
from publisher.store.subscribers import (
    add_or_update,
    get_by_email,
    may_mail,
    record_consent,
    regions_of,
    requested_regions,
    set_regions,
    set_status,
    suppress,
    suppression_reason,
    unsuppress,
)

log = logging.getLogger(__name__)
FORM_VERSION = "subscribe-2026-11"
GONE = (SubscriberStatus.unsubscribed, SubscriberStatus.bounced)

Deliver = Callable[[str, bytes], None]


class ConfirmationMailer(OutboxDeliverer):
    """The web app's outbox deliverer: woken after each signup, or draining on ``flush``.

    ``deliver(to, message)`` replaces the SMTP Mailer (tests that keep the messages).
    """

    def __init__(
        self, runtime: Runtime, *, settings: Settings | None = None, deliver: Deliver | None = None
    ) -> None:
        mailer = fixed_mailer(DeliverMailer(deliver)) if deliver else None
        super().__init__(runtime, settings=settings, mailer=mailer)


def signup(
    session: Session,
    *,
    email: str,
    regions: Sequence[str],
    ip: str,
    form_version: str,
    now: datetime,
    locale: str = "en",
) -> int | None:
    """Record a signup request for a normalised address; its outbox row, or None if no mail.

    The caller answers the same whatever happens here. A hard-bounced or complained-about
    address gets nothing at all; an unsubscribed one keeps its status (no import can activate
    it) and gets at most one confirmation a day; only that confirmation brings it back. The
    confirmation speaks the form's language; a subscriber not yet confirmed takes it too.
    """
    known = get_by_email(session, email=email)
    reason = suppression_reason(session, email=email)
    if reason in NO_MAIL or (known is not None and known.status == SubscriberStatus.bounced):
        return None
    if known is not None and known.status in GONE:
        sub = known
    else:
        sub, _created = add_or_update(
            session, email=email, regions=(), status=SubscriberStatus.pending, now=now,
            reconsent=True, locale=locale,
        )  # fmt: skip
        if sub.status == SubscriberStatus.pending and sub.locale != locale:
            sub.locale = locale
    assert sub.id is not None
    record_consent(
        session,
        subscriber_id=sub.id,
        action="signup",
        now=now,
        ip=ip,
        regions=regions,
        form_version=form_version,
    )
    if not may_mail(session, email=sub.email, now=now):
        return None
    return outbox.add(session, subscriber_id=sub.id, now=now)


def confirm(
    session: Session, *, subscriber: Subscriber, ip: str, now: datetime, known: Container[str],
    signed: datetime | None = None,
) -> list[str] | None:  # fmt: skip
    """Activate a subscriber and add the regions they asked for; None if the link may not.

    Someone who left comes back only through a confirmation signed after they left (``signed``,
    the token's time); a hard bounce or complaint never comes back this way.
    """
    assert subscriber.id is not None
    reason = suppression_reason(session, email=subscriber.email)
    if reason in NO_MAIL or subscriber.status == SubscriberStatus.bounced:
        return None
    if subscriber.status in GONE or reason is not None:
        left = subscriber.left or subscriber.created
        if signed is None or signed < left.replace(microsecond=0):
            return None
        unsuppress(session, email=subscriber.email)
    current = regions_of(session, subscriber_id=subscriber.id)
    asked = requested_regions(session, subscriber_id=subscriber.id)
    wanted = sorted(set(current) | {r for r in asked if r in known})
    changed = subscriber.status != SubscriberStatus.active or wanted != current
    if wanted != current:
        set_regions(session, subscriber_id=subscriber.id, regions=wanted)
    if subscriber.status != SubscriberStatus.active:
        set_status(session, subscriber_id=subscriber.id, status=SubscriberStatus.active, now=now)
    if changed:
        record_consent(
            session,
            subscriber_id=subscriber.id,
            action="confirm",
            now=now,
            ip=ip,
            regions=wanted,
            form_version=FORM_VERSION,
        )
    return wanted


def change_regions(
    session: Session, *, subscriber: Subscriber, regions: Sequence[str], ip: str, now: datetime
) -> list[str]:
    """Follow exactly ``regions`` (someone who had left comes back); empty means leave."""
    assert subscriber.id is not None
    if not regions:
        leave(session, subscriber=subscriber, ip=ip, now=now)
        return []
    chosen = set_regions(session, subscriber_id=subscriber.id, regions=regions)
    action = "preferences"
    if subscriber.status in GONE:
        if (
            subscriber.status == SubscriberStatus.bounced
            or suppression_reason(session, email=subscriber.email) in NO_MAIL
        ):
            return chosen  # regions kept; a bounced address is not mailed again
        unsuppress(session, email=subscriber.email)
        set_status(session, subscriber_id=subscriber.id, status=SubscriberStatus.active, now=now)
        action = "resubscribe"
    record_consent(
        session,
        subscriber_id=subscriber.id,
        action=action,
        now=now,
        ip=ip,
        regions=chosen,
        form_version=FORM_VERSION,
    )
    return chosen


def leave(session: Session, *, subscriber: Subscriber, ip: str, now: datetime) -> bool:
    """Unsubscribe (idempotent); True if the status changed."""
    assert subscriber.id is not None
    if subscriber.status == SubscriberStatus.unsubscribed:
        return False
    set_status(session, subscriber_id=subscriber.id, status=SubscriberStatus.unsubscribed, now=now)
    suppress(session, email=subscriber.email, reason=SuppressionReason.unsubscribed, now=now)
    record_consent(
        session,
        subscriber_id=subscriber.id,
        action="unsubscribe",
        now=now,
        ip=ip,
        regions=regions_of(session, subscriber_id=subscriber.id),
        form_version=FORM_VERSION,
    )
    return True
