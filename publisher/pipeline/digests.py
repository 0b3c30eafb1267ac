"""Assembling a region's weekly digest: collect the window's items, decide, render once, freeze.

A digest row is written once per (region, week) and never changed: assembling again returns
it as stored, and when two processes assemble at once the unique constraint picks one and the
other reads it back. A week with no items gets a "skipped" row, so nobody is mailed for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from publisher.digest.assembly import DigestContent, build_content, pick_locale
from publisher.digest.windows import current_week, parse_week, region_timezone, week_window
from publisher.email.message import MessageTemplate, list_id
from publisher.email.outgoing import DigestMail
from publisher.email.placeholders import Placeholders
from publisher.email.render import (
    Branding,
    EmailRenderer,
    RenderedEmail,
    default_renderer,
    fill,
)
from publisher.errors import StoreError
from publisher.models import Digest, DigestRendition, ItemPublic, utcnow
from publisher.regions.tree import RegionTree
from publisher.settings import Settings
from publisher.store.digests import find_digest
from publisher.store.items import items_by_ids, list_items
from publisher.store.regions import get_region
from publisher.store.renditions import add_rendition, find_rendition
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
    language: str = "en"

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
    language = pick_locale(locale)
    return lambda slug: tree.get(slug).name(language)


@dataclass(frozen=True, slots=True)
class EditionSource:
    """What a digest is made of, before any language: its items, region, week and clock."""

    items: tuple[ItemPublic, ...]
    region: str
    week: str
    base_url: str
    tz: tzinfo


def edition_content(source: EditionSource, language: str, tree: RegionTree) -> DigestContent:
    """The digest's content in ``language``: subject, dates, region names and labels."""
    return build_content(
        source.items, region=source.region, week=source.week, base_url=source.base_url,
        name_of=_name_of(tree, language), locale=language, tz=source.tz,
    )  # fmt: skip


def render_edition(
    content: DigestContent,
    language: str,
    *,
    settings: Settings,
    marks: Placeholders,
    renderer: EmailRenderer | None = None,
) -> RenderedEmail:
    """The bodies of one edition in one language (``content`` must be in that language), with
    the digest's per-recipient ``marks`` (every language of one digest shares them)."""
    if content.locale != pick_locale(language):
        raise ValueError(f"content is in {content.locale}, not {language}")
    return (renderer or default_renderer()).digest(content, Branding.from_settings(settings), marks)


def gather(
    session: Session, *, region: str, week: str, settings: Settings, tree: RegionTree,
    zone: ZoneInfo | None = None, now: datetime | None = None,
) -> tuple[EditionSource, datetime, datetime]:  # fmt: skip
    """The items of ``region``'s digest for ``week`` (no embargoed item) and its [start, end)
    window in UTC."""
    tz = zone or region_zone(session, region=region, settings=settings)
    start, end = week_window(week, tz)
    items = list_items(session, regions=tree.related(region), since=start, until=end, limit=None,
                       visible_by=now or utcnow())  # fmt: skip
    return EditionSource(tuple(items), region, week, settings.base_url, tz), start, end


