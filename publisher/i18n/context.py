"""The locale of the work under way (a request, an email being rendered), and gettext on it.

A context variable rather than a parameter threaded through every template and helper:
each request and each render sets it for its own duration (``use_locale``), threads and
asyncio tasks each see their own, and the Jinja environments call ``gettext`` here.
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager

from babel.support import NullTranslations

from publisher.i18n import catalogs

_current: contextvars.ContextVar[str] = contextvars.ContextVar("publisher_locale", default="en")
_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")
_override: dict[str, NullTranslations] = {}


@functools.lru_cache(maxsize=256)
def base_language(tag: str) -> str:
    """The language of a BCP 47 tag, lower case: "es-CL" -> "es", "pt_BR" -> "pt" (cached:
    every reader and every section of a fire asks)."""
    tag = tag.strip()
    if not _TAG.fullmatch(tag):
        return ""
    return tag.replace("_", "-").split("-")[0].lower()


def pick_locale(
    tag: str | None, supported: Collection[str] = ("en", "es", "pt"), default: str = "en"
) -> str:
    """The supported language for ``tag`` ("es-CL" counts as "es"), else ``default``."""
    base = base_language(tag or "")
    return base if base in supported else default


def current_locale() -> str:
    """The language the current request or render speaks."""
    return _current.get()


@contextmanager
def use_locale(locale: str) -> Iterator[str]:
    """Speak ``locale`` (a supported base language) until the block ends."""
    token = _current.set(locale)
    try:
        yield locale
    finally:
        _current.reset(token)


def set_locale(locale: str) -> None:
    """Speak ``locale`` for the rest of this context (a request's middleware)."""
    _current.set(locale)


def _translations() -> NullTranslations:
    return translations_of(_current.get())


def translations_of(locale: str) -> NullTranslations:
    """The translations ``locale`` speaks now (its catalog, or the test's override): what a
    cache of translated text keys on."""
    return _override.get(locale) or catalogs.translations(locale)


def override(locale: str, translations: NullTranslations | None) -> None:
    """Use ``translations`` for ``locale`` instead of its catalog (the pseudo-locale test)."""
    if translations is None:
        _override.pop(locale, None)
    else:
        _override[locale] = translations


def gettext(message: str) -> str:
    """``message`` in the current language."""
    return _translations().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n`` in the current language."""
    return _translations().ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message
