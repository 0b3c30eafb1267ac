"""Editions under races, crashes and bad input (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from publisher.errors import InputError
from publisher.pipeline import edition_writer
from publisher.pipeline import editions as pipeline
from publisher.pipeline.edition_tools import preview_edition, send_test_edition
from publisher.pipeline.editions import fire_editions
from publisher.store import edition_digests as batches
from publisher.store.notes import notes_of_week, set_note
from tests.conftest import FixedClockRuntime
from tests.edition_support import MONDAY, add_item, add_reader, editions_of, per_reader_week

FRIDAY = MONDAY - timedelta(days=3)


def test_a_fire_that_loses_a_race_queues_nothing_twice(
    runtime: FixedClockRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two schedulers read the same readers as owed; the second one's rows lose to the first."""
    add_item(runtime, "Item", ["gt"], published=FRIDAY, arrives=FRIDAY)
    readers = [add_reader(runtime, f"r{n}@example.org", ["gt"]) for n in range(3)]
    first = fire_editions(runtime, now=MONDAY, zone=None, runner="scheduler-a")
    assert first.queued == 3
    # The second scheduler read "nobody has W48" before the first committed.
    monkeypatch.setattr(pipeline.store, "latest_weeks", lambda *a, **k: {})
    second = fire_editions(runtime, now=MONDAY + timedelta(minutes=1), zone=None, runner="b")
    assert (second.editions, second.queued) == (0, 0)  # its digest has no owners
    assert set(per_reader_week(runtime).values()) == {1}
    for sid in readers:
        (edition,) = editions_of(runtime, sid)
        assert edition.cutoff == MONDAY  # the first fire's window stays theirs


def test_a_crash_between_chunks_leaves_whole_editions_and_the_rerun_finishes(
    runtime: FixedClockRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_item(runtime, "Item", ["gt"], published=FRIDAY, arrives=FRIDAY)
    for n in range(5):
        add_reader(runtime, f"c{n}@example.org", ["gt"])
    monkeypatch.setattr(edition_writer, "CHUNK", 2)
    real, calls = batches.edition_owners, []

    def dying(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed mid-fire")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(batches, "edition_owners", dying)
    with pytest.raises(KeyboardInterrupt):
        fire_editions(runtime, now=MONDAY, zone=None, runner="scheduler-a")
    # The first chunk committed (editions with their ledger rows), the second rolled back.
    assert sum(per_reader_week(runtime).values()) == 2
    monkeypatch.setattr(batches, "edition_owners", real)
    again = fire_editions(runtime, now=MONDAY + timedelta(minutes=5), zone=None, runner="sched")
    assert (again.already, again.queued) == (2, 3)
    assert sum(per_reader_week(runtime).values()) == 5
    assert set(per_reader_week(runtime).values()) == {1}


def test_notes_are_plain_text_short_and_escaped(runtime: FixedClockRuntime) -> None:
    add_item(runtime, "Item", ["gt"], published=FRIDAY, arrives=FRIDAY)
    with runtime.session() as session:
        with pytest.raises(InputError, match="at most 500"):
            set_note(session, week="2026-W48", region="", text="x" * 501, by="e", now=FRIDAY)
        hostile = "<script>alert(1)</script>\r\nBcc: evil@example.org \u202egnp.exe"
        set_note(session, week="2026-W48", region="gt", text=hostile, by="e", now=FRIDAY)
        set_note(session, week="2026-W48", region="", text="   ", by="e", now=FRIDAY)  # = none
        assert notes_of_week(session, week="2026-W48") == {"gt": hostile.strip()}
    shown = preview_edition(runtime, ["gt"], "en", MONDAY, week="2026-W48")
    assert "<script>" not in shown.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.html
    assert "\u202e" in shown.text  # shown as written, never interpreted: text is data


@pytest.mark.parametrize(
    "to", ["editor@example.org\r\nBcc: x@example.org", "a@b\nc", "", "x" * 400 + "@example.org"]
)
def test_a_test_copy_refuses_an_address_that_would_inject_headers(
    runtime: FixedClockRuntime, to: str
) -> None:
    with pytest.raises(InputError):
        send_test_edition(runtime, ["gt"], to, "en", MONDAY)


def test_unknown_regions_zones_and_empty_sets_are_refused(runtime: FixedClockRuntime) -> None:
    from publisher.errors import ConfigError, UnknownRegionError

    with pytest.raises(UnknownRegionError):
        preview_edition(runtime, ["atlantis"], "en", MONDAY)
    with pytest.raises(InputError, match="at least one region"):
        preview_edition(runtime, [], "en", MONDAY)
    with pytest.raises(ConfigError, match="unknown time zone"):
        fire_editions(runtime, now=MONDAY, zone="Mars/Olympus", week="2026-W48", runner="t")
