"""Public pages: home, region, item, archive (HTML and Atom), errors; escaping and link rules."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from publisher.email.render import PLACEHOLDERS
from publisher.models import Delivery, Digest, Item, ItemRegion, Subscriber
from publisher.runtime import Runtime
from publisher.web.security import ARCHIVE_CSP
from tests.web_support import Web, seeded_web


@pytest.fixture
def web(runtime: Runtime) -> Iterator[Web]:
    """The app over the seeded demo store, on SQLite and PostgreSQL."""
    yield from seeded_web(runtime)


AUTODISCOVERY = (
    '<link rel="alternate" type="application/rss+xml"',
    '<link rel="alternate" type="application/atom+xml"',
    '<link rel="alternate" type="application/feed+json"',
)


def assert_page(html: str) -> None:
    assert html.startswith("<!doctype html>")
    assert '<html lang="en">' in html
    assert '<meta name="viewport"' in html
    for link in AUTODISCOVERY:
        assert link in html
    assert "<script" not in html
    assert '<link rel="icon" href="data:,">' in html  # no /favicon.ico request


def test_home_lists_regions_items_and_the_form(web: Web) -> None:
    r = web.client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert_page(r.text)
    assert 'href="/feeds/all.rss"' in r.text
    assert 'href="/regions/central-america"' in r.text
    assert 'href="/feeds/central-america.atom"' in r.text
    assert '<form class="subscribe" method="post" action="/subscribe">' in r.text
    assert '<label for="email">' in r.text and 'name="website"' in r.text
    assert "Costa Rica" in r.text
    # headings in order: one h1, then h2s
    assert r.text.count("<h1") == 1
    assert r.text.index("<h1") < r.text.index("<h2")


def test_region_page_has_its_feeds_and_items(web: Web) -> None:
    r = web.client.get("/regions/central-america")
    assert r.status_code == 200
    assert_page(r.text)
    assert 'href="/feeds/central-america.rss"' in r.text
    assert "<h1>Central America</h1>" in r.text and "Centroamérica" not in r.text
    spanish = web.client.get("/regions/central-america?lang=es")
    assert "<h1>Centroamérica</h1>" in spanish.text
    assert 'value="central-america" checked' in r.text
    assert "/items/" in r.text


def test_region_aliases_redirect_and_unknown_regions_are_404(web: Web) -> None:
    r = web.client.get("/regions/GT")
    assert r.status_code == 301
    assert r.headers["location"] == "/regions/gt"
    r = web.client.get("/regions/atlantis")
    assert r.status_code == 404
    assert_page(r.text)
    assert "Page not found" in r.text


def test_item_page_and_missing_items(web: Web) -> None:
    with web.runtime.session() as session:
        item_id = session.exec(sa.select(Item.id).limit(1)).scalar_one()  # type: ignore[call-overload]
    r = web.client.get(f"/items/{item_id}")
    assert r.status_code == 200
    assert_page(r.text)
    for path in ("/items/999999", "/items/abc", "/items/-1", "/items/" + "9" * 40):
        assert web.client.get(path).status_code == 404


def _insert_raw(web: Web, **fields: object) -> int:
    """An item written around intake's cleaning, as a hostile store row would be."""
    now = web.runtime.now()
    values = {
        "guid": "raw-1",
        "title": "t",
        "summary": "",
        "link": None,
        "source": "test",
        "published": now,
        "updated": now,
        "created": now,
        "visible_at": now,
        **fields,
    }
    with web.runtime.session() as session:
        session.execute(sa.insert(Item), values)
        item_id = session.execute(
            sa.select(Item.id).where(Item.guid == values["guid"])
        ).scalar_one()  # type: ignore[arg-type]
        session.execute(sa.insert(ItemRegion), {"item_id": item_id, "region": "gt"})
    return int(item_id)


def test_only_http_links_are_rendered_and_text_is_escaped(web: Web) -> None:
    evil = _insert_raw(
        web,
        guid="evil",
        title="<script>alert(1)</script> & co",
        summary="<img src=x onerror=alert(1)>",
        link="javascript:alert(1)",
    )
    good = _insert_raw(web, guid="good", title="Fine", link="https://example.org/story?a=1&b=2")
    r = web.client.get(f"/items/{evil}")
    assert r.status_code == 200
    assert (
        "<script>alert" not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in r.text
    )
    assert "<img" not in r.text
    assert "javascript:" not in r.text
    r = web.client.get(f"/items/{good}")
    assert 'href="https://example.org/story?a=1&amp;b=2"' in r.text


def _digest(web: Web, *, status: str, sent: bool, week: str = "2026-W47") -> None:
    now = web.runtime.now()
    html = (
        "<!doctype html><html><body><p style='color:#333'>Week news</p>"
        f"<a href='{PLACEHOLDERS[1]}'>Unsubscribe</a> <a href='{PLACEHOLDERS[2]}'>Prefs</a>"
        f"<p>Sent to {PLACEHOLDERS[0]}</p></body></html>"
    )
    text = f"Week news\nUnsubscribe: {PLACEHOLDERS[1]}\nSent to {PLACEHOLDERS[0]}\n"
    with web.runtime.session() as session:
        digest = Digest(
            region="central-america",
            week=week,
            status=status,
            window_start=now - timedelta(days=7),
            window_end=now,
            item_ids=json.dumps([1]),
            subject=f"Central America news, {week}",
            html=html,
            text=text,
            created=now,
        )
        session.add(digest)
        session.flush()
        if sent:
            sub = Subscriber(email="r@example.org", key="k" * 32, status="active", created=now)
            session.add(sub)
            session.flush()
            session.add(Delivery(digest_id=digest.id, subscriber_id=sub.id, state="sent"))  # type: ignore[arg-type]


def test_archive_shows_sent_digests_without_personal_data(web: Web) -> None:
    _digest(web, status="assembled", sent=True)
    week = web.client.get("/archive/central-america/2026-W47")
    assert 'href="/archive/central-america/2026-W47/email"' in week.text
    r = web.client.get("/archive/central-america/2026-W47/email")
    assert r.status_code == 200
    assert "Week news" in r.text
    assert "%%" not in r.text and "r@example.org" not in r.text and "unsubscribe/" not in r.text
    assert r.headers["content-security-policy"] == ARCHIVE_CSP
    region = web.client.get("/regions/central-america").text
    assert 'href="/archive/central-america/2026-W47"' in region
    assert 'type="application/atom+xml" title="Central America weekly digests"' in region
    feed = web.client.get("/archive/central-america.atom")
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("application/atom+xml")
    root = ET.fromstring(feed.content)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = root.findall("a:entry", ns)
    assert len(entries) == 1
    assert entries[0].findtext("a:title", namespaces=ns) == "Central America news, 2026-W47"
    assert "%%" not in feed.text


NOT_ARCHIVED = (
    "/archive/central-america/2026-W46/email",
    "/archive/central-america/nonsense",
    "/archive/atlantis/2026-W47",
    "/archive/atlantis.atom",
)


def test_archive_404s(web: Web) -> None:
    _digest(web, status="assembled", sent=False, week="2026-W46")  # never sent: not public
    for path in NOT_ARCHIVED:
        assert web.client.get(path).status_code == 404, path


def test_healthz_and_static(web: Web) -> None:
    assert web.client.get("/healthz").json()["status"] == "ok"
    css = web.client.get("/static/site.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
