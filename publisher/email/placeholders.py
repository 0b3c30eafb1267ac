"""The markers a digest body holds where each recipient differs, random per digest.

A digest is rendered once with markers in place of the reader's address and links, and the
message builder swaps them per recipient. Fixed markers could be typed into an item's summary
and come out as the reader's address or unsubscribe link, so each digest gets a random key,
chosen after its items are fixed and stored beside it (``digests.placeholder_key``); item text
cannot guess it. Digests assembled before the key existed keep the old fixed markers.
Markers are plain ASCII that neither HTML escaping nor CSS inlining rewrites.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

KEY_BYTES = 10  # 80 random bits, 20 hex characters
_KEY = re.compile(r"[0-9a-f]{16,32}")


@dataclass(frozen=True, slots=True)
class Placeholders:
    """The three per-recipient markers of one digest body."""

    key: str | None
    email: str
    unsubscribe_url: str
    preferences_url: str

    @classmethod
    def of(cls, key: str | None) -> Placeholders:
        """The markers of a digest stored with ``key`` (None: the old fixed markers)."""
        if key is None or key == "":
            return LEGACY
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a placeholder key: {key[:40]!r}")
        return cls(
            key=key,
            email=f"%%EMAIL-{key}%%",
            unsubscribe_url=f"%%UNSUBSCRIBE_URL-{key}%%",
            preferences_url=f"%%PREFERENCES_URL-{key}%%",
        )

    @classmethod
    def fresh(cls) -> Placeholders:
        """New random markers, for a digest being rendered now."""
        return cls.of(secrets.token_hex(KEY_BYTES))

    @property
    def all(self) -> tuple[str, str, str]:
        """Email, unsubscribe URL and preferences URL markers, in that order."""
        return (self.email, self.unsubscribe_url, self.preferences_url)

    def values(self, *, email: str, unsubscribe_url: str, preferences_url: str) -> dict[str, str]:
        """Each marker mapped to what replaces it for one recipient."""
        return {
            self.email: email,
            self.unsubscribe_url: unsubscribe_url,
            self.preferences_url: preferences_url,
        }


LEGACY = Placeholders(
    key=None,
    email="%%EMAIL%%",
    unsubscribe_url="%%UNSUBSCRIBE_URL%%",
    preferences_url="%%PREFERENCES_URL%%",
)
