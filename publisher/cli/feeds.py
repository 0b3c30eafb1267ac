"""`publisher feeds build`."""

from __future__ import annotations

from pathlib import Path

import typer

from publisher.cli.context import out, ready
from publisher.pipeline.feeds import build_store_feeds

app = typer.Typer(help="RSS, Atom and JSON feeds.", no_args_is_help=True)


@app.command("build")
def build(
    ctx: typer.Context,
    out_dir: Path = typer.Option(None, "--out", help="Folder to write (default FEEDS_DIR)."),
) -> None:
    """Write feeds/{slug}.rss|.atom|.json for every region with items, all.*, index.opml."""
    rt = ready(ctx)
    with rt.session() as session:
        report = build_store_feeds(
            session, settings=rt.settings, tree=rt.tree, out_dir=out_dir, now=rt.now()
        )
    for item_id, reason in report.skipped:
        out.print(f"item {item_id} left out of the feeds: {reason}")
    target = out_dir or rt.settings.feeds_dir
    out.print(
        f"{len(report.per_feed)} feeds, {len(report.files)} files in {target}/ "
        f"({len(report.changed)} changed)"
    )
