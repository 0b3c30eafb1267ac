"""Prometheus metrics of one process, and the ledger as every worker left it (read at scrape time).

Counters count what *this* process did (a worker's sends, the scheduler's jobs); scrape each
worker with ``--metrics-port``, or read ``publisher_ledger_messages`` on the web's /metrics,
which counts the ledger rows of recent digests by region and state across all workers.

    publisher_messages_total{region,outcome}     messages finished: sent, deferred, failed,
                                                 unknown, skipped
    publisher_send_seconds                       one SMTP transaction, connect to final reply
    publisher_feed_builds_total                  feed rebuilds; publisher_feed_files_written_total
    publisher_jobs_total{job,outcome}            scheduled runs: ok, error, missed, overlapping
    publisher_scheduler_leader                   1 while this process is the active scheduler
    publisher_digest_recipients_queued_total{zone}     ledger rows a zone's weekly fire added
    publisher_ledger_messages{region,state}      (web) rows of the last 5 weeks' digests
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from publisher.runtime import Runtime
from publisher.store.delivery_counts import per_region_state

LEDGER_WINDOW = timedelta(weeks=5)
_BY_RUNTIME: weakref.WeakKeyDictionary[Runtime, Metrics] = weakref.WeakKeyDictionary()


class Metrics:
    """The metrics of one process, in their own registry (so tests can hold several)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "publisher_messages", "Messages finished by this process, by region and outcome.",
            ["region", "outcome"], registry=r,
        )  # fmt: skip
        self.send_seconds = Histogram(
            "publisher_send_seconds", "Duration of one SMTP transaction (one recipient).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=r,
        )  # fmt: skip
        self.feed_builds = Counter(
            "publisher_feed_builds", "Feed rebuilds run by the scheduler.", registry=r
        )
        self.feed_files = Counter(
            "publisher_feed_files_written", "Feed files rewritten (changed) by rebuilds.",
            registry=r,
        )  # fmt: skip
        self.jobs = Counter(
            "publisher_jobs", "Scheduled job runs by job and outcome (ok, error, missed, "
            "overlapping).", ["job", "outcome"], registry=r,
        )  # fmt: skip
        self.leader = Gauge(
            "publisher_scheduler_leader", "1 while this process is the active scheduler.",
            registry=r,
        )  # fmt: skip
        self.queued = Counter(
            "publisher_digest_recipients_queued", "Ledger rows added by the weekly edition "
            "fires, by the readers' time zone.", ["zone"], registry=r,
        )  # fmt: skip
        self._ledger: LedgerCollector | None = None

    def watch_ledger(self, rt: Runtime) -> None:
        """Also expose the ledger's recent rows by region and state (once per registry)."""
        if self._ledger is None:
            self._ledger = LedgerCollector(rt)
            self.registry.register(self._ledger)


def metrics_for(rt: Runtime) -> Metrics:
    """The Metrics of the process that owns ``rt`` (one per Runtime: serve shares it)."""
    found = _BY_RUNTIME.get(rt)
    if found is None:
        found = _BY_RUNTIME[rt] = Metrics()
    return found


class LedgerCollector(Collector):
    """``publisher_ledger_messages{region,state}``: one GROUP BY at each scrape."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "publisher_ledger_messages",
            "Ledger rows of the digests assembled in the last 5 weeks, by region and state.",
            labels=["region", "state"],
        )
        since = self.rt.now() - LEDGER_WINDOW
        with self.rt.session() as session:
            for region, state, n in per_region_state(session, since=since):
                family.add_metric([region, state], float(n))
        yield family
