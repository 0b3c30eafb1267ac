"""The feed family: every document is read back by a real parser, and bad items never break one.

Expected-output files live in tests/expected/feeds/. After a deliberate change to the output,
regenerate them and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_syndication.py -k golden
"""

from __future__ import annotations

import json
import os
import random
import stat
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from html import unescape
from pathlib import Path
from typing import Any

import feedparser
import pytest

from publisher.syndication import (
    ALL,
    DirectoryWriter,
    FeedChannel,
    FeedEntry,
    JsonRenderer,
    XmlRenderer,
    build_feeds,
    entry_problem,
    plan_feeds,
    render_atom,
    render_json,
    render_opml,
    render_rss,
)
from tests.feed_support import shown

GOLDEN = Path(__file__).parent / "expected" / "feeds"
BASE = "http://127.0.0.1:8000"
ATOM = "{http://www.w3.org/2005/Atom}"
T0 = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)

# A small M49-shaped tree: world > americas > latin-america-and-the-caribbean > central-america.
PARENT: dict[str, str | None] = {
    "world": None,
    "americas": "world",
    "europe": "world",
    "western-europe": "europe",
    "fr": "western-europe",
    "northern-america": "americas",
    "us": "northern-america",
    "latin-america-and-the-caribbean": "americas",
    "central-america": "latin-america-and-the-caribbean",
    "caribbean": "latin-america-and-the-caribbean",
    "south-america": "latin-america-and-the-caribbean",
    "br": "south-america",
    "cu": "caribbean",
    "dm": "caribbean",
    "bz": "central-america",
    "cr": "central-america",
    "gt": "central-america",
    "mx": "central-america",
}
NAMES = {
    "world": "World",
    "americas": "Americas",
    "central-america": "Central America",
    "caribbean": "Caribbean",
    "bz": "Belize",
    "cr": "Costa Rica",
    "gt": "Guatemala",
    "mx": "Mexico",
}


def related(slug: str) -> frozenset[str]:
    """The region, its ancestors and its descendants (DESIGN.md, "Regions")."""
    if slug not in PARENT:
        raise KeyError(slug)

    def chain(node: str | None) -> set[str]:
        found = set()
        while node is not None:
            found.add(node)
            node = PARENT[node]
        return found

    return frozenset({s for s in PARENT if slug in chain(s)} | chain(slug))


def channel(slug: str = "central-america", email: str | None = "news@example.org") -> FeedChannel:
    title = "All regions" if slug == ALL else NAMES.get(slug, slug)
    return FeedChannel(
        slug=slug,
        title=f"Regional News: {title}",
        description=f"Short news items about {title}.",
        base_url=BASE,
        author_name="Regional News",
        author_email=email,
    )


def entry(n: int, *regions: str, **changes: Any) -> FeedEntry:
    """Entry n, published n hours after T0 (higher n = newer)."""
    base = FeedEntry(
        id=n,
        guid=f"seed-{n}",
        title=f"Item {n}",
        summary=f"Summary of item {n}.",
        link=None,
        published=T0 + timedelta(hours=n),
        updated=T0 + timedelta(hours=n, minutes=30),
        regions=regions or ("gt",),
    )
    return replace(base, **changes)


FIXED = [  # newest first, as plan_feeds hands them over
    entry(
        4,
        "americas",
        title="Centroamérica: niñez migrante — “datos” & cifras",
        summary="Text with ]]> and </description> and <script>alert(1)</script> stays text.",
    ),
    entry(
        3,
        "bz",
        title="Belize strengthens data collection on trafficking in persons",
        summary="Belize launched the new TIP Module on the Ministry's case management system.",
    ),
    entry(
        2,
        "mx",
        title="Mexican states share their best experiences in implementing migration policy",
        summary="A report on good practices at the local level in twelve Mexican states.",
        link="https://www.iom.int/news/mexican-states?lang=en&page=2",
    ),
    entry(
        1,
        "cr",
        "central-america",
        title="IOM and Costa Rica strengthen the regularization of students",
        summary="Students in an irregular situation are at a disadvantage.\nSecond line.",
        link="https://costarica.iom.int/news/students",
    ),
]
RENDERERS: dict[str, Callable[..., bytes]] = {
    "rss": render_rss,
    "atom": render_atom,
    "json": render_json,
}


