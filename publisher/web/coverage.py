"""COVERAGE: the subtree of regions readers can follow, and the nested form that offers all of it.

Every region of the subtree is offered whether or not it has items yet, grouped under its parent
in <details> elements (no JavaScript); the groups on the way to a checked region start open.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from publisher.errors import ConfigError, UnknownRegionError
from publisher.regions.tree import RegionTree


@dataclass(frozen=True, slots=True)
class FormNode:
    """One region offered by a form, with the regions inside it (its group)."""

    slug: str
    name: str
    children: tuple[FormNode, ...]
    open: bool


def coverage_root(tree: RegionTree, coverage: str) -> str:
    """The canonical slug of COVERAGE, or ConfigError naming the bad value."""
    try:
        return tree.normalize(coverage)
    except UnknownRegionError:
        raise ConfigError(
            f"COVERAGE {coverage!r} is not a region; use a slug like world or americas"
        ) from None


def covered(tree: RegionTree, coverage: str) -> frozenset[str]:
    """Every slug readers may follow: the COVERAGE region and all regions inside it."""
    root = coverage_root(tree, coverage)
    return tree.descendants(root) | {root}


def form_tree(tree: RegionTree, coverage: str, *, checked: Collection[str]) -> FormNode:
    """The COVERAGE region as a nested form tree, groups open on the way to ``checked``."""
    root = coverage_root(tree, coverage)
    opened = {a for slug in checked if slug in tree for a in tree.ancestors(slug)}

    def node(slug: str) -> FormNode:
        kids = tuple(node(c.slug) for c in tree.children(slug))
        return FormNode(slug, tree.get(slug).name_en, kids, slug in opened)

    return node(root)


def refused(tree: RegionTree, coverage: str, values: Iterable[str]) -> str | None:
    """The first submitted value that is no region readers can follow, or None if all are."""
    allowed = covered(tree, coverage)
    for value in values:
        try:
            slug = tree.normalize(value)
        except UnknownRegionError:
            return value
        if slug not in allowed:
            return value
    return None
