"""Stored edition bodies name their sections' fragments, stored once: on SQLite and PostgreSQL,
what readers get is whole, each fragment is stored once however many region sets share it,
and item text cannot forge a marker."""

from __future__ import annotations

import pytest
from sqlmodel import select

from publisher.email.fragments import expand, marker, named
from publisher.email.placeholders import Placeholders
from publisher.email.render import SHARED_LITERAL, Fragment
from publisher.models import Digest, EditionFragment
from publisher.pipeline.digests import fragments_of, stored_rendition
from publisher.pipeline.edition_tools import preview_edition
from publisher.pipeline.send import send_digests
from tests.conftest import FixedClockRuntime
from tests.delivery_data import use_smtp
from tests.edition_support import MONDAY, add_item, add_reader, ledger
from tests.smtp_servers import Recorder, smtp_server
from tests.test_editions import FRIDAY, send

KEY = Placeholders.fresh().key or ""


def test_expand_puts_fragments_back_and_leaves_everything_else() -> None:
    a, b = Fragment.of("<p>A</p>", "A\n"), Fragment.of("<p>B</p>", "B\n")
    body = f"head {marker(KEY, a.sha)} mid {marker(KEY, b.sha)} tail"
    assert named(body, KEY) == [a.sha, b.sha]
    frags = {a.sha: a, b.sha: b}
    assert expand(body, KEY, frags, html=True) == "head <p>A</p> mid <p>B</p> tail"
    assert expand(body, KEY, frags, html=False) == "head A\n mid B\n tail"
    # a body stored whole (before fragments, or a legacy digest without a key) is itself
    assert expand("whole <p>body</p>", KEY, {}, html=True) == "whole <p>body</p>"
    assert expand(body, None, {}, html=True) == body and named(body, None) == []
    # a marker of another key is text, not a fragment
    other = marker(Placeholders.fresh().key or "", a.sha)
    assert expand(other, KEY, frags, html=True) == other
    with pytest.raises(LookupError, match="not stored"):
        expand(body, KEY, {a.sha: a}, html=True)
    with pytest.raises(ValueError, match="cut short"):
        expand(f"x <!--fragment-{KEY}-{a.sha[:10]}", KEY, frags, html=True)


def test_many_region_sets_store_each_fragment_once_and_readers_get_whole_bodies(
    runtime: FixedClockRuntime,
) -> None:
    shared = add_item(runtime, "Americas report", ["americas"], published=FRIDAY, arrives=FRIDAY)
    add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    add_item(runtime, "Honduras road", ["hn"], published=FRIDAY, arrives=FRIDAY)
    sets = [["gt"], ["hn"], ["gt", "hn"], ["sv"], ["mx", "gt"]]
    for n, regions in enumerate(sets):
        add_reader(runtime, f"r{n}@example.org", regions)
    add_reader(runtime, "es@example.org", ["gt"], locale="es")
    runtime.fixed_now = MONDAY
    recorder = Recorder()
    send(runtime, recorder)
    assert len(recorder.received()) == len(sets) + 1
    with runtime.session() as session:
        digests = list(session.exec(select(Digest).where(Digest.regions != "")))
        fragments = list(session.exec(select(EditionFragment)))
        assert len(digests) == len(sets)
        assert len(fragments) == len({f.sha for f in fragments})  # none stored twice
        # sections, each stored once: Guatemala (its item and the Americas one), which the gt,
        # gt+hn and gt+mx editions share (Mexico has no items: no section), Honduras with
        # both items and with its own only (after Guatemala's), El Salvador; Guatemala in
        # Spanish
        sections = [f for f in fragments if f.text]
        assert sorted(f.text.split("\n")[0] for f in sections) == [
            "## El Salvador (1 new item)", "## Guatemala (2 new items)",
            "## Guatemala (2 noticias nuevas)", "## Honduras (1 new item)",
            "## Honduras (2 new items)",
        ]  # fmt: skip
        named_by = {d.regions: named(d.text, d.placeholder_key) for d in digests}
        assert named_by["gt"] == named_by["gt mx"] == named_by["gt hn"][:1]
        assert len(named_by["gt hn"]) == 2
        # the frame's long constant HTML (head and styles, wrapper, section rows, footer):
        # HTML only, the same few pieces per language whatever the number of sets
        frame = [f for f in fragments if not f.text]
        assert frame and all(len(f.html) >= SHARED_LITERAL for f in frame)
        assert len(frame) <= 2 * 8
        for digest in digests:
            # the item's summary lives in its fragment only (its title is also in the preheader)
            summary = "About Americas report."
            assert summary not in digest.html and summary not in digest.text
            assert "@media only screen" not in digest.html
            assert len(named(digest.html, digest.placeholder_key)) >= 1
            whole = stored_rendition(session, digest, "en")
            assert summary in whole.html and summary in whole.text
            assert "@media only screen" in whole.html
            assert not named(whole.html, digest.placeholder_key)
    for n in range(len(sets)):
        msg = recorder.parsed(f"r{n}@example.org")
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert f"/items/{shared}" in html and "Americas report" in text
        assert "<!--fragment-" not in html and "<!--fragment-" not in text


