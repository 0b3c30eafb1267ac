"""When a source is polled next, and what its row says afterwards: pure functions of the outcome.

Success waits the source's interval, or longer when the server's Cache-Control max-age asks for
it; errors back off doubling from the interval up to a day, or as long as Retry-After says (also
at most a day); 410 Gone pauses the source; a permanent redirect moves its URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from publisher.errors import InputError

DAY = 86_400
MIN_EVERY = 60
MAX_EVERY = 7 * DAY
_EVERY = re.compile(r"(\d{1,7})\s*([smhd]?)")
_UNIT = {"": 60, "s": 1, "m": 60, "h": 3600, "d": DAY}


def parse_every(value: str) -> int:
    """Seconds in "30m", "2h", "1d", "90s" (a bare number is minutes), 1 minute to 7 days."""
    found = _EVERY.fullmatch(value.strip().lower())
    if not found:
        raise InputError(f"--every {value!r} is not a duration like 30m, 2h or 1d")
    seconds = int(found.group(1)) * _UNIT[found.group(2)]
    if not MIN_EVERY <= seconds <= MAX_EVERY:
        raise InputError(f"--every {value!r} must be between 1 minute and 7 days")
    return seconds


def describe_every(seconds: int) -> str:
    """The shortest exact form of an interval: 1800 -> "30m"."""
    for unit, size in (("d", DAY), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one poll found: fetched (with entry counts), not modified, or an error."""

    ok: bool
    added: int = 0
    updated: int = 0
    skipped: int = 0
    error: str = ""
    status: int | None = None
    retry_after: float | None = None
    max_age: float | None = None
    etag: str | None = None
    last_modified: str | None = None
    moved_to: str | None = None
    not_modified: bool = False
    content_hash: str | None = None  # of a body whose entries were taken in

    @property
    def summary(self) -> str:
        if not self.ok:
            return "error"
        if self.not_modified:
            return "not modified"
        text = f"{self.added} new, {self.updated} updated"
        return f"{text}, {self.skipped} skipped" if self.skipped else text


def backoff(every: int, failures: int, retry_after: float | None = None) -> float:
    """Seconds to wait after the ``failures``-th error in a row: every x 2^failures, <= a day."""
    delay = float(min(every * 2 ** min(failures, 20), DAY))
    if retry_after is not None:
        delay = max(delay, min(retry_after, DAY))
    return delay


def after_poll(*, every: int, failures: int, outcome: Outcome, now: datetime) -> dict[str, Any]:
    """The source row's new values after ``outcome`` (``failures`` = errors in a row before)."""
    values: dict[str, Any] = {"last_polled": now, "last_result": outcome.summary[:200]}
    if outcome.moved_to:
        values["url"] = outcome.moved_to[:2000]
    if not outcome.ok:
        failures += 1
        values.update(failures=failures, last_error=outcome.error[:1000])
        if outcome.status == 410:
            values.update(paused=True, last_result="gone: paused")
        wait = backoff(every, failures, outcome.retry_after)
        values["next_poll"] = now + timedelta(seconds=wait)
        return values
    wait = float(every)
    if outcome.max_age is not None:
        wait = max(wait, min(outcome.max_age, DAY))
    values.update(
        failures=0, last_error="", last_ok=now, paused=False,
        next_poll=now + timedelta(seconds=wait),
    )  # fmt: skip
    if outcome.content_hash is not None:
        values["content_hash"] = outcome.content_hash
    if outcome.etag is not None or not outcome.not_modified:
        values["etag"] = (outcome.etag or None) and outcome.etag[:1000]
    if outcome.last_modified is not None or not outcome.not_modified:
        values["last_modified"] = (outcome.last_modified or None) and outcome.last_modified[:100]
    return values
