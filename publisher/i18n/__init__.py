"""Languages: gettext catalogs (Babel), the current locale, and locale-aware formatting.

Every interface text of pages and emails goes through these catalogs; item text and region
data are data. See README "Languages" for adding one.
"""

from publisher.i18n.catalogs import available_locales, translations
from publisher.i18n.context import (
    N_,
    current_locale,
    gettext,
    ngettext,
    pick_locale,
    use_locale,
)

__all__ = [
    "N_",
    "available_locales",
    "current_locale",
    "gettext",
    "ngettext",
    "pick_locale",
    "translations",
    "use_locale",
]
