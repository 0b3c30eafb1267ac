"""VERP: each message's envelope sender names its ledger row, signed so nobody can forge one.

The token is ``{kind}{row id}-{mac}``: ``kind`` says which table the row is in ("d" a digest
ledger row; "o" is reserved for the outbox), ``mac`` is 10 base32 characters (50 bits) of an
HMAC-SHA256 over kind and id with a key derived from SECRET_KEY. Everything is lower case,
because some relays fold the local part's case; the newest key signs, every key verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from publisher.delivery.mailer import envelope_sender
from publisher.errors import ConfigError
from publisher.settings import Settings

KINDS: Final[dict[str, str]] = {"d": "digest", "o": "outbox"}
MAC_CHARS: Final = 10
_NOT_IN_ADDRESS = frozenset('+<>()[],;:\\"\r\n\0 \t')
_B32 = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lower case
_PAIRS = [_B32[i >> 5] + _B32[i & 31] for i in range(1024)]
_TOKEN = re.compile(rf"([a-z])([0-9]{{1,12}})-([a-z2-7]{{{MAC_CHARS}}})")


@dataclass(frozen=True, slots=True)
class RowRef:
    """The ledger row a verified token names."""

    kind: str  # "digest" or "outbox"
    row_id: int


def _derive(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"publisher.verp", hashlib.sha256).digest()


class Verp:
    """Makes envelope senders for ledger rows and finds verified tokens in report text."""

    def __init__(self, bounce_address: str, secret_keys: list[str]) -> None:
        local, at, domain = bounce_address.strip().rpartition("@")
        bad = not bounce_address.isascii() or any(c in _NOT_IN_ADDRESS for c in bounce_address)
        if not at or not local or not domain or bad:
            raise ConfigError(
                f"PUBLISHER_BOUNCE_ADDRESS must be a plain address like bounces@example.org, "
                f"not {bounce_address!r}"
            )
        if not secret_keys:
            raise ConfigError("no secret key to sign VERP tokens with; set PUBLISHER_SECRET_KEY")
        self.local, self.domain = local.lower(), domain.lower()
        self._keys = [_derive(k) for k in secret_keys]
        self._find = re.compile(
            re.escape(self.local) + r"\+([a-z0-9-]{4,40})@" + re.escape(self.domain), re.I
        )

    def _mac(self, key: bytes, kind: str, row_id: int) -> str:
        # 50 bits of the MAC, as 10 base32 letters looked up two at a time (the send hot path).
        bits = int.from_bytes(hmac.digest(key, f"{kind}:{row_id}".encode(), "sha256")[:7]) >> 6
        p = _PAIRS
        return (
            p[bits >> 40] + p[(bits >> 30) & 1023] + p[(bits >> 20) & 1023]
            + p[(bits >> 10) & 1023] + p[bits & 1023]
        )  # fmt: skip

    def token(self, row_id: int, kind: str = "d") -> str:
        """The token of ledger row ``row_id`` of table ``kind``."""
        if kind not in KINDS or row_id < 0:
            raise ValueError(f"no VERP token for {kind!r} row {row_id}")
        return f"{kind}{row_id}-{self._mac(self._keys[0], kind, row_id)}"

    def address(self, row_id: int, kind: str = "d") -> str:
        """The envelope sender of one message, e.g. bounces+d42-k3j5n2m4qa@example.org."""
        return f"{self.local}+{self.token(row_id, kind)}@{self.domain}"

    def read(self, token: str) -> RowRef | None:
        """The row a token names, or None when it is malformed or its MAC is wrong."""
        match = _TOKEN.fullmatch(token.lower())
        if match is None or match[1] not in KINDS:
            return None
        kind, row_id = match[1], int(match[2])
        if not any(hmac.compare_digest(self._mac(m, kind, row_id), match[3]) for m in self._keys):
            return None
        return RowRef(KINDS[kind], row_id)

    def find(self, text: str) -> set[RowRef]:
        """Every verified row named by a VERP address anywhere in ``text``."""
        found = (self.read(m[1]) for m in self._find.finditer(text))
        return {ref for ref in found if ref is not None}


def digest_envelope(settings: Settings) -> str | Callable[[int], str]:
    """MAIL FROM for the send engine: a VERP address per ledger row, or FROM's address."""
    if not settings.bounce_address.strip():
        return envelope_sender(settings.from_)
    return Verp(settings.bounce_address, settings.secret_keys()).address
