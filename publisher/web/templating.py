"""Jinja2 for pages: autoescape for every template, URL and date filters, shared page parts.

Item text is plain text (cleaned at intake) and is always escaped; links are rendered only when
they are absolute http(s) URLs, whatever the store holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
from babel import Locale
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from publisher.i18n import current_locale, gettext
from publisher.i18n import jinja as i18n_jinja
from publisher.i18n.formats import format_day
from publisher.regions.tree import RegionTree
from publisher.settings import Settings

TEMPLATE_DIR = Path(__file__).parent / "templates"
FEED_FORMATS = (
    ("rss", "application/rss+xml", "RSS"),
    ("atom", "application/atom+xml", "Atom"),
    ("json", "application/feed+json", "JSON Feed"),
)


@dataclass(frozen=True, slots=True)
class FeedLink:
    """One <link rel="alternate"> (and the visible link next to a region)."""

    media_type: str
    title: str
    href: str
    label: str


def safe_url(value: object) -> str | None:
    """``value`` if it is an absolute http(s) URL without spaces, else None (never rendered)."""
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return value


def day(moment: datetime | None) -> str:
    """E.g. "November 27, 2026" in the current language (the UTC date)."""
    return format_day(moment)


@dataclass(frozen=True, slots=True)
class LanguageChoice:
    """One entry of the visible language switch (labels are autonyms: data, not interface)."""

    code: str
    label: str
    href: str
    current: bool


@dataclass(frozen=True, slots=True)
class Alternate:
    """One <link rel="alternate" hreflang> of a page."""

    hreflang: str
    href: str


def autonym(code: str) -> str:
    """A language's own name, e.g. "Español" (CLDR)."""
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]


def language_links(
    request: Request, settings: Settings
) -> tuple[list[LanguageChoice], list[Alternate]]:
    """The switch and the hreflang alternates of the page ``request`` asked for."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    path = request.url.path
    here = current_locale()
    choices, alternates = [], []
    for code in settings.locale_list:
        query = urlencode([*params, ("lang", code)])
        href = f"{path}?{query}"
        choices.append(LanguageChoice(code, autonym(code), href, code == here))
        alternates.append(Alternate(code, f"{settings.base_url}{href}"))
    default = urlencode(params)
    x_default = f"{settings.base_url}{path}{'?' + default if default else ''}"
    alternates.append(Alternate("x-default", x_default))
    return choices, alternates


def feed_links(slug: str, title: str) -> list[FeedLink]:
    """RSS, Atom and JSON Feed links of one region's feeds (or of "all")."""
    return [
        FeedLink(media, f"{title} ({label})", f"/feeds/{slug}.{ext}", label)
        for ext, media, label in FEED_FORMATS
    ]


def make_templates(settings: Settings, tree: RegionTree) -> Jinja2Templates:
    """The page templates, with escaping on for every file name and undefined names an error."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    i18n_jinja.install(env)
    env.filters["safe_url"] = safe_url
    env.globals["site_title"] = settings.site_title
    env.globals["postal_address"] = settings.postal_address

    def region_name(slug: str) -> str:
        return tree.get(slug).name(current_locale()) if slug in tree else slug

    env.globals["region_name"] = region_name
    return Jinja2Templates(env=env)


def render(
    templates: Jinja2Templates,
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A page; every page gets the site-wide feed links unless it brings its own."""
    choices, alternates = language_links(request, request.app.state.web.settings)
    values = {
        "feeds": feed_links("all", gettext("All regions")),
        "page_title": None,
        "languages": choices,
        "alternates": alternates,
        **context,
    }
    headers = {**(headers or {}), "content-language": current_locale()}
    response = templates.TemplateResponse(
        request, name, values, status_code=status_code, headers=headers
    )
    assert isinstance(response, HTMLResponse)
    return response
