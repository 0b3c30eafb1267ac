"""`publisher items ...`: import, add and list news items."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

import typer
from rich.table import Table

from publisher.cli.context import err, fail, out, ready
from publisher.errors import InputError
from publisher.intake.records import RawRecord
from publisher.pipeline.intake import Format, ImportReport, import_records, read_source
from publisher.runtime import Runtime
from publisher.store.items import get_item, list_items

app = typer.Typer(help="News items.", no_args_is_help=True)


def import_sources(
    rt: Runtime, sources: list[str], *, fmt: Format | None, regions: tuple[str, ...]
) -> ImportReport:
    """Import each source in its own transaction; a file that cannot be read is one error."""
    total = ImportReport()
    for source in sources:
        try:
            with rt.session() as session:
                report = import_records(
                    session,
                    records=read_source(
                        source, fmt, allow_private=rt.settings.sources_allow_private
                    ),
                    tree=rt.tree,
                    inferrer=rt.inferrer,
                    now=rt.now(),
                    clock=rt.now,
                    forced_regions=regions,
                )
        except InputError as e:
            report = ImportReport(errors=[e if e.source else InputError(e.reason, source=source)])
        total.merge(report)
    return total


@app.command("import")
def import_(
    ctx: typer.Context,
    files: list[str] = typer.Argument(..., help="Files or feed URLs."),
    fmt: Optional[str] = typer.Option(  # noqa: UP045 (typer needs Optional here)
        None, "--format", help="seed, csv, json or feed (default: from the file name)."
    ),
    region: list[str] = typer.Option([], "--region", help="Tag items that name no region."),
) -> None:
    """Import items; bad records are reported as FILE:LINE: reason and skipped."""
    if fmt not in (None, "seed", "csv", "json", "feed"):
        fail(f"unknown --format {fmt!r}; use seed, csv, json or feed")
    rt = ready(ctx)
    forced = tuple(rt.tree.normalize(r) for r in region)
    report = import_sources(rt, files, fmt=fmt, regions=forced)  # type: ignore[arg-type]
    for e in report.errors:
        err.print(str(e), markup=False)
    out.print(
        f"added {report.added}, already present {report.existing}, "
        f"regions inferred for {report.inferred}, skipped {len(report.errors)}"
    )
    if report.errors:
        raise typer.Exit(1)


@app.command("add")
def add(
    ctx: typer.Context,
    title: str = typer.Option(..., "--title"),
    summary: str = typer.Option("", "--summary"),
    link: str = typer.Option(None, "--link"),
    region: list[str] = typer.Option([], "--region", help="Region slug; repeat for several."),
    published: str = typer.Option(None, "--published", help="ISO 8601 time."),
    lang: str = typer.Option(
        None, "--lang", help="Language the item is written in (en, es, pt-BR); else detected."
    ),
    image: str = typer.Option(None, "--image", help="Image URL (http or https)."),
    image_alt: str = typer.Option("", "--image-alt", help="What the image shows."),
) -> None:
    """Add one item; with no --region its regions are inferred from the text."""
    rt = ready(ctx)
    record = RawRecord(
        source="items add", line=1, title=title, summary=summary, link=link,
        published=published, regions=list(region), lang=lang,
        image_url=image, image_alt=image_alt,
    )  # fmt: skip
    with rt.session() as session:
        report = import_records(
            session,
            records=[record],
            tree=rt.tree,
            inferrer=rt.inferrer,
            now=rt.now(),
            clock=rt.now,
        )
    if report.errors:
        fail(report.errors[0].reason)
    if not report.ids:
        out.print("already present (same guid, or same title and summary)")
        return
    with rt.session() as session:
        shown = get_item(session, item_id=report.ids[0])
    tags = " ".join(shown.regions) if shown else ""
    out.print(f"added item {report.ids[0]} [{tags}]", markup=False)


@app.command("list")
def list_(
    ctx: typer.Context,
    region: str = typer.Option(None, "--region", help="Only items that belong in this region."),
    limit: int = typer.Option(50, "--limit", min=1),
) -> None:
    """List items newest first (with a region: as its feed would show them)."""
    rt = ready(ctx)
    scope = rt.tree.related(rt.tree.normalize(region)) if region else None
    with rt.session() as session:
        items = list_items(session, regions=scope, limit=limit)
    table = Table("id", "published", "regions", "title")
    for it in items:
        table.add_row(str(it.id), _day(it.published), " ".join(it.regions), it.title)
    out.print(table)


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")
