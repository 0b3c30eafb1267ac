"""`publisher inbound` as its own process: a SIGKILL between storing a report (the relay got its
250) and applying it loses nothing; `publisher bounces list` prints clean tab-separated lines."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlmodel import select

from publisher.delivery.embedded import free_port
from publisher.models import BounceEvent, BounceReport
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.store.bounces import list_reports
from tests.bounce_support import (
    BOUNCE_ADDRESS,
    keep_report,
    report,
    send_digest,
    smtp_report,
    status,
)
from tests.conftest import FixedClockRuntime
from tests.service_support import ROOT, processes, service_env, wait_until


def _states(rt: Runtime) -> list[str]:
    with rt.session() as session:
        return [r.state for r in session.exec(select(BounceReport))]


def _events(rt: Runtime) -> int:
    with rt.session() as session:
        return len(list(session.exec(select(BounceEvent))))


@pytest.mark.postgres
def test_a_kill_between_receipt_and_apply_loses_nothing(
    pg_url: str, make_settings: Callable[..., Settings]
) -> None:
    rt = FixedClockRuntime(make_settings(database_url=pg_url, bounce_address=BOUNCE_ADDRESS))
    rt.migrate()
    sent = send_digest(rt, 2)
    (sub_id, email), (other_id, _) = sent.readers
    dsn = report("postfix_hard.eml", verp=sent.senders[email], rcpt=email)
    port = free_port()
    env = service_env(rt, PUBLISHER_BOUNCE_ADDRESS=BOUNCE_ADDRESS, PUBLISHER_INBOUND_PORT=str(port))
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with processes() as start, psycopg.connect(plain) as blocker:
        # The reader's row is locked, so the receiver can store the report but not apply it.
        blocker.execute("SELECT id FROM subscribers WHERE id = %s FOR UPDATE", (sub_id,))
        first = start(["inbound"], env)
        first.wait_for("inbound.listening")
        assert smtp_report(port, dsn, sent.senders[email])[0] == 250
        assert _states(rt) == ["pending"]

        def applier_waits() -> bool:
            row = blocker.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            ).fetchone()
            return bool(row and row[0] == 1)

        wait_until(applier_waits, 20, "the applier to wait for the reader's row")
        first.popen.kill()
        first.wait()
        blocker.rollback()
        assert _states(rt) == ["pending"] and _events(rt) == 0
        assert status(rt, sub_id) == "active"

        second = start(["inbound"], env | {"PUBLISHER_INBOUND_PORT": str(free_port())})
        applied = second.wait_for("bounces.applied")
        assert (applied["state"], applied["kind"], applied["count"]) == ("applied", "hard", 1)
    assert _states(rt) == ["applied"] and _events(rt) == 1
    assert status(rt, sub_id) == "bounced" and status(rt, other_id) == "active"
    rt.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_inbound_with_nothing_to_receive_on_is_one_clear_error(runtime: Runtime) -> None:
    env = service_env(runtime)
    done = subprocess.run(
        [sys.executable, "-m", "publisher", "inbound"], env=env, cwd=ROOT, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "publisher: nothing to receive on: set PUBLISHER_INBOUND_PORT (or --port) or "
        "PUBLISHER_IMAP_URL"
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bounces_list_prints_clean_tab_separated_lines(runtime: Runtime, tmp_path: Path) -> None:
    from tests.bounce_support import with_verp

    with_verp(runtime)
    sent = send_digest(runtime, 1)
    _, email = sent.readers[0]
    keep_report(runtime, report("postfix_hard.eml", verp=sent.senders[email], rcpt=email))
    hostile = report("postfix_hard.eml", verp="bounces@example.org", rcpt="x@example.net")
    hostile = hostile.replace(b"User unknown in virtual mailbox", "\u202eevil\tcell".encode())
    keep_report(runtime, hostile.replace(b"7A1B2C3D4E@relay", b"OTHER@relay"))
    from publisher.bounces.policy import sweep

    sweep(runtime)
    env = service_env(runtime, PUBLISHER_BOUNCE_ADDRESS=BOUNCE_ADDRESS)
    done = subprocess.run(
        [sys.executable, "-m", "publisher", "bounces", "list", "--since", "2026-11-01"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line.split("\t") for line in done.stdout.splitlines()]
    assert len(lines) == 2 and all(len(cells) == 7 for cells in lines)
    assert "\u202e" not in done.stdout
    by_state = {cells[2]: cells for cells in lines}
    assert by_state["applied"][3:6] == ["hard", email, "5.1.1"]
    assert by_state["unmatched"][4] == ""
    with runtime.session() as session:
        assert list_reports(session, since=datetime(2027, 1, 1, tzinfo=UTC)) == []
    bad = subprocess.run(
        [sys.executable, "-m", "publisher", "bounces", "list", "--since", "yesterday"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1 and "--since must be a date" in bad.stderr
