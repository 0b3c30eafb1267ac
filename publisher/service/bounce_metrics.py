"""``publisher_bounce_reports_total{state,kind}``: reports this process applied, by outcome.

Kept apart from ``Metrics`` so the bounce work adds its counter to a process's registry
without touching the delivery metrics; the receiver and the webhook route both count here.
"""

from __future__ import annotations

import threading
import weakref

from prometheus_client import CollectorRegistry, Counter

from publisher.runtime import Runtime
from publisher.service.metrics import metrics_for

_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def count_report(rt: Runtime, *, state: str, kind: str, n: int = 1) -> None:
    """Add ``n`` reports that ended in ``state`` with ``kind`` to the process's counter."""
    registry = metrics_for(rt).registry
    with _LOCK:
        counter = _COUNTERS.get(registry)
        if counter is None:
            counter = _COUNTERS[registry] = Counter(
                "publisher_bounce_reports", "Bounce and complaint reports this process applied, "
                "by state (applied, unmatched, ignored, duplicate, malformed) and kind.",
                ["state", "kind"], registry=registry,
            )  # fmt: skip
    counter.labels(state, kind or "none").inc(n)
