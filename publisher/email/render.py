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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from publisher.digest.assembly import DigestContent, pick_locale
from publisher.email.placeholders import LEGACY, Placeholders
from publisher.settings import Settings

# templates/email/ at the top level, mapped into the package by the link email/templates (a wheel
# holds the files themselves), so an installed publisher finds them without the source tree.
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# The fixed markers of digests assembled before markers were random (Placeholders.of(None)).
EMAIL, UNSUBSCRIBE_URL, PREFERENCES_URL = PLACEHOLDERS = LEGACY.all

LABELS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "view_in_browser": "View in your browser",
        "more": "{n} more items in the web version",
        "sent_to": "This email was sent to {email} because you follow {region} on {site}.",
        "preferences": "Choose your regions",
        "unsubscribe": "Unsubscribe",
        "confirm_subject": "Confirm your subscription to {site}",
        "confirm_heading": "Please confirm your subscription",
        "confirm_intro": (
            "Someone, hopefully you, asked to receive the weekly news of {site} about:"
        ),
        "confirm_button": "Yes, subscribe me",
        "confirm_ignore": (
            "If that was not you, ignore this email: without a confirmation you will "
            "not hear from us again. The link works for 7 days."
        ),
    },
    "es": {
        "view_in_browser": "Ver en el navegador",
        "more": "{n} noticias más en la versión web",
        "sent_to": "Este correo se envió a {email} porque sigue {region} en {site}.",
        "preferences": "Elegir regiones",
        "unsubscribe": "Darse de baja",
        "confirm_subject": "Confirme su suscripción a {site}",
        "confirm_heading": "Confirme su suscripción",
        "confirm_intro": "Alguien, esperamos que usted, pidió recibir las noticias semanales "
        "de {site} sobre:",
        "confirm_button": "Sí, quiero suscribirme",
        "confirm_ignore": (
            "Si no fue usted, ignore este correo: sin confirmación no volverá a saber "
            "de nosotros. El enlace vale 7 días."
        ),
    },
}


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
class RenderedEmail:
    """Subject and both bodies of one email (digest bodies still hold the placeholders)."""

    subject: str
    html: str
    text: str


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
        self._html = Environment(autoescape=True, **common)
        self._text = Environment(autoescape=False, **common)  # noqa: S701 (plain text only)
        self._inliner = css_inline.CSSInliner(
            load_remote_stylesheets=False, keep_style_tags=False, keep_link_tags=False
        )

    def _both(self, name: str, context: dict[str, Any]) -> tuple[str, str]:
        page = self._html.get_template(f"{name}.html").render(context)
        text = self._text.get_template(f"{name}.txt").render(context)
        return self._inliner.inline(page), text

    def digest(
        self, content: DigestContent, branding: Branding, marks: Placeholders = LEGACY
    ) -> RenderedEmail:
        """The digest's bodies, with ``marks`` where each recipient differs."""
        labels = LABELS[content.locale]
        context = {
            "c": content,
            "b": branding,
            "t": labels,
            "more_label": labels["more"].format(n=content.more),
            "sent_to": labels["sent_to"].format(
                email=marks.email, region=content.region_name, site=branding.site_title
            ),
            "email": marks.email,
            "unsubscribe_url": marks.unsubscribe_url,
            "preferences_url": marks.preferences_url,
        }
        page, text = self._both("digest", context)
        return RenderedEmail(content.subject, page, text)

    def confirmation(
        self, *, confirm_url: str, region_names: list[str], branding: Branding, locale: str = "en"
    ) -> RenderedEmail:
        """The double opt-in email of one person (rendered per person: it is rare)."""
        labels = LABELS[pick_locale(locale)]
        subject = labels["confirm_subject"].format(site=branding.site_title)
        context = {
            "subject": subject,
            "lang": pick_locale(locale),
            "b": branding,
            "t": labels,
            "intro": labels["confirm_intro"].format(site=branding.site_title),
            "region_names": region_names,
            "confirm_url": confirm_url,
        }
        page, text = self._both("confirm", context)
        return RenderedEmail(subject, page, text)


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
