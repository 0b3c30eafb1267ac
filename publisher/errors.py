"""Errors publisher raises on purpose, each saying what to do next.

    PublisherError
    ├── ConfigError            a setting is missing or malformed
    ├── UnknownRegionError     a slug that is not in the M49 tree (also a KeyError)
    ├── InputError             a record that cannot be taken in; carries source and line
    │   ├── FeedFetchError     a feed URL or file that is not a feed
    │   └── SuppressedError    an erased address offered again without fresh consent
    ├── BadToken               a signed link that is forged, expired, truncated or for another use
    ├── StoreError             the database refused or is unreachable
    └── DeliveryError          the SMTP side failed in a way the caller must see

Entry points catch PublisherError and print its message as one line on stderr.
Errors that wrap a cause raise ``from`` it so the traceback keeps the original.
"""

from __future__ import annotations


class PublisherError(Exception):
    """Base of every error publisher raises deliberately."""


class ConfigError(PublisherError):
    """A setting is missing or malformed."""


class UnknownRegionError(PublisherError, KeyError):
    """A region slug that is not in the M49 tree."""

    def __init__(self, slug: str) -> None:
        super().__init__(slug)
        self.slug = slug

    def __str__(self) -> str:
        return f"unknown region {self.slug!r}; `publisher regions list` shows the slugs"


class InputError(PublisherError, ValueError):
    """A record that cannot be taken in; ``source`` and ``line`` say where it was."""

    def __init__(self, reason: str, *, source: str = "", line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.source = source
        self.line = line

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.reason}" if where else self.reason


class FeedFetchError(InputError):
    """A feed URL or file that could not be read as RSS or Atom."""


class SuppressedError(InputError):
    """An address that was erased (hashed suppression entry) and may only come back by consent."""


class BadToken(PublisherError):
    """A signed link that is forged, expired, truncated or meant for another purpose."""


class StoreError(PublisherError):
    """The database refused an operation or could not be reached."""


class DeliveryError(PublisherError):
    """The SMTP side failed in a way the caller must handle."""
