"""Building the feed family from the store: collect entries, then write through a writer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path

from sqlmodel import Session

from publisher.models import utcnow
from publisher.regions.tree import RegionTree
from publisher.settings import Settings
from publisher.store.items import item_rows, newest_per_region_ids, tags_of
from publisher.syndication import (
    BuildReport,
    DirectoryWriter,
    FeedChannel,
    FeedEntry,
    FeedWriter,
    build_feeds,
)
from publisher.syndication.websub import changed_topics, notify_hub


def feed_entries(
    session: Session, *, limit: int | None = None, now: datetime | None = None
) -> list[FeedEntry]:
    """Items visible at ``now`` as feed entries: all, or only those a feed of ``limit`` shows."""
    moment = now or utcnow()
    ids = None if limit is None else newest_per_region_ids(session, limit=limit, visible_by=moment)
    tags = tags_of(session, item_ids=ids)
    return [
        FeedEntry(
            id=item_id,
            guid=guid,
            title=title,
            summary=summary,
            link=link,
            published=published,
            updated=updated,
            regions=tuple(tags.get(item_id, ())),
            lang=lang,
            image_url=image_url,
            image_alt=image_alt,
        )
        for item_id, guid, title, summary, link, published, updated, lang, image_url, image_alt in (
            item_rows(session, item_ids=ids, visible_by=moment)
        )
    ]


def channel_factory(settings: Settings, tree: RegionTree) -> Callable[[str], FeedChannel]:
    """A function giving each region's channel metadata from the settings."""
    name, email = parseaddr(settings.from_)

    def channel_for(slug: str) -> FeedChannel:
        if slug == "all":
            label, about = "All regions", "every region"
        else:
            label = tree.get(slug).name_en
            about = label
        return FeedChannel(
            slug=slug,
            title=f"{settings.site_title}: {label}",
            description=f"News items about {about} from {settings.site_title}.",
            base_url=settings.base_url,
            author_name=name or settings.site_title,
            author_email=email or None,
            hub_url=settings.websub_hub_url or None,
        )

    return channel_for


def build_store_feeds(
    session: Session,
    *,
    settings: Settings,
    tree: RegionTree,
    writer: FeedWriter | None = None,
    out_dir: Path | None = None,
    now: datetime | None = None,
) -> BuildReport:
    """Write every region's RSS, Atom and JSON feed, all.*, and index.opml (embargoed: left out).

    Built into FEEDS_DIR (the served files) with WEBSUB_HUB_URL set, the changed feeds are
    announced to the hub.
    """
    target = writer or DirectoryWriter(out_dir or settings.feeds_dir)
    report = build_feeds(
        feed_entries(session, limit=settings.feed_limit, now=now),
        channel_for=channel_factory(settings, tree),
        related=tree.related,
        slugs=[r.slug for r in tree],
        category_names={r.slug: r.name_en for r in tree},
        writer=target,
        limit=settings.feed_limit,
    )
    served = writer is None and out_dir in (None, settings.feeds_dir)
    if served and settings.websub_hub_url:
        topics = changed_topics(settings.base_url, report.changed)
        if topics:
            notify_hub(settings.websub_hub_url, topics)
    return report
