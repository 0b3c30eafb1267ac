"""Email bodies from templates/email/: HTML (autoescaped, CSS inlined) and plain text.

A digest is rendered ONCE with placeholder strings where each recipient differs (address,
unsubscribe and preferences links); the message builder swaps them per recipient. The
markers are random per digest (publisher.email.placeholders), so item text cannot fill them.

Two Jinja environments: HTML autoescapes every template whatever its extension; the text
environment does not escape, because "&amp;" would reach readers literally in text/plain, and
only plain text goes into it (item fields are stripped of markup at intake, publisher.text).
"""

from __future__ import annotations

import functools
import html as html_lib
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from publisher.digest.assembly import DigestContent, DigestItem, pick_locale
from publisher.digest.edition_content import EditionContent
from publisher.email.placeholders import LEGACY, Placeholders
from publisher.i18n import gettext, use_locale
from publisher.i18n import jinja as i18n_jinja
from publisher.settings import Settings

# templates/email/ at the top level, mapped into the package by the link email/templates (a wheel
# holds the files themselves), so an installed publisher finds them without the source tree.
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# The fixed markers of digests assembled before markers were random (Placeholders.of(None)).
EMAIL, UNSUBSCRIBE_URL, PREFERENCES_URL = PLACEHOLDERS = LEGACY.all


@dataclass(frozen=True, slots=True)
class Branding:
    """What every email says about the sender, taken from the settings."""

    site_title: str
    base_url: str
    postal_address: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Branding:
        return cls(settings.site_title, settings.base_url, settings.postal_address)


@dataclass(frozen=True, slots=True)
class Fragment:
    """One item rendered once for one language: HTML (CSS inlined) and plain text."""

    html: str
    text: str


FragmentOf = Callable[[DigestItem], Fragment]
_STYLE = re.compile(r"<style>(.*?)</style>", re.S)


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """Subject and both bodies of one email (digest bodies still hold the placeholders)."""

    subject: str
    html: str
    text: str
    language: str = ""


class EmailRenderer:
    """The template environments and CSS inliner, built once and reused."""

    def __init__(self, templates_dir: Path = TEMPLATES_DIR) -> None:
        loader = FileSystemLoader(str(templates_dir))
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": True,
        }
        self._html = i18n_jinja.install(Environment(autoescape=True, **common))
        # plain text only: "&amp;" would reach readers literally in text/plain
        self._text = i18n_jinja.install(Environment(autoescape=False, **common))  # noqa: S701
        self._inliner = css_inline.CSSInliner(
            load_remote_stylesheets=False, keep_style_tags=False, keep_link_tags=False
        )
        base = (templates_dir / "_base.html").read_text(encoding="utf-8")
        found = _STYLE.search(base)
        self._css = found.group(1) if found else ""

    def _both(self, name: str, context: dict[str, Any]) -> tuple[str, str]:
        page = self._html.get_template(f"{name}.html").render(context)
        text = self._text.get_template(f"{name}.txt").render(context)
        return self._inliner.inline(page), text

    def digest(
        self, content: DigestContent, branding: Branding, marks: Placeholders = LEGACY
    ) -> RenderedEmail:
        """The bodies in ``content.locale``, with ``marks`` where each recipient differs."""
        context = {
            "c": content,
            "b": branding,
            "email": marks.email,
            "unsubscribe_url": marks.unsubscribe_url,
            "preferences_url": marks.preferences_url,
        }
        with use_locale(content.locale):
            page, text = self._both("digest", context)
        return RenderedEmail(content.subject, page, text, content.locale)

    def item_fragment(self, item: DigestItem, locale: str) -> Fragment:
        """``item`` as every edition in ``locale`` shows it: rendered and inlined once, reused."""
        context = {"it": item, "locale": locale}
        with use_locale(locale):
            page = self._html.get_template("_edition_item.html").render(context)
            text = self._text.get_template("_edition_item.txt").render(context)
        return Fragment(css_inline.inline_fragment(page, self._css), text)

    def edition(
        self,
        content: EditionContent,
        branding: Branding,
        marks: Placeholders,
        fragment: FragmentOf,
        *,
        footer: bool = True,
    ) -> RenderedEmail:
        """An edition composed from its items' fragments: only the frame around them (header,
        notes, section headings, footer) is rendered here. ``footer=False``: the web copy."""
        slot_key = secrets.token_hex(8)
        items = {it.id: it for s in content.sections for it in s.items}
        context = {
            "c": content, "b": branding, "footer": footer, "email": marks.email,
            "unsubscribe_url": marks.unsubscribe_url, "preferences_url": marks.preferences_url,
            "slot": lambda item_id: f"frag-{slot_key}-{item_id}",
        }  # fmt: skip
        with use_locale(content.locale):
            page, text = self._both("edition", context)
        for item_id, item in items.items():
            made = fragment(item)
            page = page.replace(f"<!--frag-{slot_key}-{item_id}-->", made.html, 1)
            text = text.replace(f"frag-{slot_key}-{item_id}\n", made.text, 1)
        return RenderedEmail(content.subject, page, text, content.locale)

    def confirmation(
        self, *, confirm_url: str, region_names: list[str], branding: Branding, locale: str = "en"
    ) -> RenderedEmail:
        """The double opt-in email of one person (rendered per person: it is rare)."""
        lang = pick_locale(locale)
        with use_locale(lang):
            subject = gettext("Confirm your subscription to %(site)s") % {
                "site": branding.site_title
            }
            context = {
                "subject": subject,
                "lang": lang,
                "b": branding,
                "region_names": region_names,
                "confirm_url": confirm_url,
            }
            page, text = self._both("confirm", context)
        return RenderedEmail(subject, page, text, lang)


@functools.cache
def default_renderer() -> EmailRenderer:
    """The renderer over the shipped templates, built once per process."""
    return EmailRenderer()


def fill(body: str, values: Mapping[str, str], *, html: bool) -> str:
    """``body`` with each placeholder replaced (HTML-escaped in HTML bodies)."""
    for placeholder, value in values.items():
        body = body.replace(placeholder, html_lib.escape(value) if html else value)
    return body


def public_copy(
    body: str, *, base_url: str, html: bool = True, marks: Placeholders = LEGACY
) -> str:
    """A digest body with no one's details: the web archive copy ("view in browser")."""
    values = marks.values(email="", unsubscribe_url=f"{base_url}/", preferences_url=f"{base_url}/")
    return fill(body, values, html=html)
