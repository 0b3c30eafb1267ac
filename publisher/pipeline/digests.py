"""Assembling a region's weekly digest: collect the window's items, decide, render once, freeze.

A digest row is written once per (region, week) and never changed: assembling again returns
it as stored, and when two processes assemble at once the unique constraint picks one and the
other reads it back. A week with no items gets a "skipped" row, so nobody is mailed for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from publisher.digest.assembly import DigestContent, build_content, pick_locale
from publisher.digest.windows import current_week, parse_week, region_timezone, week_window
from publisher.email.message import MessageTemplate, list_id
from publisher.email.outgoing import DigestMail
from publisher.email.placeholders import Placeholders
from publisher.email.render import Branding, EmailRenderer, default_renderer, fill
from publisher.errors import StoreError
from publisher.models import Digest, utcnow
from publisher.regions.tree import RegionTree
from publisher.settings import Settings
from publisher.store.digests import find_digest
from publisher.store.items import list_items
from publisher.store.regions import get_region
from publisher.store.rows import add_unless_taken
from publisher.tokens import Tokens

ASSEMBLED = "assembled"
SKIPPED = "skipped"
PREVIEW_ADDRESS = "reader@example.org"


@dataclass(frozen=True, slots=True)
class DigestPreview:
    """A digest as it would go out (stored if already assembled), with sample recipient parts."""

    region: str
    week: str
    subject: str
    html: str
    text: str
    item_ids: tuple[int, ...]
    stored: bool

    @property
    def skipped(self) -> bool:
        return not self.item_ids


def region_zone(session: Session, *, region: str, settings: Settings) -> ZoneInfo:
    """The region's time zone override (regions.timezone) or TIMEZONE."""
    row = get_region(session, slug=region)
    return region_timezone(settings, row.timezone if row else None)


def next_week(session: Session, *, region: str, settings: Settings, now: datetime) -> str:
    """The week in progress in the region's zone: the digest that will go out next."""
    return current_week(now, region_zone(session, region=region, settings=settings))


def _name_of(tree: RegionTree, locale: str) -> Callable[[str], str]:
    if pick_locale(locale) == "es":
        return lambda slug: tree.get(slug).name_es
    return lambda slug: tree.get(slug).name_en


def collect(
    session: Session, *, region: str, week: str, settings: Settings, tree: RegionTree,
    locale: str = "en", zone: ZoneInfo | None = None, now: datetime | None = None,
) -> tuple[DigestContent, datetime, datetime]:  # fmt: skip
    """The digest content of ``region`` for ``week`` (no embargoed item) and its window in UTC."""
    tz = zone or region_zone(session, region=region, settings=settings)
    start, end = week_window(week, tz)
    items = list_items(session, regions=tree.related(region), since=start, until=end, limit=None,
                       visible_by=now or utcnow())  # fmt: skip
    content = build_content(
        items, region=region, week=week, base_url=settings.base_url,
        name_of=_name_of(tree, locale), locale=locale, tz=tz,
    )  # fmt: skip
    return content, start, end


def assemble_digest(
    session: Session,
    *,
    region: str,
    week: str,
    settings: Settings,
    tree: RegionTree,
    now: datetime,
    renderer: EmailRenderer | None = None,
    zone: ZoneInfo | None = None,
) -> Digest:
    """Get or create the frozen digest of ``region`` for ``week`` (status assembled or skipped)."""
    region = tree.normalize(region)
    parse_week(week)
    existing = find_digest(session, region=region, week=week)
    if existing is not None:
        return existing
    content, start, end = collect(
        session, region=region, week=week, settings=settings, tree=tree, zone=zone, now=now
    )
    html = text = ""
    marks = Placeholders.fresh()  # after the items are fixed, so none of them can hold these
    if not content.empty:
        rendered = (renderer or default_renderer()).digest(
            content, Branding.from_settings(settings), marks
        )
        html, text = rendered.html, rendered.text
    digest = Digest(
        region=region, week=week, status=SKIPPED if content.empty else ASSEMBLED,
        window_start=start, window_end=end, item_ids=json.dumps(list(content.item_ids)),
        subject=content.subject[:300], html=html, text=text, created=now,
        placeholder_key=marks.key,
    )  # fmt: skip
    if add_unless_taken(session, digest):
        return digest
    # Another process assembled the same (region, week) first; theirs is the frozen one.
    winner = find_digest(session, region=region, week=week)
    if winner is None:
        raise StoreError(f"digest {region} {week} was taken, then could not be read back")
    return winner


def digest_item_ids(digest: Digest) -> list[int]:
    """The frozen item list of a digest, in the order the email shows it."""
    return [int(i) for i in json.loads(digest.item_ids or "[]")]


def digest_mail(
    digest: Digest, *, settings: Settings, tree: RegionTree, tokens: Tokens,
    clock: Callable[[], datetime] = utcnow,
) -> DigestMail:  # fmt: skip
    """The per-recipient message builder of a stored digest (what a sender calls per row)."""
    return DigestMail(
        digest, settings=settings, tokens=tokens, region_name=tree.get(digest.region).name_en,
        clock=clock,
    )  # fmt: skip


def _sample_values(settings: Settings, marks: Placeholders) -> dict[str, str]:
    return marks.values(
        email=PREVIEW_ADDRESS,
        unsubscribe_url=f"{settings.base_url}/unsubscribe/PREVIEW",
        preferences_url=f"{settings.base_url}/preferences/PREVIEW",
    )


def preview(
    session: Session,
    *,
    region: str,
    week: str,
    settings: Settings,
    tree: RegionTree,
    renderer: EmailRenderer | None = None,
) -> DigestPreview:
    """The digest as it would go out, without storing anything (the stored one if assembled)."""
    region = tree.normalize(region)
    parse_week(week)
    stored = find_digest(session, region=region, week=week)
    if stored is not None and stored.status != SKIPPED:
        subject, html, text = stored.subject, stored.html, stored.text
        ids = tuple(digest_item_ids(stored))
        marks = Placeholders.of(stored.placeholder_key)
    else:
        content, _, _ = collect(session, region=region, week=week, settings=settings, tree=tree)
        marks = Placeholders.fresh()
        rendered = (renderer or default_renderer()).digest(
            content, Branding.from_settings(settings), marks
        )
        subject, html, text, ids = rendered.subject, rendered.html, rendered.text, content.item_ids
    values = _sample_values(settings, marks)
    return DigestPreview(
        region=region, week=week, subject=subject, html=fill(html, values, html=True),
        text=fill(text, values, html=False), item_ids=ids, stored=stored is not None,
    )  # fmt: skip


def preview_message(
    result: DigestPreview, *, settings: Settings, tree: RegionTree, now: datetime
) -> bytes:
    """The preview as a complete .eml message addressed to a sample reader.

    Its bodies are already filled, so the template gets fresh markers that occur nowhere in them.
    """
    marks = Placeholders.fresh()
    template = MessageTemplate(
        subject=result.subject, html=result.html, text=result.text, from_addr=settings.from_,
        list_id=list_id(
            slug=result.region, name=tree.get(result.region).name_en,
            site_title=settings.site_title, from_addr=settings.from_,
        ),
        marks=marks,
    )  # fmt: skip
    values = _sample_values(settings, marks)
    return template.for_recipient(
        to=PREVIEW_ADDRESS,
        unsubscribe_url=values[marks.unsubscribe_url],
        preferences_url=values[marks.preferences_url],
        message_id=f"<preview-{result.region}-{result.week}@{template.domain}>",
        date=format_datetime(now.replace(microsecond=0)),
    )
