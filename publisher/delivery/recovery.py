"""After a crash: which rows a dead worker left behind, and what they become.

A dead worker of this machine that kept a journal (``publisher.delivery.journal``) is settled
from it first: answered rows get their outcome, rows whose final dot went out unanswered become
``unknown``, and rows that never reached the final dot go back to pending. Any other row a dead
worker held (``sending``) may or may not have reached the server, so it becomes ``unknown`` and
is never resent by itself; ``resend_unknown`` is the operator's decision to resend. A worker is
dead when its lease has expired, or, on this machine, when its process is gone: the worker id
carries the host name and pid, so a restarted ``digests send`` need not wait out the lease.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Collection
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from publisher.delivery import journal
from publisher.delivery.ledger import Recipient, RowUpdate
from publisher.delivery.policy import decide
from publisher.models import DeliveryState
from publisher.store import deliveries

log = logging.getLogger(__name__)


def worker_identity() -> str:
    """A fresh id for one sending process: ``host:pid:random`` (fits the 64-character column)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def is_dead_here(worker_id: str) -> bool:
    """Whether ``worker_id`` names a process of this machine that no longer runs."""
    head, sep, _random = worker_id.rpartition(":")
    host, sep_pid, pid = head.rpartition(":")
    if not (sep and sep_pid and pid.isdigit()):
        return False
    return host == socket.gethostname()[:40] and int(pid) != os.getpid() and _process_gone(int(pid))


def dead_local_workers(session: Session, *, now: datetime) -> list[str]:
    """Workers of this machine whose process is gone while their leases still run."""
    return [w for w in deliveries.lease_holders(session, now=now) if w and is_dead_here(w)]


def replay(session: Session, *, worker: str, replay: journal.Replay, now: datetime) -> int:
    """Settle a dead worker's ``sending`` rows by its journal; returns how many became unknown."""
    updates: list[RowUpdate] = []
    bounced: list[int] = []
    unsent: list[int] = []
    for row in deliveries.sending_rows(session, worker_id=worker):
        result = replay.settle(row.id, row.attempts)
        if result is None:
            unsent.append(row.id)
            continue
        update, bounce = decide(Recipient(row, "", ""), result, now=now)
        updates.append(update)
        if bounce:
            bounced.append(row.subscriber_id)
    deliveries.record(session, worker_id=worker, updates=updates, now=now, bounced=bounced)
    deliveries.release(session, worker_id=worker, ids=unsent)
    unknown = sum(u.state is DeliveryState.unknown for u in updates)
    log.info(
        "journal of %s: %d rows recorded (%d unknown), %d back to pending, %d lines ignored",
        worker, len(updates), unknown, len(unsent), replay.ignored,
    )  # fmt: skip
    return unknown


def replay_journals(session: Session, *, root: Path, now: datetime) -> int:
    """Settle the rows of every dead sender of this machine that left a journal under ``root``,
    and delete the journals of dead senders; returns how many rows became unknown."""
    dead = [
        (folder, worker)
        for folder in journal.folders(root)
        if is_dead_here(worker := journal.worker_of(folder)) and not journal.in_use(folder)
    ]  # the others are alive, or of another machine: their journals may still grow
    if not dead:
        return 0
    holders = deliveries.sending_holders(session)
    unknown = 0
    for folder, worker in dead:
        if worker in holders:
            unknown += replay(session, worker=worker, replay=journal.read(folder), now=now)
        journal.remove(folder)  # a failed commit now leaves the rows to the rule below
    return unknown


def recover(
    session: Session,
    *,
    now: datetime,
    dead_workers: Collection[str] = (),
    journal_dir: Path | None = None,
) -> int:
    """Settle what dead workers left: from their journal where one is in ``journal_dir``, else
    every row of a worker whose lease expired or who died becomes unknown; returns how many
    rows became unknown."""
    settled = replay_journals(session, root=journal_dir, now=now) if journal_dir else 0
    return settled + deliveries.recover(session, now=now, dead_workers=dead_workers)
