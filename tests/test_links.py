"""One link check at the door (publisher.links), used by every intake path.

A record with a bad link is skipped and reported as FILE:LINE: reason (a 422 in the API, a
one-line reason from the CLI); nothing is silently lost. Whatever the check lets in, every feed
format writes and feedparser reads back: property-tested through the real intake and store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.errors import InputError
from publisher.intake.records import RawRecord
from publisher.links import check_link
from publisher.pipeline.feeds import channel_factory, feed_entries
from publisher.pipeline.intake import import_records, read_source
from publisher.runtime import Runtime
from publisher.syndication import entry_problem, render_atom, render_json, render_rss
from publisher.syndication.entries import url_problem
from tests.web_support import AUTH, Web, make_web

BAD = {
    "https://example.org/\u202egnp.exe": "U+202E, an invisible formatting character",
    "https://exa\u202emple.org/": "U+202E",
    "https://example.org/a\u200bb": "U+200B",
    "https://example.org/<script>": "'<', which a URL cannot hold unescaped",
    'https://example.org/"x"': "'\"'",
    "https://example.org/a{b}": "'{'",
    "https://example.org/a|b": "'|'",
    "https://example.org/a\\b": "'\\\\'",
    "https://example.org/a b": "a space",
    "https://example.org/a\x85b": "U+0085, a control character",
    "https://example.org/a\u2028b": "U+2028, a line separator",
    "https://example.org/\ue000": "U+E000, a private-use character",
    "https://example.org/\x9b": "U+009B, a control character",
    "http://:80/": "link host is missing",
    "https:///path": "link host is missing",
    "https://user:pw@example.org/": "user name or password",
    "https://www.bank.example@evil.example/": "user name or password",
    "https://-bad-.example/": "not a valid host name",
    "https://a..b/": "not a valid host name",
    "https://exa%41mple.org/": "not a valid host name",
    "https://example.com\u2044evil.org/": "not a valid host name",
    "https://" + "a" * 64 + ".example/": "not a valid host name",
    "https://[zz::1]/": "malformed host or port",
    "https://[::1/": "malformed host or port",
    "https://example.org:99999/": "malformed host or port",
    "https://example.org:abc/": "malformed host or port",
    "http://999.1.1.1/": "not a valid IPv4 address",
    "https://example.org/" + "a" * 2_000: "link is 2,020 characters; the limit is 2,000",
    "javascript:alert(1)": "absolute http(s) URL",
    "ftp://example.org/": "absolute http(s) URL",
    "//example.org/x": "absolute http(s) URL",
    "data:text/html,<b>x</b>": "'<'",
}
GOOD = [
    "https://example.org/a",
    "HTTPS://EXAMPLE.ORG/",
    "https://ejemplo.es/año?x=1&y=2#frag",
    "https://ñandú.example/",
    "https://exa_mple.org/",
    "https://example.org./",
    "https://example.org:/x",
    "https://example.org:8443",
    "http://1.2.3.4/",
    "http://[::ffff:1.2.3.4]:8080/x",
    "https://example.org/%0d%0aSet-Cookie:x",
    "https://example.org?q=a@b",
]


@pytest.mark.parametrize(("link", "reason"), sorted(BAD.items()))
def test_a_bad_link_is_refused_saying_why(link: str, reason: str) -> None:
    with pytest.raises(InputError) as info:
        check_link(link)
    assert reason in info.value.reason


@pytest.mark.parametrize("link", GOOD)
def test_good_links_pass_unchanged_and_the_feed_writer_agrees(link: str) -> None:
    assert check_link(f"  {link} ") == link
    assert url_problem(link) is None


URL_CHARS = st.sampled_from(
    [
        *"abcXYZ019-._~:/?#[]@!$&'()*+,;=%",
        *' <>"\\^`{|}',
        *"\u202e\u200b\x00\x1f\x7f\x85\u2028\ue000\u00f1\u2044",
    ]
)


@settings(max_examples=600)
@given(
    scheme=st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "", "//"]),
    rest=st.text(URL_CHARS, max_size=40),
)
def test_whatever_the_check_accepts_the_feed_writer_accepts(scheme: str, rest: str) -> None:
    try:
        link = check_link(scheme + rest)
    except InputError:
        return
    assert link is None or url_problem(link) is None, link


# --- every intake path ------------------------------------------------------------------------

RLO_LINK = "https://example.org/\u202egnp.exe"


def test_files_report_the_bad_link_and_keep_the_rest(runtime: Runtime, tmp_path: Path) -> None:
    csv_file = tmp_path / "items.csv"
    csv_file.write_text(
        f"title,summary,link\nBad link,One.,{RLO_LINK}\nGood,Two.,https://example.org/ok\n",
        encoding="utf-8",
    )
    json_file = tmp_path / "items.json"
    json_file.write_text(
        json.dumps([{"title": "Bad J", "summary": "x", "link": RLO_LINK}, {"title": "Good J"}]),
        encoding="utf-8",
    )
    feed_file = tmp_path / "items.atom"
    feed_file.write_text(
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>t</title><id>urn:t</id><updated>2026-11-25T00:00:00Z</updated>"
        f'<entry><title>Bad F</title><id>urn:f:1</id><link href="{RLO_LINK}"/>'
        "<updated>2026-11-25T00:00:00Z</updated></entry>"
        '<entry><title>Good F</title><id>urn:f:2</id><link href="https://example.org/f"/>'
        "<updated>2026-11-25T00:00:00Z</updated></entry></feed>",
        encoding="utf-8",
    )
    lines = {csv_file: 2, json_file: 1, feed_file: 1}
    for path, line in lines.items():
        with runtime.session() as s:
            report = import_records(
                s, records=read_source(str(path)), tree=runtime.tree,
                inferrer=runtime.inferrer, now=runtime.now(),
            )  # fmt: skip
        assert report.added == 1
        assert [str(e) for e in report.errors] == [
            f"{path}:{line}: link holds U+202E, an invisible formatting character "
            "(such as a bidi override)"
        ]


def test_cli_items_add_refuses_a_bad_link_in_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PUBLISHER_DATABASE_URL": f"sqlite:///{tmp_path / 'publisher.db'}",
        "PUBLISHER_VAR_DIR": str(tmp_path / "var"),
        "PUBLISHER_FEEDS_DIR": str(tmp_path / "feeds"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "publisher", *args], env=env, capture_output=True, text=True,
            timeout=120, cwd=tmp_path,
        )  # fmt: skip

    assert run("db", "upgrade").returncode == 0
    r = run("items", "add", "--title", "Floods", "--link", RLO_LINK)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "publisher: link holds U+202E, an invisible formatting character (such as a bidi override)"
    ]
    listed = run("items", "list")
    assert listed.returncode == 0 and "Floods" not in listed.stdout


@pytest.fixture
def web(runtime: Runtime) -> Iterator[Web]:
    yield from make_web(runtime)


def test_the_api_answers_422_with_the_reason(web: Web) -> None:
    c = web.client
    r = c.post("/api/items", headers=AUTH, json={"title": "Floods", "link": RLO_LINK})
    assert r.status_code == 422 and "U+202E" in r.json()["detail"]
    r = c.post("/api/items", headers=AUTH, json={"title": "Floods", "link": "https://ex.org/"})
    assert r.status_code == 201
    item_id = r.json()["id"]
    for bad in (RLO_LINK, "https://user@ex.org/", "http://:80/", "https://ex.org/<x>"):
        r = c.patch(f"/api/items/{item_id}", headers=AUTH, json={"link": bad})
        assert r.status_code == 422, bad
    assert c.get(f"/api/items/{item_id}", headers=AUTH).json()["link"] == "https://ex.org/"


# --- whatever enters the store renders everywhere ---------------------------------------------

TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from("<>&\"'%\u202e"),
    max_size=60,
)
LINKS = st.one_of(
    st.none(),
    st.sampled_from([*GOOD, *BAD]),
    st.builds(lambda s, r: s + r, st.sampled_from(["http://", "https://"]), st.text(URL_CHARS)),
)
RECORDS = st.lists(st.tuples(TEXT, TEXT, LINKS), min_size=1, max_size=5)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=RECORDS)
def test_every_item_intake_lets_in_renders_in_every_feed(
    runtime: Runtime, rows: list[tuple[str, str, str | None]]
) -> None:
    records = [
        RawRecord("gen.csv", n, title, summary, link, regions="gt")
        for n, (title, summary, link) in enumerate(rows, 2)
    ]
    with runtime.session() as s:
        report = import_records(
            s, records=records, tree=runtime.tree, inferrer=runtime.inferrer, now=runtime.now()
        )
    # Nothing silently lost: each record was added, already there, or reported at its line.
    assert report.added + report.existing + len(report.errors) == len(records)
    assert all(str(e).startswith(f"gen.csv:{e.line}: ") for e in report.errors)
    with runtime.session() as s:
        fresh = set(report.ids)
        entries = [e for e in feed_entries(s) if e.id in fresh]
    assert {e.id for e in entries} == fresh
    assert [entry_problem(e) for e in entries] == [None] * len(entries)
    channel = channel_factory(runtime.settings, runtime.tree)("gt")
    skipped: list[str] = []
    out = {
        render(channel, entries, category_names={}, on_skip=lambda e, why: skipped.append(why))
        for render in (render_rss, render_atom)
    }
    assert skipped == []
    for data in out:
        parsed = feedparser.parse(data)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert parsed.version in ("rss20", "atom10")
        assert [e.id for e in parsed.entries] == [e.uri for e in entries]
        links = [
            next((x.href for x in e.get("links", []) if x.get("rel") == "related"), None)
            for e in parsed.entries
        ]
        if parsed.version == "atom10":
            assert links == [e.link for e in entries]
    doc = json.loads(render_json(channel, entries, category_names={}, on_skip=None))
    assert [i["id"] for i in doc["items"]] == [e.uri for e in entries]
    assert [i.get("external_url") for i in doc["items"]] == [e.link for e in entries]
