"""Rendering editions: fragments once per (item, language), the frame once per edition.

One ``EditionRenderer`` lives for one fire (or one preview): it keeps every item's fragment per
language, so thousands of region sets that share items render each item once. The send, the
preview, the test copy and the web copy all go through ``render``, so a preview is what the send
sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo

from publisher.digest.assembly import MAX_ITEMS, DigestItem, pick_locale
from publisher.digest.edition_content import build_edition, item_view
from publisher.digest.editions import EditionPlan
from publisher.email.fragments import marker
from publisher.email.placeholders import Placeholders
from publisher.email.render import (
    Branding,
    EmailRenderer,
    Fragment,
    RenderedEmail,
    default_renderer,
)
from publisher.models import ItemPublic
from publisher.regions.tree import RegionTree
from publisher.settings import Settings
from publisher.tokens import Tokens

PREVIEW_PATH = "/editions/preview"


class EditionRenderer:
    """Renders editions from plans, caching each item's view and fragment per language."""

    def __init__(
        self,
        settings: Settings,
        tree: RegionTree,
        *,
        renderer: EmailRenderer | None = None,
        tz: tzinfo | None = None,
    ) -> None:
        self.settings = settings
        self.tree = tree
        self.renderer = renderer or default_renderer()
        self.branding = Branding.from_settings(settings)
        self.tz = tz or _zone(settings.timezone)
        self._views: dict[tuple[int, str], DigestItem] = {}
        self._fragments: dict[tuple[int, str], Fragment] = {}
        self.by_sha: dict[str, Fragment] = {}
        self.fragments_rendered = 0

    def _view(self, item: ItemPublic, language: str) -> DigestItem:
        key = (item.id, language)
        found = self._views.get(key)
        if found is None:
            found = self._views[key] = item_view(
                item, locale=language, base_url=self.settings.base_url,
                name_of=lambda slug: self.tree.get(slug).name(language), tz=self.tz,
            )  # fmt: skip
        return found

    def _fragment(self, item: DigestItem, language: str) -> Fragment:
        key = (item.id, language)
        found = self._fragments.get(key)
        if found is None:
            found = self._fragments[key] = self.renderer.item_fragment(item, language)
            self.fragments_rendered += 1
        return found

    def _named(self, key: str, found: Fragment) -> str:
        """The marker of ``found`` (what a stored body names), kept in ``by_sha`` for the
        writer to store."""
        self.by_sha[found.sha] = found
        return marker(key, found.sha)

    def render(
        self,
        plan: EditionPlan,
        language: str,
        *,
        marks: Placeholders,
        web_url: str,
        notes: Mapping[str, str] | None = None,
        footer: bool = True,
        max_items: int | None = MAX_ITEMS,
        stored: bool = False,
    ) -> RenderedEmail:
        """``plan`` in ``language`` with ``marks`` where each reader differs (the web copy:
        no footer, every item). ``stored``: the body a fire stores, naming each section's
        fragment (heading and items) by a marker (publisher.email.fragments) instead of holding
        it; the fragments it names are in ``self.by_sha``."""
        lang = pick_locale(language)
        content = build_edition(
            plan, locale=lang, name_of=lambda slug: self.tree.get(slug).name(lang),
            view=lambda it: self._view(it, lang), web_url=web_url, notes=notes,
            max_items=max_items,
        )  # fmt: skip
        key = marks.key if stored else None
        return self.renderer.edition(
            content, self.branding, marks, lambda it: self._fragment(it, lang), footer=footer,
            named=None if key is None else (lambda found: self._named(key, found)),
        )  # fmt: skip


def web_url(settings: Settings, tokens: Tokens, digest_id: int, language: str) -> str:
    """The address of an edition's web copy ("view in your browser")."""
    return f"{settings.base_url}/editions/{tokens.edition(digest_id, pick_locale(language))}"


def preview_url(settings: Settings) -> str:
    """Where a preview's "view in your browser" points: no edition exists yet."""
    return f"{settings.base_url}{PREVIEW_PATH}"


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):
        return UTC
