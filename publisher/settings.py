"""Settings read from PUBLISHER_* environment variables or a .env file.

Entry points build one ``Settings`` and pass it down; nothing reads the
environment at import time, so tests can run several configurations side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from publisher.errors import ConfigError
from publisher.i18n.catalogs import available_locales
from publisher.i18n.context import pick_locale
from publisher.private_files import read_or_create_secret

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Settings(BaseSettings):
    """Every knob an operator can turn, with the embedded defaults `make demo` relies on."""

    model_config = SettingsConfigDict(
        env_prefix="PUBLISHER_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    database_url: str = "sqlite:///var/publisher.db"
    smtp_url: str = ""
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    from_: str = Field(default="Regional News <news@example.org>", alias="PUBLISHER_FROM")
    postal_address: str = "Regional News, 1 Example Street, 10000 Example City"
    admin_token: str = ""
    feeds_dir: Path = Path("feeds")
    var_dir: Path = Path("var")
    default_region: str = "americas"
    coverage: str = "world"  # the region subtree readers can follow (the demo sets americas)
    digest_day: Weekday = "mon"
    digest_time: str = "08:00"
    timezone: str = "UTC"
    smtp_concurrency: int = Field(default=4, ge=1, le=64)
    smtp_rate: float = Field(default=0.0, ge=0)
    feed_limit: int = Field(default=50, ge=1, le=1000)
    site_title: str = "Regional News"
    log_format: Literal["text", "json"] = "text"
    dkim_key_file: Path | None = None
    dkim_selector: str = ""
    dkim_domain: str = ""
    locales: str = "en,es,pt"
    default_locale: str = "en"
    sources_allow_private: bool = False  # let sources and feed imports reach private addresses
    sources_concurrency: int = Field(default=20, ge=1, le=500)
    websub_hub_url: str = ""
    # -- the web server facing the internet (issue 9)
    forwarded_allow_ips: str = "127.0.0.1"  # proxies whose X-Forwarded-For is believed
    allowed_hosts: str = ""  # extra Host names accepted (comma-separated); empty = any Host
    metrics_token: str = ""  # bearer token for /metrics from public addresses (or ADMIN_TOKEN)
    docs_public: bool = True  # /docs, /redoc and /openapi.json; false hides them (404)
    admin_session_hours: float = Field(default=12, gt=0, le=720)  # a console login lasts this long
    http_timeout: float = Field(default=10.0, gt=0, le=300)  # to send a whole request, or idle
    http_max_header_bytes: int = Field(default=16_384, ge=1024, le=1_048_576)
    http_max_headers: int = Field(default=100, ge=10, le=10_000)
    http_max_connections: int = Field(default=1000, ge=1, le=100_000)
    # -- bounces and complaints (issue 14)
    bounce_address: str = ""  # envelope sender base for VERP: bounces+TOKEN@domain
    inbound_port: int = Field(default=0, ge=0, le=65535)  # embedded report receiver; 0 = off
    inbound_host: str = "127.0.0.1"
    imap_url: str = ""  # imaps://user:pass@host[:port]/MAILBOX; empty = off
    imap_every: int = Field(default=60, ge=5)  # seconds between polls of IMAP_URL
    soft_bounce_limit: int = Field(default=3, ge=1)  # this many soft bounces ...
    soft_bounce_days: int = Field(default=30, ge=1)  # ... within this many days suppress
    bounce_raw_days: int = Field(default=90, ge=1)  # raw reports kept this long
    mailgun_signing_key: str = ""  # POST /webhooks/mailgun; empty = refused
    sns_topic_arns: str = ""  # POST /webhooks/ses: accepted SNS topics (comma-separated)
    sns_cert_hosts: str = r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?"  # SigningCertURL hosts

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("websub_hub_url")
    @classmethod
    def _check_hub(cls, value: str) -> str:
        if value and not (value.startswith(("http://", "https://")) and value.isprintable()):
            raise ValueError("WEBSUB_HUB_URL must be an http(s) URL, or empty")
        return value.strip()

    @field_validator("digest_time")
    @classmethod
    def _check_time(cls, value: str) -> str:
        hours, _, minutes = value.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
            raise ValueError("DIGEST_TIME must be HH:MM, e.g. 08:00")
        return f"{int(hours):02d}:{int(minutes):02d}"

    @field_validator("locales")
    @classmethod
    def _check_locales(cls, value: str) -> str:
        codes = [c.strip().lower() for c in value.split(",") if c.strip()]
        known = available_locales()
        unknown = [c for c in codes if c not in known]
        if not codes or unknown:
            raise ValueError(
                f"LOCALES must list languages that have a catalog ({', '.join(known)}), "
                f"not {', '.join(unknown) or 'nothing'}"
            )
        return ",".join(dict.fromkeys(codes))

    @field_validator("default_locale")
    @classmethod
    def _check_default_locale(cls, value: str) -> str:
        code = value.strip().lower()
        if code not in available_locales():
            raise ValueError(f"DEFAULT_LOCALE must be one of {', '.join(available_locales())}")
        return code

    @property
    def locale_list(self) -> tuple[str, ...]:
        """LOCALES as a tuple, DEFAULT_LOCALE first if it was left out."""
        codes = tuple(self.locales.split(","))
        return codes if self.default_locale in codes else (self.default_locale, *codes)

    def pick_locale(self, tag: str | None) -> str:
        """The language of LOCALES for a reader's tag ("es-CL" -> "es"), else DEFAULT_LOCALE."""
        return pick_locale(tag, self.locale_list, self.default_locale)

    @property
    def mail_dir(self) -> Path:
        """Maildir the embedded SMTP server writes to when SMTP_URL is empty."""
        return self.var_dir / "mail"

    def secret_keys(self) -> list[str]:
        """Signing keys, newest first: SECRET_KEY may list several, separated by commas."""
        keys = [k.strip() for k in self.secret_key.split(",") if k.strip()]
        if not keys:
            raise ConfigError("PUBLISHER_SECRET_KEY is not set; production requires it")
        return keys

    def with_local_secret(self) -> Settings:
        """Return settings whose key comes from var/secret_key, creating it once (demo, serve)."""
        if self.secret_key:
            return self
        key = read_or_create_secret(self.var_dir / "secret_key")
        return self.model_copy(update={"secret_key": key})


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation errors into one clear line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValueError as e:
        raise ConfigError(f"invalid settings: {e}") from e
