"""`publisher sources ...`: upstream feeds polled on a schedule."""

from __future__ import annotations

import sys
from datetime import datetime

import typer
from rich.table import Table

from publisher.cli.context import fail, out, ready
from publisher.errors import InputError, UnknownRegionError
from publisher.links import check_link
from publisher.pipeline.poll_policy import describe_every, parse_every
from publisher.pipeline.sources import poll_sources
from publisher.store.sources import add_source, list_sources, remove_source

app = typer.Typer(help="Upstream feeds polled for items.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="The feed's http(s) URL."),
    region: list[str] = typer.Option(
        [], "--region", help="Regions of every entry (plus any the text names); repeatable."
    ),
    every: str = typer.Option("30m", "--every", help="Interval: 30m, 2h, 1d (1 minute to 7 days)."),
    lang: str = typer.Option("", "--lang", help="Language of the feed's items, e.g. es."),
) -> None:
    """Add a source; it is polled at the scheduler's next round."""
    rt = ready(ctx)
    try:
        link = check_link(url, name="URL")
        seconds = parse_every(every)
        slugs = [rt.tree.normalize(r) for r in region]
        if lang and not (lang.replace("-", "").isalpha() and len(lang) <= 16):
            raise InputError(f"--lang {lang!r} is not a language tag like es or pt-BR")
        if link is None:
            raise InputError("URL is empty")
        with rt.session() as session:
            source = add_source(
                session, url=link, regions=slugs, every=seconds, lang=lang, now=rt.now()
            )
    except (InputError, UnknownRegionError) as e:
        fail(e.reason if isinstance(e, InputError) else str(e))
    out.print(f"added source {source.id}: {link} every {describe_every(seconds)}", markup=False)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List sources: id, status, interval, next poll, last result, regions, URL, last error."""
    rt = ready(ctx)
    with rt.session() as session:
        rows = list_sources(session)
    header = ("id", "status", "every", "next poll", "last result", "regions", "url", "last error")
    lines = [
        (str(s.id), "paused" if s.paused else "active", describe_every(s.every),
         _when(s.next_poll), s.last_result or "-", s.regions or "-", s.url, s.last_error)
        for s in rows
    ]  # fmt: skip
    if not sys.stdout.isatty():
        for line in lines:
            print("\t".join(_one_line(cell) for cell in line))
        return
    table = Table(*header)
    for line in lines:
        table.add_row(*line)
    out.print(table)


@app.command("remove")
def remove(ctx: typer.Context, source_id: int = typer.Argument(..., help="Source id.")) -> None:
    """Stop polling a source; the items it brought in stay."""
    rt = ready(ctx)
    with rt.session() as session:
        if not remove_source(session, source_id=source_id):
            fail(f"no source with id {source_id}")
    out.print(f"removed source {source_id}")


@app.command("poll")
def poll(
    ctx: typer.Context,
    source_id: int = typer.Option(None, "--id", help="Only this source (even a paused one)."),
) -> None:
    """Poll now, once, ignoring schedule and backoff (still a conditional GET)."""
    rt = ready(ctx)
    try:
        reports = poll_sources(rt, source_id=source_id, due_only=False)
    except InputError as e:
        fail(e.reason)
    failed = 0
    for report in reports:
        outcome = report.outcome
        for problem in report.errors:
            print(_one_line(str(problem)), file=sys.stderr)
        if outcome.ok:
            print(f"{report.source_id}\t{report.url}\t{outcome.summary}")
        else:
            failed += 1
            print(f"{report.source_id}\t{report.url}\terror: {_one_line(outcome.error)}",
                  file=sys.stderr)  # fmt: skip
    if failed:
        raise typer.Exit(1)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _one_line(cell: str) -> str:
    """A TSV cell: tabs and line breaks would shift columns, so they become spaces."""
    return " ".join(cell.replace("\t", " ").splitlines())
