"""The gettext catalogs under publisher/locale/, loaded once per process and locale.

The ``.po`` files are the source; a compiled ``.mo`` next to one is used when it is at least as
new (``make i18n`` writes them), otherwise the ``.po`` is compiled in memory at load time, so
no manual step stands between a checkout and translated output.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
DOMAIN = "messages"
SOURCE_LOCALE = "en"  # the msgids are English: English needs no catalog


def _catalog_files(directory: Path, locale: str) -> tuple[Path, Path]:
    base = directory / locale / "LC_MESSAGES"
    return base / f"{DOMAIN}.po", base / f"{DOMAIN}.mo"


def compile_po(po_path: Path, locale: str) -> Translations:
    """A .po file compiled in memory (fuzzy entries are left out, as msgfmt does)."""
    with po_path.open("rb") as f:
        catalog = read_po(f, locale=locale, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


@functools.cache
def load(directory: Path, locale: str) -> NullTranslations:
    """The translations of ``locale`` in ``directory`` (NullTranslations if it has none)."""
    po_path, mo_path = _catalog_files(directory, locale)
    if mo_path.exists() and (
        not po_path.exists() or mo_path.stat().st_mtime >= po_path.stat().st_mtime
    ):
        with mo_path.open("rb") as f:
            return Translations(f, domain=DOMAIN)
    if po_path.exists():
        return compile_po(po_path, locale)
    return NullTranslations()


def translations(locale: str) -> NullTranslations:
    """The shipped catalog of ``locale`` (a supported base language such as "es")."""
    return load(LOCALE_DIR, locale)


def available_locales(directory: Path = LOCALE_DIR) -> tuple[str, ...]:
    """English plus every language with a catalog, sorted: what LOCALES may name."""
    found = {p.parent.parent.name for p in directory.glob(f"*/LC_MESSAGES/{DOMAIN}.po")}
    return tuple(sorted(found | {SOURCE_LOCALE}))
