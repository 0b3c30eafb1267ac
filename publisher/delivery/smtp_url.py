"""SMTP_URL parsed once into the target the connection pool dials.

    smtp://user:pass@host:port    plain SMTP, upgraded with STARTTLS whenever the server offers it
    smtps://user:pass@host:port   TLS from the first byte (port 465 unless given)

Credentials are percent-decoded (``p%40ss`` is ``p@ss``). Two query options exist for test and
relay set-ups: ``starttls=auto|require|never`` and ``verify=true|false`` (certificate checks).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from publisher.errors import ConfigError

Security = Literal["starttls", "tls"]
StartTLS = Literal["auto", "require", "never"]

_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to speak SMTP; ``repr`` never shows the password."""

    host: str
    port: int
    security: Security = "starttls"
    starttls: StartTLS = "auto"
    username: str | None = None
    password: str | None = None
    verify: bool = True
    timeout: float = 30.0

    def __repr__(self) -> str:
        return f"SmtpTarget({self.describe()})"

    def describe(self) -> str:
        """The URL without its password, for logs and messages."""
        scheme = "smtps" if self.security == "tls" else "smtp"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext:
        """A client TLS context; with verify=false it accepts any certificate (test relays)."""
        context = ssl.create_default_context()
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def _bool_option(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"PUBLISHER_SMTP_URL option {name}={value!r} must be true or false")


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse SMTP_URL, or raise ConfigError saying what is wrong (never echoing a password)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"PUBLISHER_SMTP_URL is not a URL ({e}); use smtp://host:port") from e
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ConfigError(
            f"PUBLISHER_SMTP_URL scheme {parts.scheme!r} is not smtp or smtps; "
            "use smtp://user:pass@host:587 or smtps://user:pass@host:465"
        )
    if not parts.hostname:
        raise ConfigError("PUBLISHER_SMTP_URL has no host; use smtp://host:port")
    if parts.path not in ("", "/") or parts.fragment:
        raise ConfigError("PUBLISHER_SMTP_URL must not have a path or fragment")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise ConfigError("PUBLISHER_SMTP_URL has a password but no user name")
    starttls: StartTLS = "auto"
    verify = True
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "starttls":
            if value not in ("auto", "require", "never"):
                raise ConfigError("PUBLISHER_SMTP_URL option starttls must be auto|require|never")
            starttls = value  # type: ignore[assignment]
        elif name == "verify":
            verify = _bool_option(name, value)
        else:
            raise ConfigError(f"PUBLISHER_SMTP_URL has an unknown option {name!r}")
    return SmtpTarget(
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[scheme],
        security="tls" if scheme == "smtps" else "starttls",
        starttls=starttls,
        username=username,
        password=password,
        verify=verify,
    )
