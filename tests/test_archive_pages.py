"""The site archive: regions, a region's weeks, a week's items by visible_at, withdrawn items."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.intake.records import RawRecord
from publisher.models import Delivery, Digest, Subscriber
from publisher.pipeline.intake import import_records
from publisher.web.archive_pages import valid_week
from tests.conftest import FixedClockRuntime
from tests.web_support import AUTH, Web, make_web

# Monday 16, 23 and 30 November 2026 open weeks 47, 48 and 49 (UTC).
W47, W48, W49 = "2026-W47", "2026-W48", "2026-W49"


def add(rt: FixedClockRuntime, title: str, published: datetime, regions: list[str]) -> int:
    record = RawRecord(
        source="t", line=1, title=title, summary=f"{title}.", published=published, regions=regions
    )
    with rt.session() as session:
        report = import_records(
            session, records=[record], tree=rt.tree, inferrer=rt.inferrer, now=rt.now()
        )
    assert report.errors == [], report.errors
    return report.ids[0]


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


@pytest.fixture
def archive(runtime: FixedClockRuntime) -> Iterator[tuple[Web, dict[str, int]]]:
    """Items arriving over three weeks; the clock is moved so each arrives when it says."""
    ids = {}
    runtime.fixed_now = at(18)
    ids["w47"] = add(runtime, "Guatemala shelter opens", at(18), ["gt"])
    runtime.fixed_now = at(24)
    ids["w48"] = add(runtime, "Central America report", at(24), ["central-america"])
    # dated in week 47 but entered on 25 November: it became visible in week 48
    runtime.fixed_now = at(25)
    ids["late"] = add(runtime, "Late Panama item", at(17), ["pa"])
    ids["caribbean"] = add(runtime, "Caribbean storm", at(25), ["cu"])
    # future-dated: embargoed until 2 December (week 49)
    ids["future"] = add(runtime, "Honduras census due", datetime(2026, 12, 2, tzinfo=UTC), ["hn"])
    runtime.fixed_now = at(27, 12)
    yield from ((web, ids) for web in make_web(runtime))


def _links(html: str) -> list[str]:
    return re.findall(r'href="(/archive/[^"]+)"', html)


def test_archive_index_lists_regions_with_items(archive: tuple[Web, dict[str, int]]) -> None:
    web, _ = archive
    r = web.client.get("/archive")
    assert r.status_code == 200 and r.text.startswith("<!doctype html>")
    links = _links(r.text)
    for slug in ("/archive/americas", "/archive/central-america", "/archive/gt", "/archive/cu"):
        assert slug in links
    assert "/archive/hn" not in links  # only an embargoed item so far
    assert "/archive/western-africa" not in links


def test_region_lists_its_weeks_by_visibility(archive: tuple[Web, dict[str, int]]) -> None:
    web, _ = archive
    r = web.client.get("/archive/central-america")
    assert r.status_code == 200
    weeks = [x.rsplit("/", 1)[1] for x in _links(r.text) if x.count("/") == 3]
    assert weeks == [W48, W47]
    assert "2 items" in r.text or "3 items" in r.text
    assert 'href="/archive/central-america.atom"' in r.text
    assert web.client.get("/archive/GT").headers["location"] == "/archive/gt"
    assert web.client.get("/archive/atlantis").status_code == 404


def test_week_lists_items_that_became_visible_that_week(
    archive: tuple[Web, dict[str, int]],
) -> None:
    web, _ = archive
    r = web.client.get(f"/archive/central-america/{W48}")
    assert r.status_code == 200
    text = r.text
    assert "Central America report" in text and "Late Panama item" in text
    assert "Guatemala shelter opens" not in text  # week 47
    assert "Caribbean storm" not in text  # another region
    assert "Honduras census due" not in text  # embargoed
    assert text.index("Central America report") < text.index("Late Panama item")  # by visible_at
    assert f'rel="prev" href="/archive/central-america/{W47}"' in text
    assert 'rel="up" href="/archive/central-america"' in text
    assert 'rel="next"' not in text
    assert "%%" not in text and "Unsubscribe" not in text and "sent to" not in text.lower()
    assert '<header class="site">' in text  # the site layout, not the email
    older = web.client.get(f"/archive/central-america/{W47}").text
    assert "Guatemala shelter opens" in older and "Late Panama item" not in older
    assert f'rel="next" href="/archive/central-america/{W48}"' in older
    empty = web.client.get("/archive/central-america/2026-W10")
    assert empty.status_code == 200 and "No news items" in empty.text


def test_the_embargoed_item_joins_its_week_when_it_lifts(
    archive: tuple[Web, dict[str, int]],
) -> None:
    web, _ = archive
    web.runtime.fixed_now = datetime(2026, 12, 2, 1, tzinfo=UTC)  # type: ignore[attr-defined]
    r = web.client.get(f"/archive/hn/{W49}")
    assert "Honduras census due" in r.text
    assert W49 in web.client.get("/archive/hn").text


def test_a_deleted_item_is_withdrawn_never_a_dead_link(
    archive: tuple[Web, dict[str, int]],
) -> None:
    web, ids = archive
    assert web.client.delete(f"/api/items/{ids['w48']}", headers=AUTH).status_code == 204
    page = web.client.get(f"/archive/central-america/{W48}").text
    assert "Central America report" in page and "(withdrawn)" in page
    assert f'href="/items/{ids["w48"]}"' in page
    gone = web.client.get(f"/items/{ids['w48']}")
    assert gone.status_code == 410
    assert "withdrawn" in gone.text.lower() and "Central America report" in gone.text
    assert "/regions/central-america" in gone.text
    # the feeds and the region page no longer show it
    web.state.rebuild_feeds()
    assert "Central America report" not in web.client.get("/regions/central-america").text
    # an embargoed item deleted before it was ever public leaves nothing behind
    assert web.client.delete(f"/api/items/{ids['future']}", headers=AUTH).status_code == 204
    assert web.client.get(f"/items/{ids['future']}").status_code == 404


BAD_WEEKS = [
    "nonsense", "2026-W00", "2026-W54", "2025-W53", "2026-w48", "2026-W4", "2026-W048",
    "1969-W01", "9999-W52", "0000-W01", "２０２６-W48", "2026-W48 ", " 2026-W48", "2026-W4８",
    "2026-W48\u202e", "2026W48", "-2026-W48", "2026-W48.atom", "x" * 5000, "%00", "...",
]  # fmt: skip


def test_bad_weeks_get_a_clear_404_page(archive: tuple[Web, dict[str, int]]) -> None:
    web, _ = archive
    for week in BAD_WEEKS:
        r = web.client.get("/archive/central-america/" + _quote(week))
        assert r.status_code in (400, 404), week
        if r.status_code == 404 and "No such week" in r.text:
            assert "2026-W48" in r.text  # says what a week looks like
    assert "No such week" in web.client.get("/archive/central-america/2026-W54").text


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    week=st.one_of(
        st.text(max_size=20),
        st.from_regex(r"[0-9]{4}-W[0-9]{2}", fullmatch=True),
        st.builds(lambda y, w: f"{y:04d}-W{w:02d}", st.integers(0, 9999), st.integers(0, 99)),
    )
)
def test_any_week_string_is_a_page_or_a_clear_refusal_never_500(
    archive: tuple[Web, dict[str, int]], week: str
) -> None:
    web, _ = archive
    r = web.client.get("/archive/central-america/" + _quote(week))
    assert r.status_code in (200, 301, 307, 400, 404, 405), (week, r.status_code)
    if valid_week(week):
        assert r.status_code == 200
        assert f"week {week}" in r.text


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def test_valid_week_accepts_exactly_canonical_iso_weeks() -> None:
    assert valid_week("2026-W48") and valid_week("2020-W53") and valid_week("1970-W01")
    for week in BAD_WEEKS:
        assert not valid_week(week), week


def test_region_digest_feed_stays_and_parses(archive: tuple[Web, dict[str, int]]) -> None:
    web, _ = archive
    rt = web.runtime
    now = rt.now()
    with rt.session() as session:
        digest = Digest(
            region="central-america", week=W48, status="sent", window_start=now - timedelta(7),
            window_end=now, item_ids=json.dumps([1]), subject="Central America news, week 48",
            html="<p>Week news</p>", text="Week news\n", created=now,
        )  # fmt: skip
        session.add(digest)
        session.flush()
        sub = Subscriber(email="r@example.org", key="k" * 32, status="active", created=now)
        session.add(sub)
        session.flush()
        assert digest.id is not None and sub.id is not None
        session.add(Delivery(digest_id=digest.id, subscriber_id=sub.id, state="sent"))
    feed = web.client.get("/archive/central-america.atom")
    parsed = feedparser.parse(feed.content)
    assert not parsed.bozo and parsed.version == "atom10"
    (entry,) = parsed.entries
    assert entry.title == "Central America news, week 48"
    assert entry.link.endswith(f"/archive/central-america/{W48}")
    page = web.client.get(f"/archive/central-america/{W48}").text
    assert f'href="/archive/central-america/{W48}/email"' in page
    email = web.client.get(f"/archive/central-america/{W48}/email")
    assert email.status_code == 200 and "Week news" in email.text


def test_a_withdrawn_id_is_never_given_to_a_new_item(archive: tuple[Web, dict[str, int]]) -> None:
    """SQLite reuses the highest rowid once its row is gone; the withdrawn link must stay."""
    web, _ = archive
    body = {"title": "Newest item", "summary": "Now.", "regions": ["gt"]}
    newest = web.client.post("/api/items", headers=AUTH, json=body).json()["id"]
    assert web.client.delete(f"/api/items/{newest}", headers=AUTH).status_code == 204
    again = web.client.post("/api/items", headers=AUTH, json={**body, "title": "Corrected"})
    assert again.json()["id"] > newest
    gone = web.client.get(f"/items/{newest}")
    assert gone.status_code == 410 and "Newest item" in gone.text
