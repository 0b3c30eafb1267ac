"""Operations endpoints: GET /healthz (database and SMTP reachable) and GET /metrics (Prometheus).

Included in the app with ``app.include_router(ops.router)``. /healthz answers 200 with "ok" or
"failing" per part, or 503 when one fails, so a load balancer or Docker healthcheck can act on
it; why a part fails goes to the log only, with passwords masked (the answer is public).
/metrics answers loopback and private addresses, or a bearer token (``guards``).
The SMTP check connects, says EHLO (STARTTLS and login as configured) and NOOP, with a short
timeout, and is cached for a few seconds so frequent probes do not hammer the relay. With
SMTP_URL empty the embedded Maildir server is started by each delivery run, so it counts as
reachable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from publisher.delivery.smtp import SmtpConnection
from publisher.delivery.smtp_url import parse_smtp_url
from publisher.runtime import Runtime
from publisher.service.metrics import metrics_for
from publisher.settings import Settings
from publisher.web.guards import may_read_metrics
from publisher.web.masking import mask

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
SMTP_TIMEOUT = 3.0
SMTP_CACHE_SECONDS = 10.0
OK = "ok"
FAILING = "failing"


def _runtime(request: Request) -> Runtime:
    rt = request.app.state.web.runtime
    assert isinstance(rt, Runtime)
    return rt


def check_database(rt: Runtime) -> str:
    """``ok``, or why the database cannot be reached."""
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:
        return f"unreachable: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return OK


def check_smtp(settings: Settings, *, timeout: float = SMTP_TIMEOUT) -> str:
    """``ok``, or why SMTP_URL's server does not answer EHLO and NOOP within ``timeout``."""
    if not settings.smtp_url.strip():
        return OK  # the embedded server: started by each delivery run
    try:
        target = dataclasses.replace(parse_smtp_url(settings.smtp_url), timeout=timeout)
    except Exception as e:
        return f"misconfigured: {e}"
    conn = SmtpConnection(target)
    try:
        conn.open()
        if not conn.healthy():
            return f"{target.describe()} did not answer NOOP"
    except Exception as e:
        return f"{target.describe()} unreachable: {type(e).__name__}: {e}"[:300]
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    return OK


class SmtpProbe:
    """``check_smtp`` remembered for a few seconds (one per app)."""

    def __init__(self, ttl: float = SMTP_CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._at = -1e9
        self._result = OK

    def __call__(self, settings: Settings) -> str:
        with self._lock:
            if time.monotonic() - self._at > self.ttl:
                self._result = check_smtp(settings)
                self._at = time.monotonic()
            return self._result


def _probe(request: Request) -> SmtpProbe:
    state = request.app.state
    probe = getattr(state, "ops_smtp_probe", None)
    if probe is None:
        probe = state.ops_smtp_probe = SmtpProbe()
    assert isinstance(probe, SmtpProbe)
    return probe


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    """200 {"status": "ok", "database": "ok", "smtp": "ok"}, or 503 with "failing" parts."""
    rt = _runtime(request)
    settings = rt.settings
    checks = {"database": check_database(rt), "smtp": _probe(request)(settings)}
    for part, detail in checks.items():
        if detail != OK:
            why = mask(detail, settings.smtp_url, settings.database_url)
            log.warning("healthz: %s failing: %s", part, why)
    healthy = all(v == OK for v in checks.values())
    body = {"status": OK if healthy else FAILING}
    body.update((part, OK if detail == OK else FAILING) for part, detail in checks.items())
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """This process's counters plus the ledger by region and state, in Prometheus text."""
    rt = _runtime(request)
    client = request.client.host if request.client else ""
    settings = getattr(request.app.state.web, "settings", rt.settings)
    if not may_read_metrics(client, request.headers.get("authorization", ""), settings):
        return Response(
            "metrics are for private addresses or a bearer token\n",
            status_code=403,
            media_type="text/plain",
            headers={"www-authenticate": "Bearer"},
        )
    found = metrics_for(rt)
    found.watch_ledger(rt)
    return Response(generate_latest(found.registry), media_type=CONTENT_TYPE_LATEST)
