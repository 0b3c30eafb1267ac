"""Item text never fills the per-recipient placeholders: it reaches readers exactly as written.

A summary holding every marker (today's and the old fixed ones, and a look-alike of the random
kind) goes through intake, assembly and a real send to aiosmtpd; the delivered text and HTML
parts show it literally, while the footer still carries the reader's own address and links.
"""

from __future__ import annotations

import html
from datetime import timedelta

from publisher.email.placeholders import Placeholders
from publisher.email.render import public_copy
from publisher.intake.records import RawRecord
from publisher.pipeline.digests import stored_rendition
from publisher.pipeline.edition_tools import preview_edition
from publisher.pipeline.editions import fire_editions
from publisher.pipeline.intake import import_records
from publisher.pipeline.send import send_digests
from publisher.runtime import Runtime
from publisher.store.digests import get_digest
from tests.delivery_data import REGION, WEEK, add_subscribers, use_smtp
from tests.smtp_servers import Recorder, smtp_server

MARKERS = (
    "%%EMAIL%% %%UNSUBSCRIBE_URL%% %%PREFERENCES_URL%% "
    "%%EMAIL-0123456789abcdef%% %%UNSUBSCRIBE_URL-0123456789abcdef%% "
    "%%PREFERENCES_URL-0123456789abcdef%%"
)
TITLE = "Markers %%EMAIL%% in a title"
SUMMARY = f"Literal markers: {MARKERS} end."


def add_marker_item(rt: Runtime) -> None:
    record = RawRecord("t", 1, TITLE, SUMMARY, published="2026-11-25T10:00:00Z", regions="gt")
    with rt.session() as s:
        report = import_records(
            s, records=[record], tree=rt.tree, inferrer=rt.inferrer,
            now=rt.now() - timedelta(minutes=1),  # before the send: windows are [start, cutoff)
        )  # fmt: skip
    assert report.errors == [] and report.added == 1


def test_markers_in_item_text_stay_literal_in_the_delivered_message(runtime: Runtime) -> None:
    add_marker_item(runtime)
    readers = add_subscribers(runtime, 2)
    recorder = Recorder()
    with smtp_server(recorder) as port:
        use_smtp(runtime, port)
        report = send_digests(runtime, regions=[REGION], week=WEEK, early=True)
    assert report.run.sent == 2
    for _, email in readers:
        msg = recorder.parsed(email)
        text_part, html_part = list(msg.iter_parts())
        # The text part wraps at 72 columns; the markers are single words, so compare flat.
        text = " ".join(text_part.get_content().split())
        page = " ".join(html_part.get_content().split())
        assert SUMMARY in text and TITLE in text
        assert html.escape(SUMMARY, quote=False) in page and TITLE in page
        # The real placeholders were filled: the reader's address and their own links.
        assert email in text and email in page
        assert "https://news.example.org/unsubscribe/" in text
        assert "https://news.example.org/unsubscribe/" in page
        assert text.count("%%") == TITLE.count("%%") + SUMMARY.count("%%")
        assert email not in text.split(" end.")[0]  # nothing of the reader's inside the item


def test_preview_and_web_copy_keep_the_markers_literal(runtime: Runtime) -> None:
    add_marker_item(runtime)
    fresh = preview_edition(runtime, [REGION], "en", runtime.now(), week=WEEK)
    ((reader, _),) = add_subscribers(runtime, 1)
    fired = fire_editions(runtime, now=runtime.now(), zone=None, week=WEEK, early=True,
                          runner="test", subscriber_ids=[reader])  # fmt: skip
    with runtime.session() as s:
        digest = get_digest(s, digest_id=fired.digest_ids[0])
        assert digest is not None
        stored = stored_rendition(s, digest, "en")  # whole: its item fragments put back
    text, page = " ".join(fresh.text.split()), " ".join(fresh.html.split())
    assert SUMMARY in text and html.escape(SUMMARY, quote=False) in page
    assert "reader@example.org" in text  # the sample reader's footer
    marks = Placeholders.of(digest.placeholder_key)
    web = public_copy(stored.html, base_url="https://news.example.org", marks=marks)
    assert html.escape(SUMMARY, quote=False) in " ".join(web.split())
    assert marks.key is not None and marks.key not in web


def test_each_digest_gets_its_own_unguessable_markers() -> None:
    a, b = Placeholders.fresh(), Placeholders.fresh()
    assert a.key != b.key and len(a.key) >= 16
    assert len({*a.all, *b.all}) == 6
    assert Placeholders.of(None).all == ("%%EMAIL%%", "%%UNSUBSCRIBE_URL%%", "%%PREFERENCES_URL%%")
    assert Placeholders.of(a.key) == a
