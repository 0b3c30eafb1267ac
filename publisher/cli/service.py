"""`publisher scheduler` and `publisher worker`: the parts of `serve`, separately, for scale-out.

Both stop cleanly on SIGTERM or SIGINT (exit status 0): the worker finishes the messages in
flight and gives back the rows it had not started; the scheduler lets running jobs finish and
releases the leader lock so a standby takes over at once.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import typer

from publisher.cli.context import ready
from publisher.db import is_postgres
from publisher.runtime import Runtime

# The service stack (APScheduler, the delivery engine, prometheus) is imported inside the
# commands, so that every other command starts as fast as before.


@contextmanager
def on_signals(action: Callable[[], None]) -> Iterator[None]:
    """Call ``action`` from a helper thread when SIGTERM or SIGINT arrives.

    The handler only writes a byte to a pipe (no locks in signal context), so it cannot deadlock
    with the main thread whatever that thread holds at the time.
    """
    read_fd, write_fd = os.pipe()

    def watch() -> None:
        if os.read(read_fd, 1) == b"s":
            action()

    watcher = threading.Thread(target=watch, name="signals", daemon=True)
    watcher.start()
    previous = {
        sig: signal.signal(sig, lambda *_: os.write(write_fd, b"s"))
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.write(write_fd, b"q")
        watcher.join(timeout=1)
        os.close(read_fd)
        os.close(write_fd)


def serve_background(rt: Runtime) -> Callable[[threading.Event], None]:
    """`publisher serve`'s background part (``serve.SERVICES``): the scheduler."""
    from publisher.service.scheduler import background

    return background(rt)


def _prepare(ctx: typer.Context) -> Runtime:
    from publisher.logs import configure_logging

    rt = ready(ctx)
    if not is_postgres(rt.engine):  # one machine: share serve's var/secret_key
        rt.settings = rt.settings.with_local_secret()
    rt.settings.secret_keys()  # fail now, in one line, rather than at the first message
    configure_logging(rt.settings.log_format)
    return rt


def _serve_metrics(rt: Runtime, port: int) -> None:
    if port:
        from prometheus_client import start_http_server

        from publisher.service.metrics import metrics_for

        start_http_server(port, registry=metrics_for(rt).registry)


def scheduler(
    ctx: typer.Context,
    deliver: bool = typer.Option(
        True, "--deliver/--no-deliver",
        help="Also send queued messages (leave off when `publisher worker` processes run).",
    ),
    grace_hours: float = typer.Option(
        12.0, "--misfire-grace-hours", min=0.01,
        help="A fire time missed while down still runs when the scheduler is back within this.",
    ),
    retry: float = typer.Option(2.0, "--retry", min=0.1, help="Standby: seconds between tries."),
    metrics_port: int = typer.Option(0, "--metrics-port", help="Serve /metrics on this port."),
) -> None:  # fmt: skip
    """Run the weekly editions per time zone, feeds and housekeeping; one active, others wait."""
    from publisher.service.scheduler import SchedulerOptions, run_scheduler

    rt = _prepare(ctx)
    _serve_metrics(rt, metrics_port)
    stop = threading.Event()
    options = SchedulerOptions(deliver=deliver, grace=timedelta(hours=grace_hours), retry=retry)
    with on_signals(stop.set):
        run_scheduler(rt, stop, options=options)


def worker(
    ctx: typer.Context,
    concurrency: int | None = typer.Option(
        None, "--concurrency", min=1, max=64, help="SMTP connections (default SMTP_CONCURRENCY)."
    ),
    chunk: int | None = typer.Option(
        None, "--chunk", min=1,
        help="Rows claimed at a time (bounds what a crash can leave unknown).",
    ),
    lease: float = typer.Option(
        600.0, "--lease", min=1.0,
        help="Seconds a claim lasts; rows of a worker dead longer are taken over.",
    ),
    idle: float = typer.Option(2.0, "--idle", min=0.05, help="Seconds between polls when idle."),
    once: bool = typer.Option(False, "--once", help="Send what is due now, then exit."),
    metrics_port: int = typer.Option(0, "--metrics-port", help="Serve /metrics on this port."),
) -> None:  # fmt: skip
    """Send queued digest messages; run as many as you like, on any number of machines."""
    from publisher.delivery.engine import EngineConfig
    from publisher.service.worker import Worker, WorkerConfig

    rt = _prepare(ctx)
    _serve_metrics(rt, metrics_port)
    settings = rt.settings
    engine = EngineConfig(
        concurrency=concurrency or settings.smtp_concurrency, rate=settings.smtp_rate,
        chunk_size=chunk or EngineConfig().chunk_size, lease=timedelta(seconds=lease),
    )  # fmt: skip
    w = Worker(rt, config=WorkerConfig(engine=engine, idle=idle))
    with on_signals(w.stop):
        if once:
            w.drain()
        else:
            w.run()
