"""`publisher users ...`: console accounts (Argon2id passwords, audited like console changes)."""

from __future__ import annotations

import getpass
import sys

import typer
from rich.table import Table

from publisher.cli.context import fail, out, ready
from publisher.errors import InputError
from publisher.pipeline import accounts
from publisher.store.users import list_users

app = typer.Typer(help="Console accounts (editors and administrators).", no_args_is_help=True)


def _actor() -> str:
    """Who the audit log names for a command-line change: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _read_password() -> str:
    """Prompted twice on a terminal; otherwise the first line of stdin (without its line end)."""
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Repeat it: ") != first:
            fail("the two passwords differ")
        return first
    line = sys.stdin.readline(accounts.MAX_PASSWORD + 3)
    if not line:
        fail("no password: give it as the first line of standard input")
    return line.removesuffix("\n").removesuffix("\r")


@app.command("add")
def add(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="The person's email address (their login)."),
    role: str = typer.Option(..., "--role", help="editor or admin."),
) -> None:
    """Add an account; the password is the first line of stdin, or prompted for."""
    rt = ready(ctx)
    try:
        accounts.check_role(role)
        password = accounts.check_password(_read_password())
        with rt.session() as session:
            user = accounts.add_user(
                session, email=email, role=role, password=password, actor=_actor(), now=rt.now()
            )
    except InputError as e:
        fail(e.reason)
    out.print(f"added {user.role} {user.email}", markup=False)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List accounts: email, role, created, password changed."""
    rt = ready(ctx)
    with rt.session() as session:
        rows = [
            (u.email, u.role, u.created.isoformat(timespec="seconds"),
             u.password_changed.isoformat(timespec="seconds"))
            for u in list_users(session)
        ]  # fmt: skip
    if not sys.stdout.isatty():
        for row in rows:
            print("\t".join(row))
        return
    table = Table("email", "role", "created", "password changed")
    for row in rows:
        table.add_row(*row)
    out.print(table)


@app.command("remove")
def remove(
    ctx: typer.Context, email: str = typer.Argument(..., help="The account's email address.")
) -> None:
    """Remove an account; its console sessions end at once."""
    rt = ready(ctx)
    try:
        with rt.session() as session:
            accounts.remove_user(session, email=email, actor=_actor(), now=rt.now())
    except InputError as e:
        fail(e.reason)
    out.print(f"removed {email.strip()}", markup=False)


@app.command("password")
def password(
    ctx: typer.Context, email: str = typer.Argument(..., help="The account's email address.")
) -> None:
    """Set a new password (first line of stdin, or prompted); the account's sessions end."""
    rt = ready(ctx)
    try:
        new = accounts.check_password(_read_password())
        with rt.session() as session:
            accounts.set_password(session, email=email, password=new, actor=_actor(), now=rt.now())
    except InputError as e:
        fail(e.reason)
    out.print(f"changed the password of {email.strip()}", markup=False)
