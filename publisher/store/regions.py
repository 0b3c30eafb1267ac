"""Mirroring the shipped M49 tree into the regions table, keeping operators' overrides."""

from __future__ import annotations

from sqlmodel import Session, select

from publisher.models import RegionRow
from publisher.regions.tree import RegionTree


def sync_regions(session: Session, *, tree: RegionTree) -> int:
    """Insert or refresh every region of the tree; returns how many rows were added."""
    known = {row.slug: row for row in session.exec(select(RegionRow))}
    added = 0
    for region in tree:
        row = known.get(region.slug)
        if row is None:
            session.add(
                RegionRow(
                    slug=region.slug,
                    m49=region.m49,
                    parent=region.parent,
                    level=region.level,
                    name_en=region.name_en,
                    name_es=region.name_es,
                )
            )
            added += 1
        else:
            row.m49, row.parent, row.level = region.m49, region.parent, region.level
            row.name_en, row.name_es = region.name_en, region.name_es
    session.flush()
    return added
