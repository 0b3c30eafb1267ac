"""The shape of an incoming item before and after cleaning, and the cleaning itself.

Readers only split files into ``RawRecord``s; ``clean_record`` is the one gate every
record passes through, whatever its format, so the rules live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from publisher.errors import InputError
from publisher.intake.language import clean_lang, detect_language
from publisher.links import check_link
from publisher.text import MAX_ALT, MAX_GUID, MAX_SUMMARY, MAX_TITLE, clean_field, content_guid


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as a reader found it, with where it came from."""

    source: str
    line: int
    title: object = None
    summary: object = None
    link: object = None
    published: object = None
    regions: object = None
    guid: object = None
    lang: object = None
    image_url: object = None
    image_alt: object = None


@dataclass(frozen=True, slots=True)
class NewItem:
    """A cleaned item ready for the store; ``regions`` empty means 'infer them'."""

    guid: str
    title: str
    summary: str
    link: str | None
    published: datetime | None
    regions: tuple[str, ...] = field(default=())
    source: str = ""
    line: int = 0
    lang: str = ""
    image_url: str | None = None
    image_alt: str = ""


def parse_published(value: object) -> datetime | None:
    """Parse an ISO 8601 time; a time without a zone is taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as e:
            raise InputError(f"published {value[:40]!r} is not an ISO 8601 time") from e
    else:
        raise InputError("published must be an ISO 8601 string")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_regions(value: object) -> tuple[str, ...]:
    """Regions as given: a space- or comma-separated string or a list of strings."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        parts = value.replace(",", " ").split()
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        parts = [str(v).strip() for v in value]
    else:
        raise InputError("regions must be slugs separated by spaces, or a list of slugs")
    return tuple(dict.fromkeys(p.lower() for p in parts if p))


def _text(value: object, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InputError(f"{name} must be text, not {type(value).__name__}")


def clean_record(raw: RawRecord) -> NewItem:
    """Validate and clean one record, raising InputError (with its location) if it is unusable."""
    try:
        title = clean_field(_text(raw.title, "title"), name="title", limit=MAX_TITLE, required=True)
        summary = clean_field(_text(raw.summary, "summary"), name="summary", limit=MAX_SUMMARY)
        link = check_link(_text(raw.link, "link")) if raw.link else None
        image_url = check_link(_text(raw.image_url, "image_url"), name="image_url")
        image_alt = clean_field(_text(raw.image_alt, "image_alt"), name="image_alt", limit=MAX_ALT)
        guid_in = (
            clean_field(_text(raw.guid, "guid"), name="guid", limit=MAX_GUID) if raw.guid else ""
        )
        return NewItem(
            guid=guid_in or content_guid(title, summary),
            title=title,
            summary=summary,
            link=link,
            published=parse_published(raw.published) if raw.published else None,
            regions=parse_regions(raw.regions) if raw.regions else (),
            source=raw.source,
            line=raw.line,
            lang=clean_lang(raw.lang) if raw.lang else detect_language(title, summary),
            image_url=image_url,
            image_alt=image_alt if image_url else "",
        )
    except InputError as e:
        raise InputError(e.reason, source=raw.source, line=raw.line) from e