def parse_feed(data: bytes, kind: str) -> Any:
    """feedparser for XML (must be well-formed: bozo false), json for JSON Feed."""
    if kind == "json":
        return json.loads(data)
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == {"rss": "rss20", "atom": "atom10"}[kind]
    return parsed


def read_back(data: bytes, kind: str) -> list[dict[str, Any]]:
    """Each entry as id, title, link, published, tags, summary, via a real parser."""
    parsed = parse_feed(data, kind)
    if kind == "json":
        return [
            {
                "id": item["id"],
                "title": item["title"],
                "link": item["url"],
                "published": datetime.fromisoformat(item["date_published"]),
                "tags": item.get("tags", []),
                "summary": item["content_text"],
            }
            for item in parsed["items"]
        ]
    return [
        {
            "id": e.id,
            "title": shown(e.title_detail),
            "link": e.link,
            "published": datetime(*e.published_parsed[:6], tzinfo=UTC),
            "tags": [t.term for t in e.get("tags", [])],
            # What a reader displays, whether feedparser took the value as HTML or as text.
            "summary": shown(e.summary_detail),
        }
        for e in parsed.entries
    ]


def expected_back(entries: Sequence[FeedEntry]) -> list[dict[str, Any]]:
    return [
        {
            "id": f"urn:publisher:item:{e.guid}",
            "title": e.title,
            "link": f"{BASE}/items/{e.id}",
            "published": e.published,
            "tags": [NAMES.get(r, r) for r in e.regions],
            "summary": e.summary,
        }
        for e in entries
    ]


# --- each format, read back -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rss", "atom", "json"])
def test_every_format_reads_back_entry_by_entry(kind: str) -> None:
    data = RENDERERS[kind](channel(), FIXED, category_names=NAMES)
    assert read_back(data, kind) == expected_back(FIXED)


def test_rss_has_what_rss_2_requires() -> None:
    data = render_rss(channel(), FIXED, category_names=NAMES)
    root = ET.fromstring(data)
    assert root.tag == "rss"
    assert root.get("version") == "2.0"
    chan = root.find("channel")
    assert chan is not None
    for name in ("title", "link", "description", "lastBuildDate", "managingEditor"):
        assert (chan.findtext(name) or "").strip(), name
    assert chan.findtext("link") == f"{BASE}/regions/central-america"
    self_link = chan.find(f"{ATOM}link[@rel='self']")
    assert self_link is not None
    assert self_link.get("href") == f"{BASE}/feeds/central-america.rss"
    assert chan.findtext("managingEditor") == "news@example.org (Regional News)"
    assert chan.findtext("generator") == "publisher"  # no version that changes on upgrade
    items = chan.findall("item")
    assert len(items) == len(FIXED)
    for item, e in zip(items, FIXED, strict=True):
        assert unescape(item.findtext("title") or "") == e.title  # escaped text, as descriptions
        guid = item.find("guid")
        assert guid is not None
        assert guid.get("isPermaLink") == "false"
        assert guid.text == f"urn:publisher:item:{e.guid}"
        assert parsedate_to_datetime(item.findtext("pubDate") or "") == e.published
        assert unescape(item.findtext("description") or "") == e.summary