def collect(
    session: Session, *, region: str, week: str, settings: Settings, tree: RegionTree,
    locale: str = "en", zone: ZoneInfo | None = None, now: datetime | None = None,
) -> tuple[DigestContent, datetime, datetime]:  # fmt: skip
    """The digest content of ``region`` for ``week`` (no embargoed item) and its window in UTC."""
    source, start, end = gather(
        session, region=region, week=week, settings=settings, tree=tree, zone=zone, now=now
    )
    return edition_content(source, locale, tree), start, end


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
    language = settings.default_locale
    content, start, end = collect(
        session, region=region, week=week, settings=settings, tree=tree, locale=language,
        zone=zone, now=now,
    )  # fmt: skip
    html = text = ""
    marks = Placeholders.fresh()  # after the items are fixed, so none of them can hold these
    if not content.empty:
        rendered = render_edition(
            content, language, settings=settings, marks=marks, renderer=renderer
        )
        html, text = rendered.html, rendered.text
    digest = Digest(
        region=region, regions=region, week=week, status=SKIPPED if content.empty else ASSEMBLED,
        window_start=start, window_end=end, item_ids=json.dumps(list(content.item_ids)),
        subject=content.subject[:300], html=html, text=text, created=now, locale=language,
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


def rendition(
    session: Session,
    digest: Digest,
    language: str,
    *,
    settings: Settings,
    tree: RegionTree,
    renderer: EmailRenderer | None = None,
) -> RenderedEmail:
    """The frozen digest in ``language``: rendered once (from its frozen item list), then stored."""
    if language == digest.locale:
        return RenderedEmail(digest.subject, digest.html, digest.text, digest.locale)
    assert digest.id is not None
    found = find_rendition(session, digest_id=digest.id, locale=language)
    if found is None:
        rendered = _render_frozen(session, digest, language, settings, tree, renderer)
        found = add_rendition(
            session,
            DigestRendition(
                digest_id=digest.id, locale=language, subject=rendered.subject[:300],
                html=rendered.html, text=rendered.text, created=digest.created,
            ),
        )  # fmt: skip
    return RenderedEmail(found.subject, found.html, found.text, found.locale)


def _render_frozen(
    session: Session,
    digest: Digest,
    language: str,
    settings: Settings,
    tree: RegionTree,
    renderer: EmailRenderer | None,
) -> RenderedEmail:
    """``digest`` rendered in ``language`` from its frozen item list (items deleted since are
    left out), without storing anything."""
    ids = digest_item_ids(digest)
    order = {item_id: i for i, item_id in enumerate(ids)}
    items = sorted(items_by_ids(session, item_ids=ids), key=lambda it: order[it.id])
    tz = region_zone(session, region=digest.region, settings=settings)
    source = EditionSource(tuple(items), digest.region, digest.week, settings.base_url, tz)
    content = edition_content(source, language, tree)
    marks = Placeholders.of(digest.placeholder_key)
    return render_edition(content, language, settings=settings, marks=marks, renderer=renderer)


def stored_rendition(session: Session, digest: Digest, language: str) -> RenderedEmail:
    """A rendering made when rows were queued (workers only read); the digest's own otherwise."""
    if language != digest.locale and digest.id is not None:
        found = find_rendition(session, digest_id=digest.id, locale=language)
        if found is not None:
            return RenderedEmail(found.subject, found.html, found.text, found.locale)
    return RenderedEmail(digest.subject, digest.html, digest.text, digest.locale)


def digest_mail(
    digest: Digest,
    *,
    settings: Settings,
    tree: RegionTree,
    tokens: Tokens,
    rendered: RenderedEmail | None = None,
    language: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> DigestMail:
    """The per-recipient message builder of a stored digest in one language (default: its own)."""
    return DigestMail(
        digest, settings=settings, tokens=tokens, region_name=tree.get(digest.region).name_en,
        rendered=rendered, language=language, clock=clock,
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
    locale: str | None = None,
) -> DigestPreview:
    """The digest as it would go out, without storing anything (the stored one if assembled).

    A stored digest in a language it was not rendered in yet is rendered as the send would
    render it, but not stored.
    """
    region = tree.normalize(region)
    parse_week(week)
    language = settings.pick_locale(locale or settings.default_locale)
    stored = find_digest(session, region=region, week=week)
    if stored is not None and stored.status != SKIPPED:
        ids = tuple(digest_item_ids(stored))
        marks = Placeholders.of(stored.placeholder_key)
        made = stored_rendition(session, stored, language)
        if language != stored.locale and made.html == stored.html:  # not rendered yet
            made = _render_frozen(session, stored, language, settings, tree, renderer)
        subject, html, text = made.subject, made.html, made.text
    else:
        content, _, _ = collect(
            session, region=region, week=week, settings=settings, tree=tree, locale=language
        )
        marks = Placeholders.fresh()
        rendered = render_edition(
            content, language, settings=settings, marks=marks, renderer=renderer
        )
        subject, html, text, ids = rendered.subject, rendered.html, rendered.text, content.item_ids
    values = _sample_values(settings, marks)
    return DigestPreview(
        region=region, week=week, subject=subject, html=fill(html, values, html=True),
        text=fill(text, values, html=False), item_ids=ids, stored=stored is not None,
        language=language,
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
        language=result.language,
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
