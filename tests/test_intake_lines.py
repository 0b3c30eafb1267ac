"""Line structure of item files: a line ends at \\n or \\r\\n only (DESIGN.md, File formats).

Vertical tab, form feed, the information separators, NEL and the Unicode line and paragraph
separators inside a title are cleaned like other control characters; they never split a record,
so a good item next to one is never lost and title/summary pairs never shift.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.errors import InputError
from publisher.intake.readers import read_csv, read_json, read_seed
from publisher.intake.records import RawRecord, clean_record

SEPARATORS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\r"

# Titles that are visible text with separators anywhere inside (a title of separators only would
# be a blank line, which the seed format skips by design).
words = st.text(st.characters(codec="utf-8", categories=("L", "N")), min_size=1, max_size=12)
dirty = st.lists(st.one_of(words, st.sampled_from(SEPARATORS)), min_size=0, max_size=6)


@st.composite
def titled(draw: st.DrawFn) -> str:
    parts = draw(dirty)
    at = draw(st.integers(0, len(parts)))
    return "".join([*parts[:at], draw(words), *parts[at:]])


def cleaned(title: str) -> str:
    """What clean_field should make of a title: separators as spaces, spaces collapsed, NFC."""
    spaced = title.translate({ord(c): " " for c in SEPARATORS})
    return unicodedata.normalize("NFC", " ".join(spaced.split()))


def records(path: Path, reader: object) -> list[RawRecord | InputError]:
    return list(reader(path))  # type: ignore[operator]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(titles=st.lists(titled(), min_size=1, max_size=6), crlf=st.booleans())
def test_separators_in_seed_titles_never_shift_pairs(
    tmp_path: Path, titles: list[str], crlf: bool
) -> None:
    end = "\r\n" if crlf else "\n"
    f = tmp_path / "seed.txt"
    body = "".join(f"{t}{end}Summary number {n}.{end}{end}" for n, t in enumerate(titles))
    f.write_bytes(body.encode("utf-8"))
    got = [clean_record(r) for r in records(f, read_seed) if isinstance(r, RawRecord)]
    assert [(i.title, i.summary) for i in got] == [
        (cleaned(t), f"Summary number {n}.") for n, t in enumerate(titles)
    ]
    assert [i.line for i in got] == [1 + 3 * n for n in range(len(titles))]


def test_each_separator_is_cleaned_and_the_next_item_survives(tmp_path: Path) -> None:
    f = tmp_path / "seed.txt"
    lines = []
    for n, sep in enumerate(SEPARATORS):
        lines += [f"Costa{sep}Rica {n}", f"Summary {n}."]
    lines += ["Good item", "Good summary."]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="")
    got = [clean_record(r) for r in records(f, read_seed) if isinstance(r, RawRecord)]
    assert [i.title for i in got] == [f"Costa Rica {n}" for n in range(len(SEPARATORS))] + [
        "Good item"
    ]
    assert got[-1].summary == "Good summary."


def test_a_lone_carriage_return_in_a_csv_field_does_not_split_the_row(tmp_path: Path) -> None:
    f = tmp_path / "items.csv"
    rows = ["title,summary"] + [
        f"Costa{sep}Rica {n},Summary {n}." for n, sep in enumerate(SEPARATORS)
    ]
    rows += ['"Quoted\r\nnewline",Kept.', "Good item,Good summary."]
    f.write_bytes(("\r\n".join(rows) + "\r\n").encode("utf-8"))
    got = records(f, read_csv)
    assert [e for e in got if isinstance(e, InputError)] == []
    items = [clean_record(r) for r in got if isinstance(r, RawRecord)]
    assert [i.title for i in items] == [f"Costa Rica {n}" for n in range(len(SEPARATORS))] + [
        "Quoted newline",
        "Good item",
    ]
    assert [i.summary for i in items][-1] == "Good summary."


def test_separators_in_json_strings_are_cleaned(tmp_path: Path) -> None:
    f = tmp_path / "items.json"
    data = [{"title": f"Costa{sep}Rica", "summary": f"S{sep}T"} for sep in SEPARATORS]
    f.write_text(json.dumps([*data, {"title": "Good", "summary": "Fine."}]), encoding="utf-8")
    items = [clean_record(r) for r in records(f, read_json) if isinstance(r, RawRecord)]
    assert [(i.title, i.summary) for i in items] == [("Costa Rica", "S T")] * len(SEPARATORS) + [
        ("Good", "Fine.")
    ]
