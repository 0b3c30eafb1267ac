"""Entry point: `publisher` and `python -m publisher`."""

from __future__ import annotations

import sys

import typer

from publisher.cli import (
    bounces,
    dbcmd,
    demo,
    digests,
    feeds,
    items,
    regions,
    send,
    serve,
    service,
    sources,
    subscribers,
    users,
)
from publisher.errors import PublisherError

app = typer.Typer(
    name="publisher",
    help="Regional news items, per-region feeds and weekly email digests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(dbcmd.app, name="db")
app.add_typer(items.app, name="items")
app.add_typer(regions.app, name="regions")
app.add_typer(feeds.app, name="feeds")
app.add_typer(subscribers.app, name="subscribers")
digests.app.command("send")(send.send)
digests.app.command("status")(send.status)
app.add_typer(digests.app, name="digests")
app.add_typer(sources.app, name="sources")
app.add_typer(users.app, name="users")
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("scheduler")(service.scheduler)
app.command("worker")(service.worker)
app.add_typer(bounces.app, name="bounces")
app.command("inbound")(bounces.inbound)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a PublisherError ends it with one line on stderr and status 1.

    Typer (standalone mode) reports usage errors itself and exits 2.
    """
    try:
        app(args=argv)
    except PublisherError as e:
        print(f"publisher: {e}", file=sys.stderr)
        sys.exit(1)
