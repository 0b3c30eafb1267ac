"""Readers for the file formats in DESIGN.md: seed text, CSV and JSON.

Each yields a RawRecord per record, or an InputError for a record it cannot even split
out, so one bad row is reported and the rest still come through.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

from publisher.errors import InputError
from publisher.intake.records import RawRecord

Read = Iterator[RawRecord | InputError]
ITEM_COLUMNS = (
    "title",
    "summary",
    "link",
    "published",
    "regions",
    "guid",
    "lang",
    "image_url",
    "image_alt",
)
# DESIGN.md: a line ends at \n or \r\n only. str.splitlines() would also split on VT, FF,
# \x1c-\x1e, NEL, U+2028 and U+2029 (and csv on a lone \r), shifting every later record.
_LINE_END = re.compile(r"\r?\n")
_LONE_CR = re.compile(r"\r(?!\n)")


def read_text(path: Path) -> str:
    """Read a UTF-8 file (a BOM is allowed), naming the file when it is not UTF-8."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise InputError("no such file", source=str(path)) from e
    return decode_text(data, source=str(path))


def decode_text(data: bytes, *, source: str) -> str:
    """UTF-8 bytes (a BOM is allowed) as text, naming the source when they are not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text (byte {e.start})", source=source) from e


def read_seed(path: Path) -> Read:
    """Lines alternate title and summary; blank lines between pairs are tolerated."""
    yield from parse_seed(read_text(path), source=str(path))


def parse_seed(text: str, *, source: str) -> Read:
    """The seed format from text already read (a file, an upload)."""
    lines = [(n, line.strip()) for n, line in enumerate(_LINE_END.split(text), 1)]
    lines = [(n, line) for n, line in lines if line]
    for i in range(0, len(lines), 2):
        n, title = lines[i]
        if i + 1 >= len(lines):
            yield InputError("title without a summary line", source=source, line=n)
            continue
        yield RawRecord(source=source, line=n, title=title, summary=lines[i + 1][1])


def read_csv(path: Path) -> Read:
    """A header row naming title and summary, optionally link, published, regions, guid, image."""
    yield from parse_csv(read_text(path), source=str(path))


def parse_csv(text: str, *, source: str) -> Read:
    """The CSV format from text already read (a file, an upload)."""
    # A lone CR is not a line end; as a space it is what clean_field would make of it anyway.
    reader = csv.reader(io.StringIO(_LONE_CR.sub(" ", text), newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InputError("empty file; expected a header row", source=source, line=1) from None
    missing = [c for c in ("title", "summary") if c not in header]
    if missing:
        raise InputError(f"header lacks column(s) {', '.join(missing)}", source=source, line=1)
    width = len(header)
    where = [header.index(c) if c in header else None for c in ITEM_COLUMNS]
    for row in reader:
        if len(row) != width:
            if any(cell.strip() for cell in row):
                yield InputError(
                    f"row has {len(row)} columns, the header has {width}",
                    source=source,
                    line=reader.line_num,
                )
            continue
        values = [None if i is None else row[i] for i in where]
        yield RawRecord(source, reader.line_num, *values)


def read_json(path: Path) -> Read:
    """A JSON list of objects with the CSV's keys; the position in the list is the 'line'."""
    yield from parse_json(read_text(path), source=str(path))


def parse_json(text: str, *, source: str) -> Read:
    """The JSON format from text already read (a file, an upload)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"not JSON: {e.msg}", source=source, line=e.lineno) from e
    if not isinstance(data, list):
        raise InputError(
            f"expected a JSON list of objects, found {type(data).__name__}", source=source
        )
    for n, obj in enumerate(data, 1):
        if not isinstance(obj, dict):
            yield InputError(f"entry {n} is not an object", source=source, line=n)
            continue
        unknown = sorted(set(obj) - set(ITEM_COLUMNS))
        if unknown:
            yield InputError(f"unknown key(s) {', '.join(unknown)}", source=source, line=n)
            continue
        yield RawRecord(source=source, line=n, **{c: obj.get(c) for c in ITEM_COLUMNS})
