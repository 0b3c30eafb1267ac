"""`publisher bounces ...` and `publisher inbound`: reports of bounces and complaints."""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from publisher.cli.context import fail, out, ready
from publisher.runtime import Runtime

if TYPE_CHECKING:
    from publisher.bounces.inbound import InboundService

app = typer.Typer(help="Bounce and complaint reports.", no_args_is_help=True)


def _clean(value: str) -> str:
    """One cell: no control or format characters (tabs, line breaks, bidi overrides)."""
    return "".join(c for c in value if unicodedata.category(c) not in ("Cc", "Cf"))


@app.command("list")
def list_(
    ctx: typer.Context,
    since: str | None = typer.Option(None, "--since", help="Only reports received since DATE."),
) -> None:
    """Reports, newest first: received, source, state, kind, address, status, detail."""
    from publisher.store.bounces import list_reports

    start: datetime | None = None
    if since is not None:
        try:
            start = datetime.combine(date.fromisoformat(since), datetime.min.time(), UTC)
        except ValueError:
            fail(f"--since must be a date like 2026-11-01, not {since!r}")
    rt = ready(ctx)
    with rt.session() as session:
        lines = list_reports(session, since=start)
    rows = [
        [r.received.isoformat(timespec="seconds"), r.source, r.state, r.kind, r.email, r.status,
         r.detail]
        for r in lines
    ]  # fmt: skip
    if not out.is_terminal:
        for row in rows:
            print("\t".join(_clean(cell) for cell in row))
        return
    table = Table("received", "source", "state", "kind", "address", "status", "detail")
    for row in rows:
        table.add_row(*(_clean(cell) for cell in row))
    out.print(table)


@app.command("apply")
def apply_(ctx: typer.Context) -> None:
    """Apply stored reports that are still pending (the receiver does this by itself)."""
    from publisher.bounces.policy import sweep

    done = sweep(ready(ctx), limit=1_000_000)
    for outcome, n in sorted(done.items(), key=lambda kv: (kv[0].state, kv[0].kind)):
        out.print(f"{outcome.state}\t{outcome.kind or '-'}\t{n}")


def serve_background(rt: Runtime) -> Callable[[threading.Event], None]:
    """`publisher serve`'s part for reports: the receiver on INBOUND_PORT, IMAP_URL, applying."""
    from publisher.bounces.inbound import InboundService

    service = InboundService(rt, port=rt.settings.inbound_port)
    _count(rt, service)
    return service.run


def _count(rt: Runtime, service: InboundService) -> None:
    """Count the service's outcomes in ``publisher_bounce_reports_total{state,kind}``."""
    from publisher.service.bounce_metrics import count_report

    service.on_outcome = lambda o, n: count_report(rt, state=o.state, kind=o.kind, n=n)


def inbound(
    ctx: typer.Context,
    port: int | None = typer.Option(
        None, "--port", min=0, max=65535, help="SMTP port to receive on (default INBOUND_PORT)."
    ),
    host: str | None = typer.Option(None, "--host", help="Address to listen on (INBOUND_HOST)."),
) -> None:
    """Receive bounce and complaint reports (SMTP on INBOUND_PORT, IMAP_URL), store, apply."""
    from publisher.bounces.inbound import InboundService
    from publisher.cli.service import _prepare, on_signals

    rt = _prepare(ctx)
    chosen = rt.settings.inbound_port if port is None else port
    if not chosen and not rt.settings.imap_url:
        fail("nothing to receive on: set PUBLISHER_INBOUND_PORT (or --port) or PUBLISHER_IMAP_URL")
    service = InboundService(rt, port=chosen, host=host)
    _count(rt, service)
    stop = threading.Event()
    with on_signals(stop.set):
        service.run(stop)
