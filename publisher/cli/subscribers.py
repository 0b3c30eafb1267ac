"""`publisher subscribers ...`: add, import, list, export, erase email subscribers, set a zone."""

from __future__ import annotations

import json
import sys

import typer

from publisher.cli.context import err, fail, out, ready
from publisher.errors import InputError
from publisher.models import SubscriberStatus
from publisher.pipeline.subscribers import (
    add_subscriber,
    erase_subscriber,
    export_subscriber,
    import_subscribers,
    queue_confirmations,
    send_confirmations,
    set_subscriber_timezone,
)
from publisher.runtime import Runtime
from publisher.store.subscribers import list_subscribers, regions_of

app = typer.Typer(help="Email subscribers.", no_args_is_help=True)

_PAGE = 1_000


def _confirm(rt: Runtime) -> None:
    """Deliver the queued double opt-in emails before the command exits, and say how it went."""
    # Links must verify in `publisher serve`, which signs with the same local key when unset.
    rt.settings = rt.settings.with_local_secret()
    sent, problems = send_confirmations(rt)
    for reason in problems:
        err.print(reason, markup=False)
    out.print(f"confirmation emails sent: {sent}")


@app.command("add")
def add(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="The address."),
    region: list[str] = typer.Option(..., "--region", help="Region slug; repeat for several."),
    confirmed: bool = typer.Option(False, "--confirmed", help="Active now, no confirmation."),
    locale: str = typer.Option(
        "en", "--locale", help="Language of their emails (en, es, pt; es-CL counts as es)."
    ),
    send: bool = typer.Option(True, "--send/--no-send", help="Email the confirmation link."),
) -> None:
    """Add a subscriber (or regions to one); without --confirmed they get a confirmation email."""
    rt = ready(ctx)
    with rt.session() as session:
        sub, created = add_subscriber(
            session, email=email, regions=region, confirmed=confirmed, locale=locale,
            tree=rt.tree, now=rt.now(),
        )  # fmt: skip
        assert sub.id is not None
        follows = " ".join(regions_of(session, subscriber_id=sub.id))
        sid, address, status = sub.id, sub.email, sub.status
        queued = send and created and status == SubscriberStatus.pending
        if queued:
            queue_confirmations(session, subscriber_ids=[sid], now=rt.now())
    verb = "added" if created else "updated"
    out.print(f"{verb} subscriber {sid} {address} ({status}) [{follows}]", markup=False)
    if queued:
        _confirm(rt)


@app.command("import")
def import_(
    ctx: typer.Context,
    file: str = typer.Argument(..., help="CSV with columns email, regions[, status, locale]."),
    send: bool = typer.Option(True, "--send/--no-send", help="Email new pending subscribers."),
) -> None:
    """Import subscribers; bad rows are reported as FILE:LINE: reason and the rest are kept."""
    rt = ready(ctx)
    with rt.session() as session:
        report = import_subscribers(session, path=file, tree=rt.tree, now=rt.now())
        if send:
            queue_confirmations(session, subscriber_ids=report.pending_ids, now=rt.now())
    for e in report.errors:
        err.print(str(e), markup=False)
    out.print(
        f"added {report.added}, updated {report.updated}, already present {report.unchanged}, "
        f"skipped {len(report.errors)}"
    )
    if send and report.pending_ids:
        _confirm(rt)
    if report.errors:
        raise typer.Exit(1)


@app.command("list")
def list_(
    ctx: typer.Context,
    region: str | None = typer.Option(None, "--region", help="Only followers of this region."),
    status: str | None = typer.Option(
        None, "--status", help="pending, active, unsubscribed, bounced."
    ),
) -> None:
    """List subscribers by id: id, address, status, regions (tab-separated)."""
    if status is not None and status not in SubscriberStatus.__members__:
        fail(f"unknown --status {status!r}; use {', '.join(SubscriberStatus.__members__)}")
    rt = ready(ctx)
    slug = rt.tree.normalize(region) if region else None
    after, shown = 0, 0
    while True:
        with rt.session() as session:
            page = list_subscribers(
                session, region=slug, status=status, after_id=after, limit=_PAGE
            )
            rows = [
                (s.id or 0, s.email, s.status, regions_of(session, subscriber_id=s.id or 0))
                for s in page
            ]
        sys.stdout.writelines(f"{i}\t{a}\t{st}\t{' '.join(f)}\n" for i, a, st, f in rows)
        shown += len(rows)
        if len(rows) < _PAGE:
            break
        after = rows[-1][0]
    err.print(f"{shown} subscribers", markup=False)


@app.command("export")
def export(ctx: typer.Context, email: str = typer.Argument(...)) -> None:
    """Print everything stored about one person as JSON (their data access request)."""
    rt = ready(ctx)
    with rt.session() as session:
        data = export_subscriber(session, email=email)
    if data is None:
        fail(f"no such subscriber: {email}")
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@app.command("erase")
def erase(ctx: typer.Context, email: str = typer.Argument(...)) -> None:
    """Delete a person's data; a hashed entry keeps imports from re-adding them."""
    rt = ready(ctx)
    with rt.session() as session:
        found = erase_subscriber(session, email=email, now=rt.now())
    if not found:
        fail(f"no such subscriber: {email}")
    out.print(
        f"erased {email}; a hashed suppression entry keeps it from being re-added", markup=False
    )


@app.command("timezone")
def timezone(
    ctx: typer.Context,
    email: str = typer.Argument(...),
    zone: str = typer.Argument(
        ..., help="An IANA time zone (America/Guatemala), or 'auto': follow their regions."
    ),
) -> None:
    """Set the time zone a reader's weekly edition follows (DIGEST_DAY at DIGEST_TIME there)."""
    rt = ready(ctx)
    try:
        with rt.session() as session:
            found = set_subscriber_timezone(session, email=email, zone=zone)
            shown = None if found is None else (found[0].email, found[1], found[0].timezone_chosen)
    except InputError as e:
        fail(e.reason)
    if shown is None:
        fail(f"no such subscriber: {email}")
    address, stored, chosen = shown
    where = stored or f"{rt.settings.timezone} (the TIMEZONE setting)"
    how = "chosen" if chosen else "from their regions"
    out.print(f"{address}: time zone {where}, {how}", markup=False)
