"""`publisher digests ...`: preview, test and rebuild here; send and status in cli/send.py.

Commands of the group that live in other modules (``cli/send.py``) are added to this ``app``
explicitly in ``publisher.cli.main``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from publisher.cli.context import err, fail, out, ready
from publisher.db import is_postgres
from publisher.errors import InputError
from publisher.pipeline.edition_tools import (
    preview_edition,
    preview_message,
    rebuild_week,
    send_test_edition,
)
from publisher.pipeline.outbox import OutboxDeliverer
from publisher.runtime import Runtime

app = typer.Typer(help="Weekly email editions.", no_args_is_help=True)

FORMATS = ("html", "text", "eml")


def _language(rt: Runtime, locale: str | None) -> str:
    if locale is None:
        return rt.settings.default_locale
    if rt.settings.pick_locale(locale) != locale.split("-")[0].lower():
        fail(f"unknown --locale {locale!r}; use one of {', '.join(rt.settings.locale_list)}")
    return locale


@app.command("preview")
def preview_(
    ctx: typer.Context,
    region: list[str] = typer.Option(..., "--region", help="Region slug; repeat for several."),
    week: str | None = typer.Option(
        None, "--week", help="ISO week label, e.g. 2026-W48 (default: the running week)."
    ),
    fmt: str = typer.Option("html", "--format", help="html, text or eml."),
    out_file: Path | None = typer.Option(None, "--out", help="Write here instead of stdout."),
    locale: str | None = typer.Option(
        None, "--locale", help="Language of the copy (en, es, pt; default DEFAULT_LOCALE)."
    ),
) -> None:
    """The edition a new reader of these regions would get now, exactly as a send builds it;
    writes nothing."""
    if fmt not in FORMATS:
        fail(f"unknown --format {fmt!r}; use html, text or eml")
    rt = ready(ctx)
    language = _language(rt, locale)
    try:
        result = preview_edition(rt, region, language, rt.now(), week=week)
    except InputError as e:
        fail(str(e))
    if fmt == "eml":
        body = preview_message(rt, result, now=rt.now())
    else:
        body = (result.html if fmt == "html" else result.text).encode("utf-8")
    names = " ".join(result.regions)
    note = f"{result.subject}: {len(result.item_ids)} items"
    if result.empty:
        note = f"{names} has no items in the window: no email would be sent"
    if out_file is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        err.print(note, markup=False)
        return
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_bytes(body)
    out.print(f"{note}; written to {out_file}", markup=False)


@app.command("test")
def send_test(
    ctx: typer.Context,
    region: list[str] = typer.Option(..., "--region", help="Region slug; repeat for several."),
    to: str = typer.Option(..., "--to", help="Where the test copy goes."),
    locale: str | None = typer.Option(None, "--locale", help="Language of the copy."),
) -> None:
    """Send the preview of these regions to one address as a marked test copy (no ledger row)."""
    rt = ready(ctx)
    if not is_postgres(rt.engine):  # one machine: sign links with serve's var/secret_key
        rt.settings = rt.settings.with_local_secret()
    language = _language(rt, locale)
    try:
        row, result = send_test_edition(rt, region, to.strip(), language, rt.now())
    except InputError as e:
        fail(str(e))
    stats = OutboxDeliverer(rt).drain()
    if not stats.sent:
        fail(f"the test copy (outbox message {row}) is queued but was not delivered yet; "
             "the outbox deliverer retries it")  # fmt: skip
    out.print(f"test copy of {result.subject!r} ({len(result.item_ids)} items) sent to {to}",
              markup=False)  # fmt: skip


@app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    week: str = typer.Option(..., "--week", help="ISO week, e.g. 2026-W48."),
    region: str | None = typer.Option(None, "--region", help="Only readers who follow SLUG."),
) -> None:
    """Re-assemble a week's editions nobody was sent yet (with cutoff now); sent ones stay."""
    rt = ready(ctx)
    if not is_postgres(rt.engine):
        rt.settings = rt.settings.with_local_secret()
    try:
        report = rebuild_week(rt, week=week, now=rt.now(), region=region, runner="cli-rebuild")
    except InputError as e:
        fail(str(e))
    fire = report.fire
    made = f"; {fire.editions} assembled again ({fire.queued} queued)" if fire else ""
    out.print(f"{week}: {report.dropped} editions not sent yet were rebuilt{made}, "
              f"{report.frozen} stay frozen (a message went out)", markup=False)  # fmt: skip
