"""The subscription lifecycle: sign up, confirm, change regions, leave (web forms, admin API, CLI).

Signing up never reveals whether an address is known: new, pending, active and former
subscribers all get the same treatment (one upsert, one consent record, one confirmation email
sent after the answer). Requested regions wait in the signup's consent record and are merged
into the subscriptions only when the confirmation link is opened, so nobody can add regions to
somebody else's subscription. Every change keeps a consent record (time, IP, regions, form).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Container, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from publisher.delivery.mailer import send_one_message
from publisher.email.outgoing import confirmation_message
from publisher.models import Subscriber, SubscriberStatus
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.store.subscribers import (
    add_or_update,
    record_consent,
    regions_of,
    requested_regions,
    set_regions,
    set_status,
)

log = logging.getLogger(__name__)
FORM_VERSION = "subscribe-2026-11"
GONE = (SubscriberStatus.unsubscribed, SubscriberStatus.bounced)

Deliver = Callable[[str, bytes], None]


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What the confirmation email of one signup needs (built inside the request)."""

    subscriber_id: int
    email: str
    key: str
    region_names: tuple[str, ...]
    locale: str


class ConfirmationMailer:
    """Renders and sends double opt-in emails on a small thread pool, after the answer is sent."""

    def __init__(
        self, runtime: Runtime, *, settings: Settings | None = None, deliver: Deliver | None = None
    ) -> None:
        self.settings = settings or runtime.settings
        self.tokens = runtime.tokens
        self.clock = runtime.now
        self._deliver = deliver or self._smtp
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="confirm-mail")
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    def _smtp(self, to: str, message: bytes) -> None:
        send_one_message(self.settings, self.settings.from_, to, message)

    def build(self, job: Confirmation) -> bytes:
        """The confirmation message for one signup (CRLF line endings)."""
        return confirmation_message(
            settings=self.settings,
            tokens=self.tokens,
            subscriber_id=job.subscriber_id,
            key=job.key,
            email=job.email,
            region_names=list(job.region_names),
            locale=job.locale,
            now=self.clock(),
        )

    def _send(self, job: Confirmation) -> None:
        try:
            self._deliver(job.email, self.build(job))
        except Exception:
            # The reader already has their answer; a failed confirmation is the operator's to see.
            log.exception("confirmation email to subscriber %s failed", job.key)

    def submit(self, job: Confirmation) -> None:
        """Queue one confirmation email; returns at once."""
        future = self._pool.submit(self._send, job)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def flush(self, timeout: float = 30) -> None:
        """Wait for queued emails (tests, shutdown)."""
        with self._lock:
            pending = list(self._pending)
        wait(pending, timeout=timeout)

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)


def signup(
    session: Session,
    *,
    email: str,
    regions: Sequence[str],
    region_names: Sequence[str],
    ip: str,
    form_version: str,
    now: datetime,
    locale: str = "en",
) -> Confirmation:
    """Record a signup request for a normalised address; the same work whoever it is.

    The confirmation speaks the form's language; a subscriber not yet confirmed takes it too.
    """
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
    return Confirmation(sub.id, sub.email, sub.key, tuple(region_names), locale)


def confirm(
    session: Session, *, subscriber: Subscriber, ip: str, now: datetime, known: Container[str]
) -> list[str] | None:
    """Activate a subscriber and add the regions they asked for; None if they have left since."""
    assert subscriber.id is not None
    if subscriber.status in GONE:
        return None
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
