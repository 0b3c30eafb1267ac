"""The editions page's pure rules: which week the next send is, when a zone's fire comes, notes.

No database, no server: the week a hold or a note applies to and the zones an approval fires
now are decided by these functions, so they are tested on their own (DST and zones included).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.settings import Settings
from publisher.web.admin.editions import Refused, clean_note, fire_time, next_week, valid_week

BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def test_next_week_is_the_week_the_coming_fire_sends(make_settings: Callable[..., Settings]):
    settings = make_settings()  # Monday 08:00 UTC
    friday = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # 2026-W48
    assert next_week(settings, friday) == "2026-W48"
    assert next_week(settings, datetime(2026, 11, 30, 7, 59, tzinfo=UTC)) == "2026-W48"
    assert next_week(settings, datetime(2026, 11, 30, 8, 0, tzinfo=UTC)) == "2026-W48"
    assert next_week(settings, datetime(2026, 11, 30, 8, 1, tzinfo=UTC)) == "2026-W49"


def test_fire_time_is_the_local_send_time_after_the_week(make_settings: Callable[..., Settings]):
    settings = make_settings()
    assert fire_time(settings, "2026-W48", "UTC") == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    # Guatemala is UTC-6 all year: Monday 08:00 there is 14:00 UTC.
    guatemala = fire_time(settings, "2026-W48", "America/Guatemala")
    assert guatemala == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    # Madrid leaves summer time on 2026-10-25: W43 fires at 08:00 CET = 07:00 UTC.
    assert fire_time(settings, "2026-W43", "Europe/Madrid") == datetime(
        2026, 10, 26, 7, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "value", ["2026-W54", "2026-W00", "2026-w49", " 2026-W49", "2026-W49\r\n", "1969-W01", ""]
)
def test_valid_week_refuses_anything_but_a_canonical_label(value: str):
    with pytest.raises(Refused):
        valid_week(value)
    assert valid_week("2026-W53") == "2026-W53"


def test_clean_note_keeps_lines_and_drops_controls():
    note = clean_note("  <b>Hi</b>\r\nsecond\rthird\u202e!\x00\x1b  ")
    assert note == "<b>Hi</b>\nsecond\nthird!"


@given(st.text(max_size=600))
def test_clean_note_never_lets_a_control_or_bidi_character_through(text: str):
    note = clean_note(text)
    assert "\r" not in note
    assert not BIDI & set(note)
    assert all(c == "\n" or unicodedata.category(c) != "Cc" for c in note)
    assert len(note) <= len(text)
    assert note == clean_note(note)
