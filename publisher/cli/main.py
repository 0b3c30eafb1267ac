"""Entry point: `publisher` and `python -m publisher`."""

from __future__ import annotations

import sys

import typer

import publisher.cli.bounces as bounce_cli
from publisher.cli import dbcmd, demo, digests, feeds, items, regions, serve, service, subscribers
from publisher.cli import send as _send  # noqa: F401  (adds `digests send` and `digests status`)
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
app.add_typer(digests.app, name="digests")
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("scheduler")(service.scheduler)
app.command("worker")(service.worker)
serve.SERVICES.append(service.serve_background)  # serve runs the scheduler (and delivery) too
app.add_typer(bounce_cli.app, name="bounces")
app.command("inbound")(bounce_cli.inbound)
serve.SERVICES.append(bounce_cli.serve_background)  # and the bounce receiver, IMAP and applier


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a PublisherError ends it with one line on stderr and status 1.

    Typer (standalone mode) reports usage errors itself and exits 2.
    """
    try:
        app(args=argv)
    except PublisherError as e:
        print(f"publisher: {e}", file=sys.stderr)
        sys.exit(1)
