"""The format-neutral feed model: what an item and a channel mean before any format writes them.

Renderers take these values and nothing else (no store, no clock), so the same store gives
byte-identical feeds. ``entry_problem`` is the one place that decides whether an entry can be
written safely, and ``render_guarded`` is the one place that keeps a bad entry from breaking a
whole feed; every format goes through both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

ALL = "all"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TITLE = 1_000
MAX_SUMMARY = 100_000
MAX_GUID = 1_000

# Characters XML 1.0 allows (https://www.w3.org/TR/xml/#charsets); anything else is a bad entry.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NOT_IN_URL = re.compile(r"[\s<>\"\\^`{|}]")
_HTTP_URL = re.compile(
    r"https?://(?:[^/?#@]*@)?(?:\[[0-9a-f:.]+\]|[^/?#@:\[\]]+)(?::[0-9]*)?(?:[/?#].*)?",
    re.IGNORECASE | re.DOTALL,
)
_LANG = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
_EMAIL = re.compile(r"[^@\s<>()\"]+@[^@\s<>()\"]+")

SkipHandler = Callable[["FeedEntry", str], None]


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One item as every feed format sees it; the store maps its rows to these."""

    id: int
    guid: str
    title: str
    summary: str
    link: str | None
    published: datetime
    updated: datetime
    regions: tuple[str, ...]
    lang: str = ""  # the item's own language; written only when it is a plain language tag
    image_url: str | None = None
    image_alt: str = ""

    @property
    def language(self) -> str | None:
        """``lang`` if it is a BCP 47-looking tag ("es", "pt-BR"), else None (never written)."""
        return self.lang if _LANG.fullmatch(self.lang) else None

    @property
    def uri(self) -> str:
        """The stable identity written as Atom id, RSS guid and JSON Feed id (a valid URN)."""
        return "urn:publisher:item:" + quote(self.guid, safe="-._~!$&'()*+,;=:@/")


@dataclass(frozen=True, slots=True)
class FeedChannel:
    """One feed's description; validated on creation because a bad channel breaks every format."""

    slug: str
    title: str
    description: str
    base_url: str
    author_name: str
    author_email: str | None
    language: str = "en"
    hub_url: str | None = None  # WebSub hub, advertised as rel="hub"

    def __post_init__(self) -> None:
        for name in ("slug", "title", "base_url", "author_name", "language"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"feed channel {name} is empty")
        for name in ("slug", "title", "description", "author_name", "language"):
            problem = text_problem(getattr(self, name))
            if problem:
                raise ValueError(f"feed channel {name} {problem}")
        if self.base_url.endswith("/") or url_problem(self.base_url):
            raise ValueError(f"feed channel base_url {self.base_url!r} must be http(s), no final /")
        if self.hub_url is not None and url_problem(self.hub_url):
            raise ValueError(f"feed channel hub_url {self.hub_url!r} must be an http(s) URL")
        if self.author_email is not None and not _EMAIL.fullmatch(self.author_email):
            raise ValueError(f"feed channel author_email {self.author_email!r} is not an address")

    @property
    def html_url(self) -> str:
        """The web page this feed mirrors (the home page for the "all" feed)."""
        return f"{self.base_url}/" if self.slug == ALL else f"{self.base_url}/regions/{self.slug}"

    def feed_url(self, ext: str) -> str:
        """Where the file for one format is served, e.g. ``feed_url("rss")``."""
        return f"{self.base_url}/feeds/{self.slug}.{ext}"

    def item_url(self, entry: FeedEntry) -> str:
        """The permalink of one item on this site."""
        return f"{self.base_url}/items/{entry.id}"


def text_problem(value: str) -> str | None:
    """Why a string cannot go into XML 1.0 (controls, lone surrogates, U+FFFE...), or None."""
    if value.isprintable():  # fast path: every printable character is allowed in XML
        return None
    bad = _NOT_XML.search(value)
    return f"contains U+{ord(bad.group()):04X}, which XML 1.0 forbids" if bad else None


def url_problem(url: str) -> str | None:
    """Why a string is not an absolute http(s) URL that can be written unescaped, or None."""
    if not url.isprintable() or _NOT_IN_URL.search(url):
        return "has spaces or characters a URL cannot hold"
    if not _HTTP_URL.fullmatch(url):
        return "is not an absolute http(s) URL"
    return None


