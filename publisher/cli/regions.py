"""`publisher regions ...`: the M49 tree and region inference."""

from __future__ import annotations

import typer
from rich.tree import Tree

from publisher.cli.context import out, runtime

app = typer.Typer(help="The UN M49 region tree.", no_args_is_help=True)


@app.command("list")
def list_regions(
    ctx: typer.Context,
    countries: bool = typer.Option(True, help="Include countries and territories."),
) -> None:
    """Print the tree: slug, M49 code and English and Spanish names."""
    tree = runtime(ctx).tree
    nodes: dict[str, Tree] = {}
    root: Tree | None = None
    for region in tree:
        if region.level == "country" and not countries:
            continue
        label = f"{region.slug}  [dim]{region.m49}[/]  {region.name_en} / {region.name_es}"
        node = Tree(label) if region.parent is None else nodes[region.parent].add(label)
        nodes[region.slug] = node
        root = root or node
    if root is not None:
        out.print(root)


@app.command("infer")
def infer(
    ctx: typer.Context,
    text: str = typer.Argument(..., help="A title, or a title and summary."),
    summary: str = typer.Option("", help="Summary text, weighed below the title."),
) -> None:
    """Print the region slugs inferred from TEXT, one per line."""
    for slug in runtime(ctx).inferrer.infer(text, summary):
        out.print(slug)
