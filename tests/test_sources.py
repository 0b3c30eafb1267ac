"""Sources polled against a real HTTP server whose feeds change between polls (SQLite and PG)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from publisher.errors import InputError
from publisher.models import Item, Source
from publisher.pipeline.feeds import build_store_feeds
from publisher.pipeline.poll_policy import DAY, Outcome, after_poll, backoff, parse_every
from publisher.pipeline.sources import poll_sources
from publisher.runtime import Runtime
from publisher.store.items import list_items
from publisher.store.sources import add_source
from tests.conftest import FixedClockRuntime
from tests.feed_server import Answer, FeedServer, feed_server, rss


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    runtime.settings.sources_allow_private = True  # the test server is on loopback
    return runtime


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as s:
        yield s


def add(
    rt: Runtime, url: str, *, regions: tuple[str, ...] = (), every: int = 1800, lang: str = ""
) -> int:
    with rt.session() as session:
        source = add_source(session, url=url, regions=regions, every=every, lang=lang, now=rt.now())
        assert source.id is not None
        return source.id


def row(rt: Runtime, source_id: int) -> Source:
    with rt.session() as session:
        found = session.get(Source, source_id)
        assert found is not None
        return found


def items(rt: Runtime) -> list[Item]:
    with rt.session() as session:
        return list(session.exec(select(Item).order_by(Item.id)))


def advance(rt: Runtime, seconds: float) -> None:
    assert isinstance(rt, FixedClockRuntime)
    rt.fixed_now = rt.fixed_now + timedelta(seconds=seconds)


def test_entries_arrive_once_and_304_adds_nothing(rt: Runtime, server: FeedServer) -> None:
    server.routes["/news"] = Answer(
        body=rss(("e1", "Floods in Peru", "Rain."), ("e2", "Honduras vote", "Polls.")),
        etag='"v1"',
    )
    sid = add(rt, server.url("/news"))
    [first] = poll_sources(rt)
    assert (first.outcome.added, first.outcome.updated) == (2, 0)
    assert {i.title for i in items(rt)} == {"Floods in Peru", "Honduras vote"}
    assert {i.source_id for i in items(rt)} == {sid}
    assert row(rt, sid).etag == '"v1"'

    advance(rt, 1800)
    [second] = poll_sources(rt)
    assert second.outcome.not_modified and second.outcome.added == 0
    assert server.seen("/news")[1]["if-none-match"] == '"v1"'
    assert len(items(rt)) == 2

    # The feed changes: one entry edited, one new, no ETag this time (every body is new).
    server.routes["/news"] = Answer(
        body=rss(
            ("e3", "Cuba hurricane", "Wind."),
            ("e1", "Floods in Peru worsen", "More rain."),
            ("e2", "Honduras vote", "Polls."),
        )
    )
    advance(rt, 1800)
    [third] = poll_sources(rt)
    assert (third.outcome.added, third.outcome.updated) == (1, 1)
    titles = [i.title for i in items(rt)]
    assert sorted(titles) == ["Cuba hurricane", "Floods in Peru worsen", "Honduras vote"]
    advance(rt, 1800)
    [fourth] = poll_sources(rt)  # same bytes again, no ETag: known by their hash, not parsed
    assert (fourth.outcome.added, fourth.outcome.updated) == (0, 0)
    assert fourth.outcome.not_modified
    assert len(items(rt)) == 3
    assert row(rt, sid).etag is None  # the server stopped sending one


def test_nothing_is_polled_before_it_is_due(rt: Runtime, server: FeedServer) -> None:
    server.routes["/news"] = Answer(body=rss(("e1", "Peru", "x")))
    add(rt, server.url("/news"), every=3600)
    assert len(poll_sources(rt)) == 1
    advance(rt, 3599)
    assert poll_sources(rt) == []
    assert len(poll_sources(rt, due_only=False)) == 1  # `sources poll`: now, whatever the plan
    advance(rt, 3599)  # that poll set the next one an interval later
    assert poll_sources(rt) == []
    advance(rt, 1)
    assert len(poll_sources(rt)) == 1


def test_errors_back_off_doubling_then_recover(rt: Runtime, server: FeedServer) -> None:
    server.routes["/down"] = Answer(500, b"oops")
    sid = add(rt, server.url("/down"), every=600)
    waits = []
    for _ in range(9):
        [report] = poll_sources(rt, due_only=False)
        assert not report.outcome.ok
        source = row(rt, sid)
        waits.append((source.next_poll - rt.now()).total_seconds())
    assert waits == [1200, 2400, 4800, 9600, 19200, 38400, 76800, DAY, DAY]
    assert "HTTP 500" in source.last_error and source.failures == 9
    server.routes["/down"] = Answer(body=rss(("e1", "Back", "up")))
    poll_sources(rt, due_only=False)
    source = row(rt, sid)
    assert (source.failures, source.last_error, source.last_result) == (0, "", "1 new, 0 updated")


def test_retry_after_and_max_age_are_respected(rt: Runtime, server: FeedServer) -> None:
    server.routes["/busy"] = Answer(429, headers={"Retry-After": "7200"})
    server.routes["/cached"] = Answer(
        body=rss(("e", "Peru", "x")), headers={"Cache-Control": "max-age=5400"}
    )
    busy, cached = (
        add(rt, server.url("/busy"), every=600),
        add(rt, server.url("/cached"), every=600),
    )
    poll_sources(rt)
    assert row(rt, busy).next_poll == rt.now() + timedelta(seconds=7200)
    assert row(rt, cached).next_poll == rt.now() + timedelta(seconds=5400)


def test_gone_pauses_and_permanent_redirect_moves(rt: Runtime, server: FeedServer) -> None:
    server.routes["/gone"] = Answer(410, b"gone")
    server.routes["/old"] = Answer(308, headers={"Location": "/new"})
    server.routes["/new"] = Answer(body=rss(("e", "Peru", "x")))
    gone, moved = add(rt, server.url("/gone")), add(rt, server.url("/old"))
    poll_sources(rt)
    assert row(rt, gone).paused and "410" in row(rt, gone).last_error
    assert row(rt, moved).url == server.url("/new")
    advance(rt, DAY * 2)
    assert [r.source_id for r in poll_sources(rt)] == [moved]  # the paused one waits
    assert server.seen("/old") == [server.seen("/old")[0]]  # polled at the new address since


def test_a_malformed_feed_is_reported_and_others_go_on(rt: Runtime, server: FeedServer) -> None:
    server.routes["/junk"] = Answer(body=b"<html><body>not a feed</body></html>")
    server.routes["/bad-xml"] = Answer(body=b"\x00\x01garbage")
    server.routes["/good"] = Answer(body=rss(("e", "Guatemala floods", "x")))
    junk, bad, good = (add(rt, server.url(p)) for p in ("/junk", "/bad-xml", "/good"))
    reports = {r.source_id: r for r in poll_sources(rt)}
    assert "serves HTML" in reports[junk].outcome.error
    assert not reports[bad].outcome.ok
    assert reports[good].outcome.added == 1
    assert row(rt, junk).last_error and row(rt, junk).failures == 1
    assert [i.title for i in items(rt)] == ["Guatemala floods"]


def test_bad_entries_are_skipped_not_the_feed(rt: Runtime, server: FeedServer) -> None:
    server.routes["/mixed"] = Answer(
        body=rss(("e1", "", "no title"), ("e2", "Chile quake", "x"), ("e2", "Chile quake", "x"))
    )
    add(rt, server.url("/mixed"))
    [report] = poll_sources(rt)
    assert (report.outcome.added, report.outcome.skipped) == (1, 1)
    assert "title is empty" in str(report.errors[0])


def test_loopback_refused_without_the_setting(rt: Runtime, server: FeedServer) -> None:
    rt.settings.sources_allow_private = False
    server.routes["/news"] = Answer(body=rss(("e", "Peru", "x")))
    sid = add(rt, server.url("/news"))
    [report] = poll_sources(rt)
    assert "loopback" in report.outcome.error and "SOURCES_ALLOW_PRIVATE" in report.outcome.error
    assert server.requests == [] and items(rt) == []
    assert row(rt, sid).failures == 1


def test_regions_from_source_and_text(rt: Runtime, server: FeedServer) -> None:
    server.routes["/gt"] = Answer(
        body=rss(("a", "Rains in Honduras", "x"), ("b", "Local market opens", "x"))
    )
    server.routes["/any"] = Answer(body=rss(("c", "Floods in Peru", "x")))
    add(rt, server.url("/gt"), regions=("gt",))
    add(rt, server.url("/any"))
    poll_sources(rt)
    with rt.session() as session:
        tags = {i.title: i.regions for i in list_items(session, limit=None)}
    assert sorted(tags["Rains in Honduras"]) == ["gt", "hn"]
    assert tags["Local market opens"] == ["gt"]
    assert tags["Floods in Peru"] == ["pe"]


def test_the_sources_language_is_given_to_its_items(rt: Runtime, server: FeedServer) -> None:
    # "Local market opens" alone would be detected as English; the source says Spanish.
    server.routes["/es"] = Answer(body=rss(("a", "Local market opens", "x")))
    server.routes["/auto"] = Answer(body=rss(("b", "Las lluvias de la semana en el valle", "x")))
    add(rt, server.url("/es"), lang="es")
    add(rt, server.url("/auto"))
    poll_sources(rt)
    langs = {i.title: i.lang for i in items(rt)}
    assert langs == {"Local market opens": "es", "Las lluvias de la semana en el valle": "es"}


def test_images_and_links_reach_items_and_feeds(rt: Runtime, server: FeedServer) -> None:
    body = rss(
        ("a", "Peru floods", "x"),
        extra="",
        item_extra='<enclosure url="https://img.example/a.jpg" type="image/jpeg" length="1"/>',
    )
    server.routes["/img"] = Answer(body=body)
    html_img = rss(
        ("b", "Chile quake", '&lt;p&gt;&lt;img src="https://img.example/b.png" alt="Rubble"&gt;'
         "Damage.&lt;/p&gt;"),
    )  # fmt: skip
    server.routes["/html"] = Answer(body=html_img)
    add(rt, server.url("/img"))
    add(rt, server.url("/html"))
    poll_sources(rt)
    found = {i.title: i for i in items(rt)}
    assert found["Peru floods"].image_url == "https://img.example/a.jpg"
    assert (found["Chile quake"].image_url, found["Chile quake"].image_alt) == (
        "https://img.example/b.png",
        "Rubble",
    )
    assert found["Chile quake"].summary == "Damage."
    assert found["Peru floods"].link == "https://upstream.example/a"
    with rt.session() as session:
        build_store_feeds(session, settings=rt.settings, tree=rt.tree)
    parsed = feedparser.parse((rt.settings.feeds_dir / "pe.rss").read_bytes())
    assert not parsed.bozo and parsed.version == "rss20"
    [entry] = parsed.entries
    assert entry.enclosures[0].href == "https://img.example/a.jpg"
    atom = feedparser.parse((rt.settings.feeds_dir / "pe.atom").read_bytes())
    assert not atom.bozo and atom.version == "atom10"
    rels = {link.rel: link.href for link in atom.entries[0].links}
    assert rels["related"] == "https://upstream.example/a"
    assert rels["enclosure"] == "https://img.example/a.jpg"


def test_poll_one_unknown_id(rt: Runtime) -> None:
    with pytest.raises(InputError, match="no source with id 99"):
        poll_sources(rt, source_id=99)


def test_duplicate_source_is_refused(rt: Runtime) -> None:
    add(rt, "https://example.org/feed")
    with pytest.raises(InputError, match="already a source"):
        add(rt, "https://example.org/feed")


def test_parse_every() -> None:
    assert [parse_every(v) for v in ("30m", "2h", "1d", "90s", "45")] == [
        1800, 7200, DAY, 90, 2700,
    ]  # fmt: skip
    for bad in ("", "0m", "30x", "8d", "-5m", "1e3", "30m\n1h"):
        with pytest.raises(InputError):
            parse_every(bad)


@given(
    every=st.integers(60, 7 * DAY),
    failures=st.integers(0, 60),
    retry_after=st.none() | st.floats(0, 1e12),
)
def test_backoff_never_shrinks_and_stays_within_a_day(
    every: int, failures: int, retry_after: float | None
) -> None:
    wait = backoff(every, failures, retry_after)
    assert min(every, DAY) <= wait <= max(DAY, 0)
    assert wait >= backoff(every, max(failures - 1, 0), retry_after)


@given(st.integers(0, 30))
def test_success_after_errors_resets(failures: int) -> None:
    from tests.conftest import FIXED_NOW

    values = after_poll(every=600, failures=failures, outcome=Outcome(ok=True), now=FIXED_NOW)
    assert values["failures"] == 0 and values["next_poll"] == FIXED_NOW + timedelta(seconds=600)


def test_scheduler_task_polls_what_is_due(rt: Runtime, server: FeedServer) -> None:
    from publisher.schedule.tasks import poll_due_sources

    server.routes["/news"] = Answer(body=rss(("e1", "Peru", "x"), ("e2", "Chile", "y")))
    add(rt, server.url("/news"))
    assert poll_due_sources(rt) == 2
    assert poll_due_sources(rt) == 0  # not due again yet
    assert len(server.seen("/news")) == 1


def test_websub_hub_is_advertised_and_pinged(
    rt: Runtime, server: FeedServer, make_settings: object
) -> None:
    from urllib.parse import parse_qs

    hub = server.url("/hub")
    rt.settings.websub_hub_url = hub
    server.routes["/news"] = Answer(body=rss(("e1", "Floods in Peru", "x")))
    add(rt, server.url("/news"))
    poll_sources(rt)
    with rt.session() as session:
        build_store_feeds(session, settings=rt.settings, tree=rt.tree)
    [(path, body)] = server.posts
    form = parse_qs(body.decode())
    assert path == "/hub" and form["hub.mode"] == ["publish"]
    base = rt.settings.base_url
    assert f"{base}/feeds/pe.rss" in form["hub.url"] and f"{base}/feeds/all.json" in form["hub.url"]
    assert not any(url.endswith(".opml") for url in form["hub.url"])
    for ext, version in (("rss", "rss20"), ("atom", "atom10")):
        parsed = feedparser.parse((rt.settings.feeds_dir / f"pe.{ext}").read_bytes())
        assert not parsed.bozo and parsed.version == version
        rels = {link.rel: link.href for link in parsed.feed.links}
        assert rels["hub"] == hub and rels["self"] == f"{base}/feeds/pe.{ext}"
    import json  # feedparser 6 does not read JSON Feed

    assert json.loads((rt.settings.feeds_dir / "pe.json").read_bytes())["hubs"] == [
        {"type": "WebSub", "url": hub}
    ]
    # Nothing changed: nothing to announce.
    with rt.session() as session:
        build_store_feeds(session, settings=rt.settings, tree=rt.tree)
    assert len(server.posts) == 1


def test_two_pollers_at_once_store_each_entry_once(rt: Runtime, server: FeedServer) -> None:
    """`sources poll` beside the scheduler: both fetch the same new entries at the same time."""
    import threading

    release = threading.Event()
    server.routes["/news"] = Answer(
        body=rss(*((f"e{n}", f"Peru item {n}", "x") for n in range(30))), hold=release
    )
    sid = add(rt, server.url("/news"))
    results: list[list[object]] = []
    threads = [
        threading.Thread(target=lambda: results.append(list(poll_sources(rt, source_id=sid))))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for _ in range(200):  # both requests are at the server before either is answered
        if len(server.seen("/news")) == 2:
            break
        threading.Event().wait(0.05)
    release.set()
    for t in threads:
        t.join(30)
    assert len(results) == 2
    outcomes = [r[0].outcome for r in results]  # type: ignore[attr-defined]
    assert all(o.ok for o in outcomes), outcomes
    assert sorted(o.added for o in outcomes) == [0, 30]
    assert len(items(rt)) == 30


def test_a_move_onto_another_sources_url_keeps_the_old_one(rt: Runtime, server: FeedServer) -> None:
    server.routes["/old"] = Answer(301, headers={"Location": "/new"})
    server.routes["/new"] = Answer(body=rss(("e", "Peru", "x")))
    old, new = add(rt, server.url("/old")), add(rt, server.url("/new"))
    reports = poll_sources(rt)
    assert all(r.outcome.ok for r in reports)
    assert (row(rt, old).url, row(rt, new).url) == (server.url("/old"), server.url("/new"))
    assert len(items(rt)) == 2  # one item per (source, entry): the sources are distinct


def test_a_hub_that_is_down_never_fails_the_build(rt: Runtime, server: FeedServer) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    rt.settings.websub_hub_url = f"http://127.0.0.1:{port}/hub"
    server.routes["/news"] = Answer(body=rss(("e1", "Floods in Peru", "x")))
    add(rt, server.url("/news"))
    poll_sources(rt)
    with rt.session() as session:
        report = build_store_feeds(session, settings=rt.settings, tree=rt.tree)
    assert "pe.rss" in report.changed
    parsed = feedparser.parse((rt.settings.feeds_dir / "pe.atom").read_bytes())
    assert not parsed.bozo and parsed.version == "atom10"