def entry_problem(entry: FeedEntry) -> str | None:
    """Why an entry would make a feed invalid, or None; the reason goes into the build report.

    A build checks every stored item, so the common case (nothing wrong) is one expression
    of C-level checks; anything it does not clear gets the detailed check that names the fault.
    """
    try:
        fine = (
            type(entry.id) is int
            and 0 < len(entry.guid) <= MAX_GUID
            and 0 < len(entry.title) <= MAX_TITLE
            and len(entry.summary) <= MAX_SUMMARY
            and (entry.guid + entry.title + entry.summary + "".join(entry.regions)).isprintable()
            and "" not in entry.regions
            and type(entry.regions) is tuple
            and not entry.title.isspace()
            and not entry.guid.isspace()
            and (entry.link is None or _fast_url(entry.link))
            and (entry.image_url is None or _fast_url(entry.image_url))
            and entry.image_alt.isprintable()
            and type(entry.published) is datetime
            and type(entry.updated) is datetime
            and entry.published.utcoffset() is not None
            and entry.updated.utcoffset() is not None
        )
    except (TypeError, AttributeError):  # a wrong type somewhere: _diagnose names it
        fine = False
    return None if fine else _diagnose(entry)


def _fast_url(url: str) -> bool:
    return (
        type(url) is str
        and url.isprintable()
        and _HTTP_URL.fullmatch(url) is not None
        and _NOT_IN_URL.search(url) is None
    )


def _diagnose(entry: FeedEntry) -> str | None:
    if not isinstance(entry.id, int) or isinstance(entry.id, bool):
        return "id is not an integer"
    for name, limit in (("guid", MAX_GUID), ("title", MAX_TITLE), ("summary", MAX_SUMMARY)):
        value = getattr(entry, name)
        if not isinstance(value, str):
            return f"{name} is not text"
        if name != "summary" and not value.strip():
            return f"{name} is empty"
        if len(value) > limit:
            return f"{name} is longer than {limit:,} characters"
        problem = text_problem(value)
        if problem:
            return f"{name} {problem}"
    for name in ("link", "image_url"):
        url = getattr(entry, name)
        if url is not None:
            problem = url_problem(url) if isinstance(url, str) else "is not text"
            if problem:
                return f"{name} {problem}"
    alt = entry.image_alt
    if not isinstance(alt, str) or text_problem(alt):
        return "image_alt is not clean text"
    for name in ("published", "updated"):
        value = getattr(entry, name)
        if not isinstance(value, datetime):
            return f"{name} is not a datetime"
        if value.utcoffset() is None:
            return f"{name} has no time zone"
    if not isinstance(entry.regions, tuple):
        return "regions is not a tuple"
    for slug in entry.regions:
        if not isinstance(slug, str) or not slug or text_problem(slug):
            return f"region {slug!r} is not a slug"
    return None


def usable(
    entries: Sequence[FeedEntry], on_skip: SkipHandler | None, *, checked: bool = False
) -> Sequence[FeedEntry]:
    """The entries that pass ``entry_problem``, in order; the others go to ``on_skip``.

    ``checked`` says the caller already asked ``entry_problem`` (build_feeds does, once per
    entry instead of once per feed and format).
    """
    if checked:
        return entries
    good = []
    for entry in entries:
        problem = entry_problem(entry)
        if problem is None:
            good.append(entry)
        elif on_skip is not None:
            on_skip(entry, problem)
    return good


def render_guarded(
    entries: Sequence[FeedEntry],
    render: Callable[[Sequence[FeedEntry]], bytes],
    on_skip: SkipHandler | None,
) -> bytes:
    """Render all entries at once; if that fails, drop each entry that fails alone and retry.

    The happy path costs one render; the search only runs when something slipped past
    ``entry_problem``, so one bad item still never takes its feed down.
    """
    try:
        return render(entries)
    except Exception:  # whatever broke, find the entries that break it alone
        good = [entry for entry in entries if _renders_alone(entry, render, on_skip)]
    return render(good)


def _renders_alone(
    entry: FeedEntry,
    render: Callable[[Sequence[FeedEntry]], bytes],
    on_skip: SkipHandler | None,
) -> bool:
    try:
        render([entry])
    except Exception as e:  # the failure becomes the entry's skip reason
        if on_skip is not None:
            on_skip(entry, f"cannot be rendered: {type(e).__name__}: {e}")
        return False
    return True


def image_type(url: str) -> str:
    """The media type of an image URL from its extension; JPEG when it does not say."""
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    for ext, kind in ((".png", "image/png"), (".gif", "image/gif"), (".webp", "image/webp"),
                      (".svg", "image/svg+xml"), (".avif", "image/avif")):  # fmt: skip
        if path.endswith(ext):
            return kind
    return "image/jpeg"


def utc(moment: datetime) -> datetime:
    """The same instant in UTC, so every format writes +00:00 whatever the store handed over."""
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def channel_updated(entries: Sequence[FeedEntry]) -> datetime:
    """The feed's last change: its newest entry update, or the epoch when empty (never now)."""
    return utc(max(entry.updated for entry in entries)) if entries else EPOCH


def category_labels(entry: FeedEntry, names: Mapping[str, str]) -> list[str]:
    """The human names of an entry's regions, in stored order, falling back to the slug."""
    labels = [names.get(slug, slug) for slug in entry.regions]
    return list(dict.fromkeys(labels))
