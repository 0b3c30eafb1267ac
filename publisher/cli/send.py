"""`publisher digests send` and `publisher digests status` (registered in publisher.cli.main)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from types import TracebackType

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichBar
from rich.table import Table

from publisher.cli.context import err, fail, out, ready
from publisher.db import is_postgres
from publisher.delivery.engine import RunStats
from publisher.digest.windows import parse_week
from publisher.errors import InputError
from publisher.pipeline.edition_tools import STATES as EDITION_STATES
from publisher.pipeline.edition_tools import edition_status
from publisher.pipeline.editions import FireReport
from publisher.pipeline.send import STATES, DigestReport, SendReport, send_digests

OUTCOMES = ("sent", "deferred", "failed", "unknown", "skipped")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class BarProgress:
    """A rich progress bar on stderr, shown only on a terminal."""

    def __init__(self) -> None:
        self.bar = RichBar(
            TextColumn("sending"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[line]}"), TimeRemainingColumn(),
            console=err, transient=True,
        )  # fmt: skip
        self.task = self.bar.add_task("send", total=None, line="")

    def __enter__(self) -> BarProgress:
        self.bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.bar.stop()

    def start(self, total: int) -> None:
        self.bar.update(self.task, total=total)

    def update(self, stats: RunStats) -> None:
        line = " ".join(f"{name} {getattr(stats, name)}" for name in OUTCOMES)
        self.bar.update(self.task, completed=stats.done, line=line)


def _outcomes(stats: RunStats) -> str:
    return ", ".join(f"{name} {getattr(stats, name)}" for name in OUTCOMES)


def _digest_line(r: DigestReport, dry_run: bool) -> str:
    head = f"{r.region} {r.week}"
    if r.status == "skipped":
        return f"{head}: no items that week, no digest"
    states = ", ".join(f"{s} {r.counts[s]}" for s in STATES if r.counts.get(s))
    return f"{head}: {r.recipients} recipients ({r.queued} newly queued): {states or 'none'}"


def _fire_line(f: FireReport) -> str:
    weeks = ", ".join(sorted(f.weeks)) or "no week"
    scope = f"readers of {f.region}" if f.region else "all readers"
    verb = "would be made" if f.dry_run else "made"
    line = (
        f"{weeks} ({scope}{', early' if f.early else ''}): {f.editions} editions {verb} "
        f"({f.editions - f.empty} with items, {f.empty} without: no email), "
        f"{f.already} had theirs already, {f.region_sets} region sets"
    )
    if f.held:
        line += f"; held: {', '.join(sorted(f.held))}"
    if f.waiting:
        line += (
            f"; {f.waiting} readers wait for their own time zone's fire (the week has not "
            f"begun or is still running there: {', '.join(sorted(f.waiting_zones))})"
        )
    return line


def _print_report(report: SendReport) -> None:
    for f in report.fires:
        out.print(_fire_line(f), markup=False)
    for r in report.digests:
        out.print(_digest_line(r, report.dry_run), markup=False)
    if report.recovered:
        out.print(
            f"{report.recovered} messages were in flight when a sender stopped: marked "
            "unknown, not resent (`digests send --resend-unknown` resends them)"
        )
    if report.resent_unknown:
        out.print(f"{report.resent_unknown} unknown messages requeued on request")
    if not report.dry_run:
        out.print(f"this run: {_outcomes(report.run)}", markup=False)


def send(
    ctx: typer.Context,
    region: list[str] = typer.Option([], "--region", help="Region slug; repeat for several."),
    all_regions: bool = typer.Option(False, "--all", help="Every region with active subscribers."),
    week: str | None = typer.Option(
        None, "--week", help="ISO week, e.g. 2026-W48 (default: the week just ended)."
    ),
    early: bool = typer.Option(
        False, "--early", help="Send the running week now; its scheduled fire then sends nothing."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Count the editions and recipients; write and send nothing."
    ),
    resend_unknown: bool = typer.Option(
        False, "--resend-unknown", help="Resend messages whose fate is unknown (may duplicate)."
    ),
) -> None:
    """Assemble, queue and send the week's editions; re-running sends nobody a second copy."""
    if bool(region) == all_regions:
        fail("give --region SLUG (repeatable) or --all")
    if week is not None:
        try:
            parse_week(week)
        except (InputError, ValueError) as e:
            fail(str(e))
    rt = ready(ctx)
    if not is_postgres(rt.engine):  # one machine: sign links with serve's var/secret_key
        rt.settings = rt.settings.with_local_secret()
    stop = threading.Event()
    send = partial(
        send_digests, rt, regions=None if all_regions else region, week=week, early=early,
        dry_run=dry_run, resend_unknown=resend_unknown, stop=stop,
    )  # fmt: skip
    try:
        with stop_on_signals(stop):
            if err.is_terminal and not dry_run:
                with BarProgress() as bar:
                    report = send(progress=bar)
            else:
                report = send()
    except InputError as e:
        fail(str(e))
    _print_report(report)
    if report.run.paused:
        fail(report.run.paused)
    if report.run.stopped:
        fail(
            f"stopped on request; {report.run.released} messages not yet sent were put back: "
            "run the same command again to finish"
        )


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and Ctrl-C set ``stop``: the messages in flight finish, the rest are put back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def status(
    ctx: typer.Context,
    week: str | None = typer.Option(None, "--week", help="Only this ISO week."),
) -> None:
    """Per week, editions by state (no items, pending, sending, sent, deferred, failed, unknown)."""
    if week is not None:
        try:
            parse_week(week)
        except InputError as e:
            fail(str(e))
    rt = ready(ctx)
    weeks = edition_status(rt, week=week)
    if not weeks:
        out.print("no editions yet" + (f" for {week}" if week else ""))
        return
    table = Table("week", "status", "editions", *EDITION_STATES)
    for w in weeks:
        cells = [str(w.counts.get(s, 0)) for s in EDITION_STATES]
        table.add_row(w.week, w.state, str(w.editions), *cells)
    # Piped into a file or another program, rich would squeeze the table into 80 columns.
    (out if out.is_terminal else Console(file=out.file, width=160)).print(table)
