"""Finished messages for the senders: a digest per recipient, and the double opt-in email.

``DigestMail`` is built once per digest (template, tokens, DKIM) and then called per recipient
with only what the ledger holds (subscriber id, key, address); it never touches the store.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime

from publisher.email.dkim import DkimSigner
from publisher.email.message import Body, MessageTemplate, SharedPieces, list_id, message_id
from publisher.email.placeholders import Placeholders
from publisher.email.render import Branding, EmailRenderer, RenderedEmail, default_renderer
from publisher.models import Digest, utcnow
from publisher.settings import Settings
from publisher.tokens import Tokens


@functools.lru_cache(maxsize=8)
def _header_date(second: int) -> str:
    """A Date header value, formatted once per second for every digest of a send (ten thousand
    digests are sent within the same few seconds)."""
    return format_datetime(datetime.fromtimestamp(second, UTC))


class _Clock:
    """Date header strings, formatted once per second rather than once per message."""

    __slots__ = ("_now",)

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now

    def date(self, now: datetime | None = None) -> str:
        return _header_date(int((now or self._now()).timestamp()))


class DigestMail:
    """One frozen digest turned into per-recipient messages (thread-safe, no store access)."""

    def __init__(
        self,
        digest: Digest,
        *,
        settings: Settings,
        tokens: Tokens,
        region_name: str,
        rendered: RenderedEmail | None = None,
        language: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        bodies: tuple[Body, Body] | None = None,
        shared: SharedPieces | None = None,
    ) -> None:
        """``bodies`` (HTML, text) in parts replace ``rendered``'s; ``shared`` encodes the
        parts many digests share once."""
        if digest.id is None or digest.status == "skipped":
            raise ValueError("only a stored, non-skipped digest can be sent")
        self.digest_id = digest.id
        self.base_url = settings.base_url
        self.tokens = tokens
        self.language = language or digest.locale
        body = rendered or RenderedEmail(digest.subject, digest.html, digest.text, digest.locale)
        html, text = bodies or (body.html, body.text)
        self.template = MessageTemplate(
            subject=body.subject,
            html=html,
            text=text,
            language=self.language,
            from_addr=settings.from_,
            list_id=list_id(
                slug=digest.region,
                name=region_name,
                site_title=settings.site_title,
                from_addr=settings.from_,
            ),
            dkim=DkimSigner.from_settings(settings),
            marks=Placeholders.of(digest.placeholder_key),
            shared=shared,
        )
        self._clock = _Clock(clock)

    @property
    def wire_ready(self) -> bool | None:
        """True when every message is in wire form by construction (None: check one)."""
        return self.template.wire_ready

    def message_id(self, subscriber_id: int) -> str:
        """The stable Message-ID of this digest for this subscriber (store it in the ledger)."""
        return message_id(self.digest_id, subscriber_id, self.template.domain)

    def build(
        self,
        *,
        subscriber_id: int,
        key: str,
        email: str,
        msg_id: str = "",
        now: datetime | None = None,
    ) -> bytes:
        """The complete message for one recipient; ``msg_id`` defaults to message_id()."""
        return self.template.for_recipient(
            to=email,
            unsubscribe_url=self.tokens.url(self.base_url, "unsubscribe", key),
            preferences_url=self.tokens.url(self.base_url, "preferences", key),
            message_id=msg_id or self.message_id(subscriber_id),
            date=self._clock.date(now),
        )


def confirmation_message(
    *,
    settings: Settings,
    tokens: Tokens,
    subscriber_id: int,
    key: str,
    email: str,
    region_names: list[str],
    locale: str = "en",
    now: datetime,
    renderer: EmailRenderer | None = None,
) -> bytes:
    """The double opt-in email for one subscriber, with a 7-day /confirm/{token} link."""
    confirm_url = tokens.url(settings.base_url, "confirm", key)
    rendered = (renderer or default_renderer()).confirmation(
        confirm_url=confirm_url,
        region_names=region_names,
        branding=Branding.from_settings(settings),
        locale=locale,
    )
    template = MessageTemplate(
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        language=rendered.language,
        from_addr=settings.from_,
        list_id=None,
        dkim=DkimSigner.from_settings(settings),
    )
    stamp = int(now.timestamp())
    return template.for_recipient(
        to=email,
        unsubscribe_url="",
        preferences_url="",
        message_id=f"<confirm-{subscriber_id}.{stamp}@{template.domain}>",
        date=format_datetime(now.astimezone(UTC).replace(microsecond=0)),
    )
