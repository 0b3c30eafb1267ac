"""Jinja2's i18n extension wired to the current locale (``{% trans %}``, ``_()``, ngettext)."""

from __future__ import annotations

import jinja2

from publisher.i18n.context import current_locale, gettext, ngettext
from publisher.i18n.formats import format_day, format_range, format_short_day


def install(env: jinja2.Environment) -> jinja2.Environment:
    """Add the i18n extension (new-style: autoescape-aware, %-formatting) and date filters."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["day"] = format_day
    env.filters["short_day"] = format_short_day
    env.globals["date_range"] = format_range
    env.globals["current_locale"] = current_locale
    return env