def test_atom_has_what_rfc_4287_requires() -> None:
    data = render_atom(channel(), FIXED, category_names=NAMES)
    root = ET.fromstring(data)
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated"):
        assert (root.findtext(f"{ATOM}{name}") or "").strip(), name
    assert root.findtext(f"{ATOM}author/{ATOM}name") == "Regional News"
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
    assert links == {
        "self": f"{BASE}/feeds/central-america.atom",
        "alternate": f"{BASE}/regions/central-america",
    }
    assert root.findtext(f"{ATOM}updated") == max(e.updated for e in FIXED).isoformat()
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == len(FIXED)
    for element, e in zip(entries, FIXED, strict=True):
        for name in ("id", "title", "updated", "published"):
            assert (element.findtext(f"{ATOM}{name}") or "").strip(), name
        assert element.findtext(f"{ATOM}summary") == e.summary  # type="text": no escaping
        rels = [(link.get("rel"), link.get("href")) for link in element.findall(f"{ATOM}link")]
        expected = [("alternate", f"{BASE}/items/{e.id}")]
        if e.link:
            expected.append(("related", e.link))
        assert rels == expected  # RFC 4287: at most one alternate per type and language


def test_json_feed_has_the_1_1_shape() -> None:
    doc = json.loads(render_json(channel(), FIXED, category_names=NAMES))
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert doc["home_page_url"] == f"{BASE}/regions/central-america"
    assert doc["feed_url"] == f"{BASE}/feeds/central-america.json"
    assert doc["authors"] == [{"name": "Regional News", "url": "mailto:news@example.org"}]
    assert doc["language"] == "en"
    for item, e in zip(doc["items"], FIXED, strict=True):
        assert isinstance(item["id"], str)
        assert "content_text" in item
        assert item.get("external_url") == e.link
        assert item["date_published"].endswith("Z")
        assert datetime.fromisoformat(item["date_modified"]) == e.updated


def test_opml_lists_one_rss_outline_per_channel() -> None:
    channels = [channel(ALL), channel("central-america"), channel("gt")]
    root = ET.fromstring(render_opml(channels, title="Regional News feeds", date=T0))
    assert root.tag == "opml"
    assert root.get("version") == "2.0"
    assert root.findtext("head/title") == "Regional News feeds"
    assert parsedate_to_datetime(root.findtext("head/dateModified") or "") == T0
    outlines = root.findall("body/outline")
    assert [(o.get("type"), o.get("xmlUrl"), o.get("htmlUrl")) for o in outlines] == [
        ("rss", f"{BASE}/feeds/all.rss", f"{BASE}/"),
        ("rss", f"{BASE}/feeds/central-america.rss", f"{BASE}/regions/central-america"),
        ("rss", f"{BASE}/feeds/gt.rss", f"{BASE}/regions/gt"),
    ]
    assert all(o.get("text") == o.get("title") == c.title for o, c in zip(outlines, channels))


def test_channel_without_email_stays_valid() -> None:
    plain = channel(email=None)
    rss = render_rss(plain, FIXED, category_names=NAMES)
    chan = ET.fromstring(rss).find("channel")
    assert chan is not None
    assert chan.find("managingEditor") is None  # RSS wants an address there, never a bare name
    assert chan.findtext("{http://purl.org/dc/elements/1.1/}creator") == "Regional News"
    assert parse_feed(rss, "rss").feed.title == plain.title
    atom = parse_feed(render_atom(plain, FIXED, category_names=NAMES), "atom")
    assert atom.feed.author_detail == {"name": "Regional News"}


@pytest.mark.parametrize("kind", ["rss", "atom", "json"])
def test_an_empty_feed_is_valid_and_dated_by_the_epoch(kind: str) -> None:
    data = RENDERERS[kind](channel(), [], category_names=NAMES)
    assert read_back(data, kind) == []
    if kind != "json":
        parsed = parse_feed(data, kind)
        assert parsed.feed.updated_parsed[:3] == (1970, 1, 1)


def test_regions_without_a_name_fall_back_to_the_slug() -> None:
    e = entry(1, "gt", "xx-unknown", "gt")
    doc = json.loads(render_json(channel(), [e], category_names=NAMES))
    assert doc["items"][0]["tags"] == ["Guatemala", "xx-unknown"]