def test_an_item_cannot_forge_a_marker(runtime: FixedClockRuntime) -> None:
    """An item whose text looks like a marker (any key: the digest's is chosen later) reaches
    the reader literally, and the real fragments around it are whole."""
    forged = f"<!--fragment-{'0' * 20}-{'a' * 32}-->"
    # intake strips markup, so the title carries it escaped and it arrives as plain text
    escaped = forged.replace("<", "&lt;").replace(">", "&gt;")
    add_item(runtime, f"Title {escaped}", ["gt"], published=FRIDAY, arrives=FRIDAY)
    add_reader(runtime, "r@example.org", ["gt"])
    runtime.fixed_now = MONDAY
    recorder = Recorder()
    send(runtime, recorder)
    msg = recorder.parsed("r@example.org")
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert forged in text
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "&lt;!--fragment-" in html and "<!--fragment-" not in html


def test_the_preview_equals_the_stored_body_made_whole(runtime: FixedClockRuntime) -> None:
    add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    add_reader(runtime, "r@example.org", ["gt", "hn"])
    runtime.fixed_now = MONDAY
    send(runtime, Recorder())
    with runtime.session() as session:
        (digest,) = session.exec(select(Digest).where(Digest.regions != ""))
        stored = stored_rendition(session, digest, "en")
    fresh = preview_edition(runtime, ["gt", "hn"], "en", MONDAY, week=digest.week)
    marks = Placeholders.of(digest.placeholder_key)
    assert fresh.subject == stored.subject
    # the same page but for the markers and the web copy's link, which name the digest
    with runtime.session() as session:
        kinds = [
            bool(f.text) for f in fragments_of(session, named(digest.html, marks.key)).values()
        ]
    # one section, and the frame's long constant pieces (HTML only); none left once made whole
    assert kinds.count(True) == 1 and kinds.count(False) >= 4
    assert not named(stored.html, marks.key)
    for seen in ("Guatemala shelter", "About Guatemala shelter."):
        assert fresh.html.count(seen) == stored.html.count(seen) >= 1
        assert fresh.text.count(seen) == stored.text.count(seen) >= 1
    assert len(fresh.html) - 200 < len(stored.html) < len(fresh.html) + 200


def test_a_body_naming_a_lost_fragment_is_deferred_alone(runtime: FixedClockRuntime) -> None:
    """A stored body whose fragment is gone (a broken restore) fails for its own readers with
    a clear error; everybody else's edition still goes out."""
    add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    add_item(runtime, "Honduras road", ["hn"], published=FRIDAY, arrives=FRIDAY)
    add_reader(runtime, "gt@example.org", ["gt"])
    add_reader(runtime, "hn@example.org", ["hn"])
    runtime.fixed_now = MONDAY
    with smtp_server(Recorder()) as port:
        use_smtp(runtime, port)
        send_digests(runtime, regions=None, runner="test", deliver_now=False)
    with runtime.session() as session:
        lost = [f for f in session.exec(select(EditionFragment)) if "Guatemala" in f.html]
        assert len(lost) == 1
        session.delete(lost[0])
    recorder = Recorder()
    send(runtime, recorder)
    assert recorder.received() == {"hn@example.org": 1}
    (row,) = [d for d in ledger(runtime) if d.state != "sent"]
    assert row.state == "deferred" and "not stored" in row.last_error
