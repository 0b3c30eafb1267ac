"""Helpers for the scheduler, worker and topology tests: data, a counting SMTP server, processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlmodel import select

from publisher.delivery.embedded import free_port
from publisher.digest.windows import week_window
from publisher.intake.records import RawRecord
from publisher.models import Delivery
from publisher.pipeline.intake import import_records
from publisher.runtime import Runtime
from publisher.schedule.times import zone_cadence
from publisher.service import jobs
from publisher.service.jobs import JobContext, WeeklyTrigger
from publisher.service.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]


def add_items_in_week(rt: Runtime, week: str, region: str, n: int = 2) -> list[int]:
    """``n`` items tagged ``region``, published on the Tuesday of ``week`` (UTC)."""
    start, _ = week_window(week, ZoneInfo("UTC"))
    records = [
        RawRecord(
            source="t",
            line=i,
            title=f"News {week} #{i}",
            summary=f"About {region}, item {i}.",
            published=start + timedelta(days=1, hours=i),
            regions=[region],
        )
        for i in range(1, n + 1)
    ]
    # They entered the store when the week began, so they are visible at their publication time
    # (a fire in that week's past sees them, whatever the test clock says now).
    with rt.session() as session:
        report = import_records(
            session, records=records, tree=rt.tree, inferrer=rt.inferrer, now=start
        )
    assert report.errors == []
    return report.ids


def add_recent_items(rt: Runtime, region: str, now: datetime, n: int = 2) -> list[int]:
    """``n`` items tagged ``region`` that became visible a day before ``now`` (inside a first
    edition's window, which reaches back one week from its cutoff)."""
    day_before = now - timedelta(days=1)
    records = [
        RawRecord(
            source="t", line=i, title=f"Recent news #{i}", summary=f"About {region}, item {i}.",
            published=day_before + timedelta(minutes=i), regions=[region],
        )
        for i in range(1, n + 1)
    ]  # fmt: skip
    with rt.session() as session:
        report = import_records(
            session, records=records, tree=rt.tree, inferrer=rt.inferrer, now=day_before
        )
    assert report.errors == []
    return report.ids


def leave_missed_zone_job(rt: Runtime, zone_name: str, missed_at: datetime) -> None:
    """Leave a zone's edition job in the store whose fire time passed while no scheduler ran."""
    ctx = JobContext(name="earlier", runtime=rt, metrics=Metrics(), runner="earlier")
    scheduler = jobs.build_scheduler(ctx)
    scheduler.start(paused=True)
    scheduler.add_job(
        jobs.zone_job, WeeklyTrigger(zone_cadence(rt.settings, zone_name)),
        args=("earlier", zone_name), id=jobs.ZONE_PREFIX + zone_name, next_run_time=missed_at,
    )  # fmt: skip
    scheduler.shutdown(wait=False)


def ledger(rt: Runtime) -> list[Delivery]:
    with rt.session() as session:
        return list(session.exec(select(Delivery)))


def ledger_states(rt: Runtime) -> Counter[str]:
    return Counter(d.state for d in ledger(rt))


def count(rt: Runtime, table: Any) -> int:
    with rt.session() as session:
        return int(session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


# -- SMTP ------------------------------------------------------------------------------------------
class CountingSMTP:
    """An aiosmtpd handler counting accepted messages per recipient, optionally slow."""

    def __init__(self, delay: float = 0.0, *, keep: bool = False) -> None:
        self.delay = delay
        self.keep = keep
        self.counts: Counter[str] = Counter()
        self.messages: list[tuple[str, EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.counts.update(envelope.rcpt_tos)
            if self.keep:
                parsed = message_from_bytes(envelope.original_content, policy=policy.default)
                self.messages.extend((r, parsed) for r in envelope.rcpt_tos)  # type: ignore[misc]
        return "250 2.0.0 queued"

    def kept(self) -> list[tuple[str, EmailMessage]]:
        with self.lock:
            return list(self.messages)

    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.counts)


@contextmanager
def counting_smtp(delay: float = 0.0, *, keep: bool = False) -> Iterator[tuple[CountingSMTP, str]]:
    """A counting SMTP server on 127.0.0.1 (``keep``: the parsed messages too); yields the
    handler and its SMTP_URL."""
    handler = CountingSMTP(delay, keep=keep)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, f"smtp://127.0.0.1:{controller.port}?starttls=never"
    finally:
        controller.stop()


# -- processes --------------------------------------------------------------------------------
def service_env(rt: Runtime, **extra: str) -> dict[str, str]:
    """The environment a `publisher` subprocess needs to share ``rt``'s database and dirs."""
    s = rt.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env.update(
        PUBLISHER_DATABASE_URL=s.database_url, PUBLISHER_SECRET_KEY=s.secret_key,
        PUBLISHER_ADMIN_TOKEN=s.admin_token, PUBLISHER_BASE_URL=s.base_url,
        PUBLISHER_VAR_DIR=str(s.var_dir), PUBLISHER_FEEDS_DIR=str(s.feeds_dir),
        PUBLISHER_SMTP_URL=s.smtp_url, PUBLISHER_LOG_FORMAT="json", PYTHONUNBUFFERED="1",
    )  # fmt: skip
    env.update(extra)
    return env


class Proc:
    """A `publisher` subprocess whose JSON log lines are collected as they come."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.args = args
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "publisher", *args], env=env, cwd=cwd,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))
                if line.startswith("{"):
                    with suppress(json.JSONDecodeError):
                        self.events.append(json.loads(line))

    def named(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e.get("event") == name]

    def wait_for(self, name: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.named(name)
            if found:
                return found[0]
            if self.popen.poll() is not None:
                time.sleep(0.2)
                raise AssertionError(
                    f"{self.args} exited {self.popen.returncode}:\n{self.output()}"
                )
            time.sleep(0.05)
        raise AssertionError(f"no {name!r} from {self.args} in {timeout}s:\n{self.output()}")

    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines[-60:])

    def signal(self, sig: signal.Signals) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def wait(self, timeout: float = 20.0) -> int:
        code = self.popen.wait(timeout)
        self._reader.join(timeout=2)
        return code

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(10)


@contextmanager
def processes() -> Iterator[Callable[..., Proc]]:
    """Start `publisher` subprocesses with ``start(args, env)``; all are killed at the end."""
    started: list[Proc] = []

    def start(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> Proc:
        proc = Proc(args, env, cwd)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.stop()


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
