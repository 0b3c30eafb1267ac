"""Around the fire, on SQLite and PostgreSQL: previews are what the send sends, test copies go
through the outbox with no ledger row, rebuilds touch only unsent editions, notes and holds."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import select

from publisher.models import Delivery, Digest, Edition, OutboxMessage
from publisher.pipeline.edition_tools import (
    edition_status,
    preview_edition,
    rebuild_week,
    send_test_edition,
)
from publisher.pipeline.editions import fire_editions
from publisher.pipeline.outbox import OutboxDeliverer
from publisher.pipeline.send import send_digests
from publisher.store.holds import approve, hold
from publisher.store.notes import set_note
from tests.conftest import FixedClockRuntime
from tests.delivery_data import use_smtp
from tests.edition_support import MONDAY, NEXT_MONDAY, add_item, add_reader, editions_of, ledger
from tests.smtp_servers import Recorder, smtp_server
from tests.web_support import make_web

FRIDAY = MONDAY - timedelta(days=3)
WEEK = "2026-W48"


def bodies(recorder: Recorder, address: str) -> tuple[str, str]:
    msg = recorder.parsed(address)
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return html.replace("\r\n", "\n"), text.replace("\r\n", "\n")


def masked(body: str, address: str) -> str:
    """``body`` with what differs per reader (address, signed links) and per edition (its web
    copy's address) replaced by fixed words."""
    body = body.replace(address, "ADDRESS")
    body = re.sub(r"https://news\.example\.org/(unsubscribe|preferences)/[A-Za-z0-9_.\-]+",
                  r"LINK-\1", body)  # fmt: skip
    return re.sub(r"https://news\.example\.org/editions/[A-Za-z0-9_.\-]+", "WEB-COPY", body)


def test_a_preview_is_byte_for_byte_what_the_send_sends(runtime: FixedClockRuntime) -> None:
    add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    add_item(runtime, "Honduras & more", ["hn"], published=FRIDAY,
             arrives=FRIDAY + timedelta(hours=1))  # fmt: skip
    with runtime.session() as session:
        set_note(session, week=WEEK, region="", text="Holiday <b>edition</b>", by="ed", now=FRIDAY)
        set_note(session, week=WEEK, region="hn", text="Elections soon.", by="ed", now=FRIDAY)
    add_reader(runtime, "reader.one@example.org", ["hn", "gt"], locale="es")
    runtime.fixed_now = MONDAY
    shown = preview_edition(runtime, ["gt", "hn"], "es", MONDAY, week=WEEK)
    recorder = Recorder()
    with smtp_server(recorder) as port:
        use_smtp(runtime, port)
        send_digests(runtime, regions=None, runner="test")
    html, text = bodies(recorder, "reader.one@example.org")
    assert recorder.parsed("reader.one@example.org")["Subject"] == shown.subject
    assert masked(html, "reader.one@example.org") == masked(shown.html, "reader@example.org")
    assert masked(text, "reader.one@example.org") == masked(shown.text, "reader@example.org")
    assert "Holiday &lt;b&gt;edition&lt;/b&gt;" in html and "Elections soon." in html
    assert "Honduras &amp; more" in html


def test_a_preview_writes_nothing(runtime: FixedClockRuntime) -> None:
    add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    add_reader(runtime, "r@example.org", ["gt"])
    runtime.fixed_now = MONDAY
    shown = preview_edition(runtime, ["gt", "central-america"], "en", MONDAY)
    assert shown.regions == ("central-america",) and len(shown.item_ids) == 1
    with runtime.session() as session:
        for table in (Edition, Delivery, OutboxMessage):
            assert session.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0


def test_a_test_copy_arrives_marked_with_no_ledger_row(runtime: FixedClockRuntime) -> None:
    add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    runtime.fixed_now = MONDAY
    recorder = Recorder()
    with smtp_server(recorder) as port:
        use_smtp(runtime, port)
        row, shown = send_test_edition(runtime, ["gt"], "editor@example.org", "es", MONDAY)
        stats = OutboxDeliverer(runtime).drain()
    assert stats.sent == 1 and recorder.received() == {"editor@example.org": 1}
    msg = recorder.parsed("editor@example.org")
    assert msg["Subject"] == f"[Prueba] {shown.subject}"
    assert ledger(runtime) == [] and editions_of(runtime, 0) == []
    with runtime.session() as session:
        stored = session.get(OutboxMessage, row)
        assert stored is not None and stored.state == "sent" and stored.kind == "test"


def test_rebuild_reassembles_only_editions_nobody_was_sent(runtime: FixedClockRuntime) -> None:
    add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    sent_reader = add_reader(runtime, "sent@example.org", ["hn"])
    waiting = add_reader(runtime, "waiting@example.org", ["gt"])
    quiet = add_reader(runtime, "quiet@example.org", ["mx"])
    add_item(runtime, "Honduras", ["hn"], published=FRIDAY, arrives=FRIDAY)
    runtime.fixed_now = MONDAY
    recorder = Recorder()
    with smtp_server(recorder) as port:
        use_smtp(runtime, port)
        send_digests(runtime, regions=["hn"], runner="test")  # only hn readers go out
    fire_editions(runtime, now=MONDAY, zone=None, runner="test")  # gt queued, mx empty
    assert [d.state for d in ledger(runtime)] == ["sent", "pending"]
    # An item arrives after the fire; a rebuild puts it into the editions not sent yet.
    late = add_item(runtime, "Mexico late", ["mx"], published=MONDAY, arrives=MONDAY + timedelta(1))
    later = MONDAY + timedelta(days=1, hours=1)
    runtime.fixed_now = later
    report = rebuild_week(runtime, week=WEEK, now=later, runner="test")
    assert (report.dropped, report.frozen) == (2, 1)
    assert report.fire is not None and report.fire.editions == 2
    (quiet_edition,) = editions_of(runtime, quiet)
    assert quiet_edition.cutoff == later and quiet_edition.digest_id is not None
    assert editions_of(runtime, sent_reader)[0].cutoff == MONDAY  # frozen
    assert editions_of(runtime, waiting)[0].cutoff == later
    with runtime.session() as session:
        rows = session.exec(select(Delivery).order_by(Delivery.subscriber_id)).all()  # type: ignore[arg-type]
    assert [(r.subscriber_id, r.state) for r in rows] == [
        (sent_reader, "sent"), (waiting, "pending"), (quiet, "pending"),
    ]  # fmt: skip
    with runtime.session() as session:
        digest = session.get(Digest, quiet_edition.digest_id)
        assert digest is not None and digest.item_ids == f"[{late}]"
    status = {s.week: s for s in edition_status(runtime)}
    assert status[WEEK].counts == {"sent": 1, "pending": 2} and status[WEEK].state == "sending"


def test_status_says_no_items_and_sent(runtime: FixedClockRuntime) -> None:
    add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    add_reader(runtime, "a@example.org", ["gt"])
    add_reader(runtime, "b@example.org", ["mx"])
    runtime.fixed_now = MONDAY
    with smtp_server(Recorder()) as port:
        use_smtp(runtime, port)
        send_digests(runtime, regions=None, runner="test")
    (week,) = edition_status(runtime, week=WEEK)
    assert week.counts == {"sent": 1, "no items": 1} and week.state == "sent"


def test_a_held_week_waits_for_approval_then_takes_what_arrived(
    runtime: FixedClockRuntime,
) -> None:
    add_item(runtime, "Before", ["gt"], published=FRIDAY, arrives=FRIDAY)
    reader = add_reader(runtime, "held@example.org", ["gt"], timezone="UTC")  # gt's: Guatemala
    with runtime.session() as session:
        hold(session, week=WEEK, by="editor@example.org", now=FRIDAY)
    runtime.fixed_now = MONDAY
    fired = fire_editions(runtime, now=MONDAY, zone="UTC", runner="scheduler-1")
    assert fired.held == {WEEK} and fired.editions == 0 and editions_of(runtime, reader) == []
    add_item(runtime, "During the hold", ["gt"], published=MONDAY, arrives=MONDAY + timedelta(1))
    with runtime.session() as session:
        assert approve(session, week=WEEK, by="chief@example.org", now=MONDAY + timedelta(1))
    approved = MONDAY + timedelta(days=1, hours=2)
    fired = fire_editions(runtime, now=approved, zone="UTC", runner="scheduler-1")
    assert fired.editions == 1 and fired.queued == 1 and not fired.held
    assert editions_of(runtime, reader)[0].week == WEEK  # labelled with the held week


def test_the_web_copy_has_no_reader_data_and_cannot_be_forged(runtime: FixedClockRuntime) -> None:
    add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    add_reader(runtime, "private.reader@example.org", ["gt"])
    runtime.fixed_now = MONDAY
    recorder = Recorder()
    with smtp_server(recorder) as port:
        use_smtp(runtime, port)
        send_digests(runtime, regions=None, runner="test")
    html, _ = bodies(recorder, "private.reader@example.org")
    link = re.search(r'href="https://news\.example\.org(/editions/[^"]+)"', html)
    assert link is not None
    gen = make_web(runtime)
    web = next(gen)
    try:
        page = web.client.get(link.group(1))
        assert page.status_code == 200, page.text
        assert "Guatemala shelter" in page.text
        assert "private.reader" not in page.text and "/unsubscribe/" not in page.text
        assert "/preferences/" not in page.text and "%%" not in page.text
        for bad in ("/editions/WzEsImVuIl0.forged", "/editions/1", "/editions/" + "A" * 300,
                    "/editions/preview"):  # fmt: skip
            assert web.client.get(bad).status_code == 404
    finally:
        next(gen, None)


def test_a_reader_in_another_zone_is_fired_with_their_zone(runtime: FixedClockRuntime) -> None:
    add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    utc = add_reader(runtime, "utc@example.org", ["gt"], timezone="UTC")  # chose UTC
    gt = add_reader(runtime, "gt@example.org", ["gt"], timezone="America/Guatemala")
    fired = fire_editions(runtime, now=MONDAY, zone="America/Guatemala", runner="scheduler-x")
    assert fired.editions == 1 and editions_of(runtime, utc) == []
    assert editions_of(runtime, gt)[0].week == WEEK  # 02:00 Monday in Guatemala: W48 ended
    fire_editions(runtime, now=NEXT_MONDAY, zone="UTC", runner="scheduler-x")
    assert [e.week for e in editions_of(runtime, utc)] == ["2026-W49"]


def test_the_scheduler_job_leaves_a_held_week_alone(runtime: FixedClockRuntime) -> None:
    from publisher.schedule import tasks

    add_item(runtime, "Before", ["gt"], published=FRIDAY, arrives=FRIDAY)
    reader = add_reader(runtime, "held2@example.org", ["gt"], timezone="UTC")
    with runtime.session() as session:
        hold(session, week=WEEK, by="editor@example.org", now=FRIDAY)
    runtime.fixed_now = MONDAY + timedelta(seconds=30)
    outcome = tasks.run_zone_fire(runtime, zone="UTC", now=runtime.now(), runner="host:1:a")
    assert (outcome.week, outcome.status) == (WEEK, tasks.HELD)
    assert outcome.queued == 0 and editions_of(runtime, reader) == []


def test_a_week_begun_only_on_an_eastern_readers_clock_can_be_rebuilt(
    runtime: FixedClockRuntime,
) -> None:
    """Found by the property test: an early send at Sunday 11:00 UTC gives a reader in
    Auckland (already Monday) an edition of the next week; rebuilding that week was refused
    as "not begun", judged on TIMEZONE's clock, and the late item could not be put in."""
    reader = add_reader(runtime, "kiwi@example.org", ["americas"], timezone="Pacific/Auckland")
    add_item(runtime, "Before", ["americas"], published=FRIDAY, arrives=FRIDAY)
    sunday = MONDAY + timedelta(days=6, hours=3)  # 2026-12-06 11:00 UTC, Monday 00:00 there
    runtime.fixed_now = sunday
    fire_editions(runtime, now=sunday, zone=None, early=True, runner="test")
    (edition,) = editions_of(runtime, reader)
    assert edition.week == "2026-W50"
    late = add_item(runtime, "Late", ["americas"], published=sunday, arrives=sunday)
    later = sunday + timedelta(hours=1)
    runtime.fixed_now = later
    report = rebuild_week(runtime, week="2026-W50", now=later, runner="test")
    assert report.dropped == 1 and report.fire is not None and report.fire.editions == 1
    (rebuilt,) = editions_of(runtime, reader)
    assert (rebuilt.week, rebuilt.cutoff) == ("2026-W50", later)
    with runtime.session() as session:
        digest = session.get(Digest, rebuilt.digest_id)
        assert digest is not None and str(late) in digest.item_ids
