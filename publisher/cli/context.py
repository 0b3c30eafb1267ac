"""How CLI commands get their Runtime and print results, in one place."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.console import Console

from publisher.runtime import Runtime
from publisher.settings import load_settings

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def runtime(ctx: typer.Context) -> Runtime:
    """The Runtime of this invocation, built from the environment on first use."""
    root = ctx.find_root()
    if root.obj is None:
        root.obj = Runtime(load_settings())
        root.call_on_close(root.obj.close)
    assert isinstance(root.obj, Runtime)
    return root.obj


def ready(ctx: typer.Context) -> Runtime:
    """A Runtime whose database schema is current."""
    rt = runtime(ctx)
    rt.require_schema()
    return rt


def fail(message: str, code: int = 1) -> NoReturn:
    """Stop with a one-line reason on stderr and a non-zero status."""
    print(f"publisher: {message}", file=sys.stderr)
    raise typer.Exit(code)