# --- determinism and expected-output files -----------------------------------------------


def render_all_formats() -> dict[str, bytes]:
    channels = [channel(ALL), channel("central-america"), channel("gt", email=None)]
    return {
        "central-america.rss": render_rss(channel(), FIXED, category_names=NAMES),
        "central-america.atom": render_atom(channel(), FIXED, category_names=NAMES),
        "central-america.json": render_json(channel(), FIXED, category_names=NAMES),
        "index.opml": render_opml(channels, title="Regional News: all feeds", date=T0),
    }


def test_output_never_depends_on_the_clock() -> None:
    first = render_all_formats()
    time.sleep(1.1)  # RSS dates have one-second resolution
    assert render_all_formats() == first
    today = datetime.now(UTC)
    for data in first.values():
        assert today.strftime("%d %b %Y").encode() not in data
        assert today.date().isoformat().encode() not in data


def test_golden_files() -> None:
    rendered = render_all_formats()
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name, data in rendered.items():
            (GOLDEN / name).write_bytes(data)
    for name, data in rendered.items():
        assert (GOLDEN / name).read_bytes() == data, f"{name} differs; see the module docstring"


def test_reused_renderers_give_the_same_bytes_as_fresh_ones() -> None:
    xml, js = XmlRenderer(NAMES), JsonRenderer(NAMES)
    for slug in ("central-america", "gt", ALL, "central-america"):
        chan = channel(slug)
        rss, atom = xml.both(chan, FIXED)
        assert rss == render_rss(chan, FIXED, category_names=NAMES)
        assert atom == render_atom(chan, FIXED, category_names=NAMES)
        assert js.render(chan, FIXED) == render_json(chan, FIXED, category_names=NAMES)
    edited = [replace(FIXED[0], title="Edited title"), *FIXED[1:]]
    assert b"Edited title" in xml.both(channel(), edited)[0]  # cached by value: never stale


# --- one bad item never breaks a feed ------------------------------------------------------

GOOD_A, GOOD_B = entry(20, "gt"), entry(10, "cr")
BAD = {
    "NUL in title": entry(15, title="Costa\x00 Rica"),
    "vertical tab in title": entry(15, title="Costa\x0b Rica"),
    "escape in title": entry(15, title="Costa\x1b Rica"),
    "lone surrogate in title": entry(15, title="Costa \ud800 Rica"),
    "U+FFFE in summary": entry(15, summary="bad \ufffe char"),
    "1 MB summary": entry(15, summary="migrantes " * 100_000),
    "naive published": entry(15, published=datetime(2025, 3, 4, 0, 0)),
    "naive updated": entry(15, updated=datetime(2025, 3, 4, 0, 0)),
    "javascript link": entry(15, link="javascript:alert(1)"),
    "link with a space": entry(15, link="https://example.org/a b"),
    "blank title": entry(15, title="   "),
    "empty guid": entry(15, guid=""),
    "regions not a tuple": entry(15, regions=["gt"]),
}


