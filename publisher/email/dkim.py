"""Optional DKIM signing with dkimpy, configured by DKIM_KEY_FILE, DKIM_SELECTOR and DKIM_DOMAIN.

The signed headers include List-Unsubscribe and List-Unsubscribe-Post, as RFC 8058 requires
for one-click unsubscribe to be trusted by the large mailbox providers.
"""

from __future__ import annotations

import dkim

from publisher.errors import ConfigError
from publisher.settings import Settings

SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
)


class DkimSigner:
    """Signs finished messages with one RSA (or Ed25519) key."""

    def __init__(self, *, private_key: bytes, selector: str, domain: str) -> None:
        if not selector or not domain:
            raise ConfigError("DKIM needs PUBLISHER_DKIM_SELECTOR and PUBLISHER_DKIM_DOMAIN")
        self.private_key = private_key
        self.selector = selector.encode("ascii")
        self.domain = domain.encode("ascii")

    @classmethod
    def from_settings(cls, settings: Settings) -> DkimSigner | None:
        """A signer when DKIM_KEY_FILE is set, else None (messages go out unsigned)."""
        if settings.dkim_key_file is None:
            return None
        try:
            key = settings.dkim_key_file.read_bytes()
        except OSError as e:
            raise ConfigError(f"cannot read PUBLISHER_DKIM_KEY_FILE: {e}") from e
        return cls(private_key=key, selector=settings.dkim_selector, domain=settings.dkim_domain)

    def sign(self, message: bytes) -> bytes:
        """``message`` with a DKIM-Signature header in front (only headers present are signed)."""
        head = message.split(b"\r\n\r\n", 1)[0].lower()
        present = [
            h for h in SIGNED_HEADERS if head.startswith(h + b":") or b"\r\n" + h + b":" in head
        ]
        try:
            signature = dkim.sign(
                message,
                self.selector,
                self.domain,
                self.private_key,
                include_headers=present,
                linesep=b"\r\n",
            )
        except dkim.DKIMException as e:
            raise ConfigError(f"DKIM signing failed (check the key file): {e}") from e
        return bytes(signature) + message
