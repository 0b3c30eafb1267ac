"""Settings read from PUBLISHER_* environment variables or a .env file.

Entry points build one ``Settings`` and pass it down; nothing reads the
environment at import time, so tests can run several configurations side by side.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from publisher.errors import ConfigError
from publisher.i18n.catalogs import available_locales
from publisher.i18n.context import pick_locale

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

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

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
        path = self.var_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return self.model_copy(update={"secret_key": path.read_text().strip()})


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation errors into one clear line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValueError as e:
        raise ConfigError(f"invalid settings: {e}") from e
