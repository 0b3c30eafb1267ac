"""The compose topology without Docker: PostgreSQL, the web app, one scheduler, two workers and
an SMTP server, as real processes. Readers subscribe through the web (double opt-in, confirmation
link taken from the captured email) and through a CLI import; the scheduler comes up after the
zone's weekly fire passed (a missed fire, run once on start), queues the editions, the workers
send them, and every reader gets exactly one copy.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from publisher.delivery.embedded import free_port
from publisher.models import DeliveryState, Digest, SubscriberStatus
from publisher.settings import Settings
from publisher.store.subscribers import add_or_update
from tests.conftest import FixedClockRuntime
from tests.service_support import (
    ROOT,
    add_recent_items,
    count,
    counting_smtp,
    leave_missed_zone_job,
    ledger_states,
    processes,
    service_env,
    wait_until,
)

REGION = "central-america"
WEB_READERS = [f"web{i}@example.org" for i in range(3)]
CSV_READERS = [f"csv{i:02d}@example.org" for i in range(40)]


def healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.postgres
def test_web_scheduler_two_workers_send_one_copy_each(
    pg_url: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    rt = FixedClockRuntime(make_settings(database_url=pg_url))
    rt.migrate()
    now = rt.fixed_now = datetime.now(UTC)
    add_recent_items(rt, REGION, now, n=3)
    with counting_smtp(keep=True) as (server, smtp_url), processes() as start:
        rt.settings = rt.settings.model_copy(update={"smtp_url": smtp_url})
        env = service_env(rt)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        web = start(["serve", "--web-only", "--port", str(port)], env)
        wait_until(lambda: healthy(base) or web.popen.poll() is not None, 40, "the web app")
        assert web.popen.poll() is None, web.output()
        # the workers deliver the outbox too: the web app only writes it
        workers = [start(["worker", "--idle", "0.2"], env) for _ in range(2)]

        # readers through the web: signup, the confirmation email, its link
        for address in WEB_READERS:
            answer = httpx.post(f"{base}/subscribe", data={"email": address, "regions": REGION})
            assert answer.status_code == 200
        wait_until(lambda: len(server.kept()) == len(WEB_READERS), 20, "confirmation emails")
        for _, message in server.kept():
            body = message.get_body(("plain",))
            assert body is not None
            link = re.search(r"/confirm/\S+", body.get_content())
            assert link, body.get_content()
            confirm_url = base + link.group(0).rstrip(".")
            assert httpx.get(confirm_url).status_code == 200  # the page with the button
            assert httpx.post(confirm_url).status_code == 200  # the button

        # readers through the CLI
        csv = tmp_path / "readers.csv"
        csv.write_text(
            "email,regions,status\n" + "".join(f"{a},{REGION},active\n" for a in CSV_READERS)
        )
        imported = subprocess.run(
            [sys.executable, "-m", "publisher", "subscribers", "import", str(csv)],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert imported.returncode == 0, imported.stderr

        # the Monday fire passed while no scheduler ran; it starts now, with two workers
        leave_missed_zone_job(rt, "UTC", now - timedelta(minutes=30))
        scheduler = start(["scheduler", "--no-deliver"], env)
        scheduler.wait_for("editions.fired", 40)
        readers = WEB_READERS + CSV_READERS
        try:
            wait_until(
                lambda: ledger_states(rt)[DeliveryState.sent] == len(readers), 40, "all sent"
            )
        except AssertionError:
            print(ledger_states(rt), scheduler.output(), workers[0].output(), sep="\n----\n")
            raise
        digests = Counter(
            rcpt for rcpt, message in server.kept() if message["List-Unsubscribe"] is not None
        )
        health = httpx.get(f"{base}/healthz").json()
        metrics = httpx.get(f"{base}/metrics").text
        sent_by = [sum(e["sent"] for e in w.named("delivery.drained")) for w in workers]

    assert digests == dict.fromkeys(readers, 1)
    assert ledger_states(rt) == {DeliveryState.sent: len(readers)}
    assert count(rt, Digest) == 1
    assert sum(sent_by) == len(readers)
    assert health == {"status": "ok", "database": "ok", "smtp": "ok"}
    assert f'publisher_ledger_messages{{region="{REGION}",state="sent"}} 43.0' in metrics
    rt.close()


def test_serve_alone_runs_web_scheduler_and_delivery_on_sqlite(
    make_settings: Callable[..., Settings],
) -> None:
    """One machine: `publisher serve` on a SQLite file does it all in one process."""
    rt = FixedClockRuntime(make_settings())
    rt.migrate()
    now = rt.fixed_now = datetime.now(UTC)
    add_recent_items(rt, REGION, now)
    readers = [f"reader{i}@example.org" for i in range(5)]
    with rt.session() as session:
        for address in readers:
            add_or_update(
                session, email=address, regions=[REGION], status=SubscriberStatus.active, now=now
            )
    leave_missed_zone_job(rt, "UTC", now - timedelta(minutes=5))
    with counting_smtp() as (server, smtp_url), processes() as start:
        rt.settings = rt.settings.model_copy(update={"smtp_url": smtp_url})
        port = free_port()
        serve = start(["serve", "--port", str(port)], service_env(rt))
        serve.wait_for("scheduler.leader", 40)
        wait_until(lambda: server.total() == len(readers), 40, "the digest to go out")
        assert healthy(f"http://127.0.0.1:{port}")
        serve.signal(signal.SIGTERM)
        assert serve.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises it after shutting down
        received = server.snapshot()
    assert received == dict.fromkeys(readers, 1)
    assert serve.named("scheduler.stopped")  # the background part stopped with the app
    rt.close()
