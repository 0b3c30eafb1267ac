"""Intake: each bad input named in the foundation issue gets a clear message, nothing else lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from publisher.errors import FeedFetchError, InputError
from publisher.intake.readers import read_csv, read_json, read_seed
from publisher.intake.records import RawRecord, clean_record
from publisher.intake.remote import read_feed
from publisher.text import content_guid


def raw(**kw: object) -> RawRecord:
    base: dict[str, object] = {"source": "t.csv", "line": 7, "title": "T", "summary": "S"}
    base.update(kw)
    return RawRecord(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["\x00", "\x0b", "\x1b", "\ufffe"])
def test_xml_forbidden_characters_are_removed_from_titles(bad: str) -> None:
    item = clean_record(raw(title=f"Costa{bad} Rica news"))
    assert item.title == "Costa Rica news"


def test_lone_surrogate_is_refused_with_location() -> None:
    with pytest.raises(InputError) as info:
        clean_record(raw(title="bad \ud800 title"))
    assert str(info.value) == "t.csv:7: title holds a lone surrogate (invalid Unicode)"


def test_markup_is_stripped_but_text_kept() -> None:
    item = clean_record(
        raw(summary='<script>alert(1)</script><img src=x onerror="alert(1)"> ]]> a & b <b>bold</b>')
    )
    assert "script" not in item.summary and "onerror" not in item.summary
    assert "alert" not in item.summary
    assert "]]>" in item.summary and "a & b" in item.summary and "bold" in item.summary


def test_closing_description_tag_in_summary_is_not_markup_afterwards() -> None:
    item = clean_record(raw(summary="before </description> after"))
    assert "<" not in item.summary and item.summary.startswith("before")


def test_one_megabyte_summary_is_refused_clearly() -> None:
    with pytest.raises(InputError, match=r"t.csv:7: summary is 1,048,576 characters; the limit is"):
        clean_record(raw(summary="x" * 1_048_576))


@pytest.mark.parametrize("title", ["", "   ", "<b></b>"])
def test_empty_title_is_refused(title: str) -> None:
    with pytest.raises(InputError, match="title is empty"):
        clean_record(raw(title=title))


def test_identity_is_guid_else_hash_of_normalised_text() -> None:
    assert clean_record(raw(guid="urn:x:1")).guid == "urn:x:1"
    a = clean_record(raw(title="Belize  news", summary="Text"))
    b = clean_record(raw(title="belize news", summary=" text "))
    assert a.guid == b.guid == content_guid("Belize news", "Text")


def test_links_must_be_http(tmp_path: Path) -> None:
    assert clean_record(raw(link="https://ex.org/a")).link == "https://ex.org/a"
    with pytest.raises(InputError, match="absolute http"):
        clean_record(raw(link="javascript:alert(1)"))


def test_seed_reader_pairs_lines_and_reports_a_lone_title(tmp_path: Path) -> None:
    f = tmp_path / "s.txt"
    f.write_text("T1\nS1\n\nT2\nS2\nT3\n", encoding="utf-8")
    got = list(read_seed(f))
    assert [r.title for r in got if isinstance(r, RawRecord)] == ["T1", "T2"]
    errors = [r for r in got if isinstance(r, InputError)]
    assert [str(e) for e in errors] == [f"{f}:6: title without a summary line"]


def test_csv_row_with_missing_column_is_reported_and_others_kept(tmp_path: Path) -> None:
    f = tmp_path / "items.csv"
    f.write_text(
        'title,summary,regions\nA,first,gt\nB,second\n"C","third","cr mx"\n', encoding="utf-8"
    )
    got = list(read_csv(f))
    assert [r.title for r in got if isinstance(r, RawRecord)] == ["A", "C"]
    [error] = [r for r in got if isinstance(r, InputError)]
    assert str(error) == f"{f}:3: row has 2 columns, the header has 3"


def test_csv_without_required_header_fails_whole_file(tmp_path: Path) -> None:
    f = tmp_path / "items.csv"
    f.write_text("name,text\nA,b\n", encoding="utf-8")
    with pytest.raises(InputError, match="header lacks column"):
        list(read_csv(f))


def test_json_that_is_not_a_list_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "items.json"
    f.write_text(json.dumps({"title": "x"}), encoding="utf-8")
    with pytest.raises(InputError, match="expected a JSON list of objects, found dict"):
        list(read_json(f))


def test_json_bad_entries_reported_by_position(tmp_path: Path) -> None:
    f = tmp_path / "items.json"
    f.write_text(json.dumps([{"title": "a", "summary": "b"}, 3, {"title": "c", "x": 1}]))
    got = list(read_json(f))
    assert [str(e) for e in got if isinstance(e, InputError)] == [
        f"{f}:2: entry 2 is not an object",
        f"{f}:3: unknown key(s) x",
    ]


def test_html_instead_of_feed_is_one_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "page.xml"
    f.write_text("<!doctype html><html><body><p>Not a feed</p></body></html>")
    with pytest.raises(FeedFetchError, match="serves HTML, not an RSS or Atom feed"):
        list(read_feed(str(f)))


def test_rss_file_is_read(tmp_path: Path) -> None:
    f = tmp_path / "in.rss"
    f.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>'
        "<link>https://e.org/</link>"
        "<description>d</description><item><title>Peru floods</title>"
        "<description>Lima</description>"
        "<guid>g-1</guid><pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>"
    )
    [rec] = list(read_feed(str(f)))
    assert isinstance(rec, RawRecord)
    item = clean_record(rec)
    assert (item.title, item.guid, item.published and item.published.isoformat()) == (
        "Peru floods",
        "g-1",
        "2026-11-23T10:00:00+00:00",
    )


def test_url_serving_html_is_one_clear_error(tmp_path: Path) -> None:
    """A real HTTP server on loopback answers with a web page instead of a feed."""
    import functools
    import http.server
    import threading

    (tmp_path / "news.html").write_text("<!DOCTYPE html><html><body>Latest news</body></html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/news.html"
    try:
        with pytest.raises(FeedFetchError) as info:
            list(read_feed(url, allow_private=True))
    finally:
        server.shutdown()
    assert str(info.value) == f"{url}: serves HTML, not an RSS or Atom feed"
