"""`publisher db ...`: schema migrations."""

from __future__ import annotations

import typer

from publisher.cli.context import out, runtime

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Apply every pending migration (Alembic) and load the M49 region tree."""
    rt = runtime(ctx)
    rt.migrate()
    out.print(f"database is current ({rt.engine.url.render_as_string(hide_password=True)})")
