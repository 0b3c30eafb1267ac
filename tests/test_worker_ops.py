"""Observability: /healthz (database and SMTP reachable), /metrics, and one-line structured logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from publisher.delivery.embedded import free_port
from publisher.logs import configure_logging, event
from publisher.pipeline.editions import fire_editions
from publisher.runtime import Runtime
from publisher.service.metrics import metrics_for
from publisher.web import ops
from tests.conftest import FixedClockRuntime
from tests.delivery_data import add_subscribers
from tests.service_support import add_items_in_week, counting_smtp

REGION = "central-america"


def client_for(rt: Runtime) -> TestClient:
    app = FastAPI()
    app.state.web = SimpleNamespace(runtime=rt)
    app.include_router(ops.router)
    return TestClient(app, client=("127.0.0.1", 50000))


@pytest.fixture
def smtp_url() -> Iterator[str]:
    with counting_smtp() as (_, url):
        yield url


def test_healthz_is_200_when_database_and_smtp_answer(
    runtime: FixedClockRuntime, smtp_url: str
) -> None:
    runtime.settings = runtime.settings.model_copy(update={"smtp_url": smtp_url})
    answer = client_for(runtime).get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "database": "ok", "smtp": "ok"}


def test_healthz_counts_the_embedded_server_as_reachable(runtime: FixedClockRuntime) -> None:
    assert client_for(runtime).get("/healthz").json()["smtp"] == "ok"


def test_healthz_is_503_naming_what_is_down(runtime: FixedClockRuntime) -> None:
    closed = free_port()
    runtime.settings = runtime.settings.model_copy(
        update={"smtp_url": f"smtp://127.0.0.1:{closed}?starttls=never"}
    )
    answer = client_for(runtime).get("/healthz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "failing", "database": "ok", "smtp": "failing"}
    nobody = f"postgresql+psycopg://postgres@127.0.0.1:{closed}/gone"
    gone = Runtime(runtime.settings.model_copy(update={"database_url": nobody, "smtp_url": ""}))
    body = client_for(gone).get("/healthz").json()
    assert body == {"status": "failing", "database": "failing", "smtp": "ok"}


def test_metrics_expose_process_counters_and_the_ledger(runtime: FixedClockRuntime) -> None:
    add_items_in_week(runtime, "2026-W48", REGION)
    add_subscribers(runtime, 3)
    fire_editions(runtime, now=runtime.now(), zone=None, early=True, runner="t")
    metrics = metrics_for(runtime)
    assert metrics_for(runtime) is metrics  # one registry per runtime (serve shares it)
    metrics.messages.labels(region=REGION, outcome="sent").inc(2)
    metrics.leader.set(1)
    text = client_for(runtime).get("/metrics").text
    assert 'publisher_messages_total{outcome="sent",region="central-america"} 2.0' in text
    assert "publisher_scheduler_leader 1.0" in text
    assert 'publisher_ledger_messages{region="central-america",state="pending"} 3.0' in text
    for name in ("publisher_send_seconds", "publisher_feed_builds_total", "publisher_jobs_total"):
        assert f"# TYPE {name.removesuffix('_total')}" in text


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_logs_are_one_line_per_event(fmt: str) -> None:
    stream = io.StringIO()
    configure_logging(fmt, stream=stream)  # type: ignore[arg-type]
    log = logging.getLogger("publisher.test")
    try:
        event(log, "digest.queued", region=REGION, week="2026-W47", queued=3, note="two words")
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            log.exception("job failed for %s", REGION)
    finally:
        configure_logging("text")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    if fmt == "json":
        first, second = (json.loads(line) for line in lines)
        assert first["event"] == "digest.queued" and first["queued"] == 3
        assert first["level"] == "info" and first["logger"] == "publisher.test"
        assert second["event"] == f"job failed for {REGION}" and "boom" in second["exc"]
    else:
        assert lines[0].endswith(
            f'digest.queued region={REGION} week=2026-W47 queued=3 note="two words"'
        )
        assert 'exc="Traceback' in lines[1] and "\\nValueError: boom\\nsecond line" in lines[1]
