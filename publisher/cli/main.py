"""Entry point: `publisher` and `python -m publisher`."""

from __future__ import annotations

import sys

import click
import typer

from publisher.cli import dbcmd, demo, feeds, items, regions
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
app.command("demo")(demo.demo)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a PublisherError ends it with one line on stderr and status 1."""
    try:
        code = app(args=argv, standalone_mode=False)
    except PublisherError as e:
        print(f"publisher: {e}", file=sys.stderr)
        sys.exit(1)
    except click.exceptions.Abort:
        print("publisher: aborted", file=sys.stderr)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
