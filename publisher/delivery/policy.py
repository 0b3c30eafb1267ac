"""What an SMTP outcome does to a ledger row: retry times, the 3-day give-up, bounces.

Pure functions of the outcome, the row and ``now``, so retry schedules are tested without waiting.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from publisher.delivery.ledger import Recipient, RowUpdate
from publisher.delivery.smtp import Outcome, SendResult
from publisher.models import DeliveryState

FIRST_RETRY = timedelta(minutes=5)
GIVE_UP_AFTER = timedelta(days=3)


def next_attempt(*, attempts: int, first_attempt: datetime, now: datetime) -> datetime | None:
    """When a deferred message is tried again (5 min, doubling), or None once 3 days have passed.

    The last retry is moved up to the deadline rather than skipped, so every address gets a try
    at the 3-day mark before it is given up.
    """
    deadline = first_attempt + GIVE_UP_AFTER
    if now >= deadline:
        return None
    return min(now + FIRST_RETRY * 2 ** max(attempts - 1, 0), deadline)


def decide(recipient: Recipient, result: SendResult, *, now: datetime) -> tuple[RowUpdate, bool]:
    """The row update for one finished message, and whether its subscriber bounced."""
    row = recipient.row
    error = result.describe()
    if result.outcome is Outcome.sent:
        return RowUpdate(row.id, DeliveryState.sent), False
    if result.outcome is Outcome.failed:
        return RowUpdate(row.id, DeliveryState.failed, error), result.bounce
    if result.outcome is Outcome.unknown:
        return RowUpdate(row.id, DeliveryState.unknown, error), False
    when = next_attempt(attempts=row.attempts, first_attempt=row.first_attempt, now=now)
    if when is None:
        return RowUpdate(row.id, DeliveryState.failed, f"gave up after 3 days: {error}"), False
    return RowUpdate(row.id, DeliveryState.deferred, error, when), False