@pytest.mark.parametrize("kind", ["rss", "atom", "json"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_entry_is_skipped_and_the_rest_renders(kind: str, case: str) -> None:
    skipped: list[tuple[int, str]] = []
    data = RENDERERS[kind](
        channel(),
        [GOOD_A, BAD[case], GOOD_B],
        category_names=NAMES,
        on_skip=lambda e, why: skipped.append((e.id, why)),
    )
    assert [e["id"] for e in read_back(data, kind)] == [
        "urn:publisher:item:seed-20",
        "urn:publisher:item:seed-10",
    ]
    assert [i for i, _ in skipped] == [15]
    assert entry_problem(BAD[case]) == skipped[0][1]


@pytest.mark.parametrize("kind", ["rss", "atom", "json"])
def test_markup_like_text_round_trips_as_text(kind: str) -> None:
    tricky = entry(
        1,
        title="A ]]> title </title> with <b>tags</b> & “quotes”",
        summary="]]> then </description></item> then <script>alert(1)</script> & &amp;",
    )
    [back] = read_back(RENDERERS[kind](channel(), [tricky], category_names=NAMES), kind)
    assert back["title"] == tricky.title
    assert back["summary"] == tricky.summary


@pytest.mark.parametrize(
    ("kind", "bad"),
    [("rss", entry(15, title="Costa\x00 Rica")), ("atom", entry(15, title="Costa\x00 Rica")),
     ("json", entry(15, title="Costa \ud800 Rica"))],
)  # fmt: skip
def test_the_render_guard_catches_what_the_check_missed(
    kind: str, bad: FeedEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("publisher.syndication.entries.entry_problem", lambda e: None)
    skipped: list[tuple[int, str]] = []
    data = RENDERERS[kind](
        channel(), [GOOD_A, bad, GOOD_B], category_names=NAMES,
        on_skip=lambda e, why: skipped.append((e.id, why)),
    )  # fmt: skip
    assert len(read_back(data, kind)) == 2
    assert skipped[0][0] == 15
    assert skipped[0][1].startswith("cannot be rendered")


ODD_BUT_VALID = [
    entry(1, summary=""),
    entry(2, summary="tab\tnew\nline\r\n and private use \ue000 and emoji 🌎"),
    entry(3, link="HTTPS://EXAMPLE.ORG"),
    entry(4, link="http://[::1]:8000/items?a=1#frag"),
    entry(5, link="https://es.wikipedia.org/wiki/México"),
    entry(6, published=datetime(2025, 3, 4, 1, 0, tzinfo=UTC).astimezone()),
    entry(7, regions=()),
]
WRONG_TYPES = [entry(1, id=True), entry(1, title=None), entry(1, regions=("gt", 3)),
               entry(1, link=b"https://x.org"), entry(1, published="2025-03-04")]  # fmt: skip


def test_the_fast_check_and_the_detailed_one_agree() -> None:
    from publisher.syndication.entries import _diagnose

    for e in [*FIXED, *ODD_BUT_VALID]:
        assert entry_problem(e) is None, e
        assert _diagnose(e) is None, e
    for e in [*BAD.values(), *WRONG_TYPES]:
        assert entry_problem(e), e
        assert _diagnose(e), e  # whatever the fast path refuses, the detailed one names


def test_non_utc_times_are_written_in_utc() -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2025, 3, 4, 8, 0, tzinfo=ZoneInfo("America/Guatemala"))  # UTC-6
    doc = json.loads(render_json(channel(), [entry(1, published=local)], category_names=NAMES))
    assert doc["items"][0]["date_published"] == "2025-03-04T14:00:00Z"


def test_a_bad_channel_is_refused_when_made() -> None:
    with pytest.raises(ValueError, match="base_url"):
        replace(channel(), base_url=f"{BASE}/")
    with pytest.raises(ValueError, match="title"):
        replace(channel(), title="bad\x00")
    with pytest.raises(ValueError, match="author_email"):
        replace(channel(), author_email="Regional News")


# --- plan -------------------------------------------------------------------------------------


def planned_ids(plan: dict[str, list[FeedEntry]]) -> dict[str, list[int]]:
    return {slug: [e.id for e in entries] for slug, entries in plan.items()}


def test_an_entry_reaches_its_region_its_ancestors_and_all() -> None:
    plan = plan_feeds([entry(1, "gt")], related=related, slugs=PARENT)
    assert list(plan) == [
        ALL,
        "americas",
        "central-america",
        "gt",
        "latin-america-and-the-caribbean",
        "world",
    ]


def test_an_entry_about_a_wide_region_reaches_every_region_inside_it() -> None:
    plan = planned_ids(plan_feeds([entry(1, "americas")], related=related, slugs=PARENT))
    for slug in ("americas", "central-america", "gt", "caribbean", "cu", "us", "world", ALL):
        assert plan[slug] == [1], slug
    assert "europe" not in plan
    assert "fr" not in plan


def test_membership_follows_the_tree_and_no_further() -> None:
    entries = [entry(1, "gt"), entry(2, "cu"), entry(3, "central-america"), entry(4, "fr")]
    plan = planned_ids(plan_feeds(entries, related=related, slugs=PARENT))
    assert plan["gt"] == [3, 1]
    assert plan["caribbean"] == [2]  # the gt item stays out of the Caribbean
    assert plan["central-america"] == [3, 1]
    assert plan["latin-america-and-the-caribbean"] == [3, 2, 1]
    assert plan["world"] == [4, 3, 2, 1]
    assert plan["europe"] == [4]
    assert "us" not in plan  # nothing about Northern America: no feed
    assert plan[ALL] == [4, 3, 2, 1]


def test_newest_first_ties_broken_by_id_and_limited() -> None:
    same_time = [entry(n, published=T0) for n in (5, 9, 7)]
    entries = [*same_time, entry(1, published=T0 - timedelta(hours=1)), entry(30)]
    plan = planned_ids(plan_feeds(entries, related=related, slugs=["gt"], limit=3))
    assert plan == {ALL: [30, 9, 7], "gt": [30, 9, 7]}


def test_only_candidate_slugs_get_feeds_and_unknown_tags_do_not_crash() -> None:
    entries = [entry(1, "gt"), entry(2, "not-a-region"), entry(3, "")]
    plan = planned_ids(plan_feeds(entries, related=related, slugs=["central-america", ALL]))
    assert plan == {ALL: [3, 2, 1], "central-america": [1]}


def brute_force(entries: Sequence[FeedEntry], slugs: Sequence[str], limit: int) -> dict:
    newest = sorted(entries, key=lambda e: (e.published, e.id), reverse=True)
    plan = {ALL: [e.id for e in newest[:limit]]}
    for slug in sorted(slugs):
        ids = [e.id for e in newest if related(slug) & set(e.regions)][:limit]
        if ids:
            plan[slug] = ids
    return plan


@pytest.mark.parametrize("seed", range(5))
def test_plan_matches_the_slow_obvious_definition(seed: int) -> None:
    rng = random.Random(seed)
    tags = sorted(PARENT)
    entries = [
        entry(n, *rng.sample(tags, rng.choice([1, 1, 2])),
              published=T0 + timedelta(minutes=rng.randrange(50)))
        for n in rng.sample(range(1, 1000), 300)
    ]  # fmt: skip
    slugs = rng.sample(tags, 12)
    limit = rng.choice([1, 5, 20])
    plan = plan_feeds(entries, related=related, slugs=slugs, limit=limit)
    assert planned_ids(plan) == brute_force(entries, slugs, limit)


def test_plan_asks_accept_only_about_entries_a_feed_has_room_for() -> None:
    entries = [entry(n) for n in range(1, 101)]
    asked: list[int] = []

    def accept(e: FeedEntry) -> bool:
        asked.append(e.id)
        return e.id % 10 != 0  # every tenth entry is "bad"

    plan = planned_ids(plan_feeds(entries, related=related, slugs=["gt"], limit=5, accept=accept))
    assert plan["gt"] == [99, 98, 97, 96, 95]  # 100 was refused, the next one took its place
    assert asked == [100, 99, 98, 97, 96, 95]


def test_the_real_region_tree_when_it_is_there() -> None:
    tree_module = pytest.importorskip("publisher.regions.tree")
    tree = tree_module.RegionTree.load()
    slugs = ["gt", "central-america", "latin-america-and-the-caribbean", "americas", "caribbean"]
    plan = plan_feeds([entry(1, "gt"), entry(2, "americas")], related=tree.related, slugs=slugs)
    ids = planned_ids(plan)
    assert ids["gt"] == ids["central-america"] == ids["americas"] == [2, 1]
    assert ids["caribbean"] == [2]


# --- build and write ---------------------------------------------------------------------------


class MemoryWriter:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def write(self, name: str, data: bytes) -> None:
        self.files[name] = data


def build(entries: Sequence[FeedEntry], writer: Any, limit: int = 50) -> Any:
    return build_feeds(
        entries, channel_for=channel, related=related, slugs=PARENT,
        category_names=NAMES, writer=writer, limit=limit,
    )  # fmt: skip


def test_build_writes_the_family_and_reports_bad_items_once() -> None:
    bad = [replace(e, id=100 + i) for i, e in enumerate(BAD.values())]
    writer = MemoryWriter()
    report = build([*FIXED, *bad, entry(5, "cu")], writer)
    feeds = [ALL, *sorted(set(PARENT) - {"europe", "western-europe", "fr"})]
    names = [f"{slug}.{ext}" for slug in feeds for ext in ("rss", "atom", "json")]
    assert report.files == [*names, "index.opml"]
    assert sorted(writer.files) == sorted(report.files)
    assert report.changed == report.files  # a writer that cannot tell counts as changed
    assert sorted(report.skipped) == sorted(
        (e.id, entry_problem(e) or "") for e in bad
    )  # each bad item once, though it would have been in several feeds
    assert report.per_feed["all"] == 5
    assert report.per_feed["gt"] == 2  # the americas item (4), the central-america one (1)
    assert report.per_feed["bz"] == 3  # and its own (3)
    assert report.per_feed["caribbean"] == 2
    for name, data in writer.files.items():
        kind = name.rsplit(".", 1)[1]
        if kind != "opml":
            assert all(
                e["id"].startswith("urn:publisher:item:seed-") for e in read_back(data, kind)
            )
    outlines = ET.fromstring(writer.files["index.opml"]).findall("body/outline")
    assert [o.get("xmlUrl") for o in outlines] == [f"{BASE}/feeds/{s}.rss" for s in feeds]


def test_build_with_no_entries_still_writes_all_and_the_index() -> None:
    writer = MemoryWriter()
    report = build([], writer)
    assert report.files == ["all.rss", "all.atom", "all.json", "index.opml"]
    assert report.per_feed == {ALL: 0}


def test_directory_writer_only_touches_changed_files(tmp_path: Path) -> None:
    out = tmp_path / "feeds"
    first = build(FIXED, DirectoryWriter(out))
    assert first.changed == first.files
    assert sorted(p.name for p in out.iterdir()) == sorted(first.files)  # no temporary files
    assert stat.S_IMODE((out / "all.rss").stat().st_mode) == 0o644
    old = time.time() - 3600
    for path in out.iterdir():
        os.utime(path, (old, old))
    again = build(FIXED, DirectoryWriter(out))
    assert again.changed == []
    assert all(p.stat().st_mtime == old for p in out.iterdir())  # Last-Modified stays put
    edited = build([replace(FIXED[0], title="Edited"), *FIXED[1:]], DirectoryWriter(out))
    assert "americas.rss" in edited.changed
    assert "index.opml" not in edited.changed
    assert (out / "americas.rss").stat().st_mtime > old


def test_directory_writer_removes_feeds_that_no_longer_exist(tmp_path: Path) -> None:
    out = tmp_path / "feeds"
    build(FIXED, DirectoryWriter(out))
    others = {"README.txt": "not a feed", "notes.json": '{"a": 1}', "x.rss": "<rss/>"}
    for name, text in others.items():
        (out / name).write_text(text)
    report = build([entry(1, "cu")], DirectoryWriter(out))
    assert {"bz.rss", "bz.atom", "bz.json"} <= set(report.removed)
    assert not (out / "bz.rss").exists()
    assert (out / "cu.rss").exists()
    assert all((out / name).read_text() == text for name, text in others.items())


@pytest.mark.parametrize("name", ["", "../x.rss", "a/b.rss", ".hidden"])
def test_directory_writer_refuses_paths(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        DirectoryWriter(tmp_path).write(name, b"x")
