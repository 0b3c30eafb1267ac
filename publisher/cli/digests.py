"""`publisher digests ...`: the group of digest commands (preview here; send and status join it).

Commands of the group that live in other modules (``cli/send.py``) are added to this ``app``
explicitly in ``publisher.cli.main``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from publisher.cli.context import err, fail, out, ready
from publisher.pipeline.digests import next_week, preview, preview_message

app = typer.Typer(help="Weekly email digests.", no_args_is_help=True)

FORMATS = ("html", "text", "eml")


@app.command("preview")
def preview_(
    ctx: typer.Context,
    region: str = typer.Option(..., "--region", help="Region slug."),
    week: str | None = typer.Option(
        None, "--week", help="ISO week, e.g. 2026-W48 (default: the next digest)."
    ),
    fmt: str = typer.Option("html", "--format", help="html, text or eml."),
    out_file: Path | None = typer.Option(None, "--out", help="Write here instead of stdout."),
    locale: str | None = typer.Option(
        None, "--locale", help="Language of the copy (en, es, pt; default DEFAULT_LOCALE)."
    ),
) -> None:
    """Render a region's digest without sending or storing it."""
    if fmt not in FORMATS:
        fail(f"unknown --format {fmt!r}; use html, text or eml")
    rt = ready(ctx)
    slug = rt.tree.normalize(region)
    if locale is not None and rt.settings.pick_locale(locale) != locale.split("-")[0].lower():
        fail(f"unknown --locale {locale!r}; use one of {', '.join(rt.settings.locale_list)}")
    with rt.session() as session:
        chosen = week or next_week(session, region=slug, settings=rt.settings, now=rt.now())
        result = preview(
            session, region=slug, week=chosen, settings=rt.settings, tree=rt.tree, locale=locale
        )
    if fmt == "eml":
        body = preview_message(result, settings=rt.settings, tree=rt.tree, now=rt.now())
    else:
        body = (result.html if fmt == "html" else result.text).encode("utf-8")
    note = f"{result.subject}: {len(result.item_ids)} items"
    if result.skipped:
        note = f"{slug} has no items in {chosen}: no digest would be sent"
    if out_file is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        err.print(note, markup=False)
        return
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_bytes(body)
    out.print(f"{note}; written to {out_file}", markup=False)
