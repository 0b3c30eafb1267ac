"""Editing and deleting one item (the admin API): the same cleaning and tagging as intake.

An edit passes the merged fields through ``clean_record`` like any import, so the rules live in
one place. The guid never changes. Regions: given ones are normalised; an empty list asks for
inference; not given keeps the tags, unless they were inferred and the text changed, in which
case they are inferred again from the new text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from publisher.errors import InputError, UnknownRegionError
from publisher.intake.records import RawRecord, clean_record
from publisher.regions.infer import RegionInferrer
from publisher.regions.tree import RegionTree
from publisher.store.items import delete_item_row, hold_stamps, item_row, retag, tags_of
from publisher.store.withdrawn import add_tombstone

_UNSET = object()


@dataclass(frozen=True)
class ItemChanges:
    """The fields an edit sets; ``_UNSET`` (the default) leaves a field as it is."""

    title: object = _UNSET
    summary: object = _UNSET
    link: object = _UNSET
    published: object = _UNSET
    regions: object = _UNSET
    lang: object = _UNSET
    image_url: object = _UNSET
    image_alt: object = _UNSET


def update_item(
    session: Session,
    *,
    item_id: int,
    changes: ItemChanges,
    tree: RegionTree,
    inferrer: RegionInferrer,
    now: datetime,
    clock: Callable[[], datetime] | None = None,
) -> bool:
    """Apply ``changes`` to one item; False if there is no such item, InputError if bad.
    ``clock``: read again once the stamp lock is held (see ``import_records``)."""
    item = item_row(session, item_id=item_id)
    if item is None:
        return False

    def pick(name: str, current: object) -> object:
        value = getattr(changes, name)
        return current if value is _UNSET else value

    raw = RawRecord(
        source="api",
        line=1,
        title=pick("title", item.title),
        summary=pick("summary", item.summary),
        link=pick("link", item.link),
        published=pick("published", item.published),
        regions=None,
        guid=item.guid,
        lang=pick("lang", item.lang) or None,  # "" or null: detect it from the text
        image_url=pick("image_url", item.image_url) or None,
        image_alt=pick("image_alt", item.image_alt),
    )
    clean = clean_record(raw)
    text_changed = (clean.title, clean.summary) != (item.title, item.summary)
    regions: tuple[str, ...] | None = None
    inferred = item.regions_inferred
    if changes.regions is not _UNSET:
        given = changes.regions
        if not isinstance(given, list | tuple) or not all(isinstance(s, str) for s in given):
            raise InputError("regions must be a list of slugs")
        if given:
            try:
                regions = tuple(dict.fromkeys(tree.normalize(s) for s in given))
            except UnknownRegionError as e:
                raise InputError(str(e)) from e
            inferred = False
        else:
            regions, inferred = tuple(inferrer.infer(clean.title, clean.summary)), True
    elif item.regions_inferred and text_changed:
        regions = tuple(inferrer.infer(clean.title, clean.summary))

    item.title, item.summary, item.link = clean.title, clean.summary, clean.link
    item.lang = clean.lang
    item.image_url, item.image_alt = clean.image_url, clean.image_alt
    if clean.published is not None:
        item.published = clean.published
    hold_stamps(session)
    if clock is not None:
        now = max(now, clock())
    item.visible_at = visible_after_edit(item.visible_at, item.published, now)
    item.regions_inferred = inferred
    item.updated = now
    session.add(item)
    current = set(tags_of(session, item_ids=[item_id]).get(item_id, []))
    if regions is not None and set(regions) != current:
        retag(session, item_id=item_id, regions=regions)
    session.flush()
    return True


def visible_after_edit(visible_at: datetime, published: datetime, now: datetime) -> datetime:
    """When an edited item is visible: a public item keeps its moment (editions counted it then)
    unless it is moved into the future; an embargoed one lifts at its new time, or now."""
    if visible_at <= now and published <= now:
        return visible_at
    return max(published, now)


def delete_item(session: Session, *, item_id: int, now: datetime) -> bool:
    """Remove one item and its tags, leaving a tombstone if it was ever public; False if none."""
    item = item_row(session, item_id=item_id)
    if item is None:
        return False
    if item.visible_at <= now:
        regions = tags_of(session, item_ids=[item_id]).get(item_id, [])
        add_tombstone(session, item=item, regions=regions, now=now)
    delete_item_row(session, item=item)
    session.flush()
    return True
