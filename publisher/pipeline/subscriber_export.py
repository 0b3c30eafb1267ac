"""The subscribers CSV export: store pages written as CSV text, safe to open in a spreadsheet.

The columns are the import's (email, regions, status, locale) and two dates, so an export of
active and pending subscribers can be imported elsewhere. A cell a spreadsheet would run as a
formula (starting with = + - @, a tab or a carriage return) gets a leading apostrophe (OWASP's
advice for CSV injection); addresses may legally start with = + or -.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from publisher.models import SubscriberStatus
from publisher.store.subscriber_admin import ExportLine

HEADER = ("email", "regions", "status", "locale", "created", "confirmed")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")

Pages = Callable[[int], list[ExportLine]]


def neutralise(cell: str) -> str:
    """``cell`` as a spreadsheet shows it as text, never as a formula."""
    return "'" + cell if cell.startswith(_FORMULA) else cell


def _when(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def csv_lines(lines: Iterable[ExportLine]) -> str:
    """The CSV text of some export lines (no header)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for line in lines:
        row = (
            line.email, " ".join(line.regions), line.status, line.locale,
            _when(line.created), _when(line.confirmed),
        )  # fmt: skip
        writer.writerow([neutralise(cell) for cell in row])
    return out.getvalue()


def export_csv(next_page: Pages) -> Iterator[str]:
    """The whole export as CSV chunks, one per page; ``next_page(after_id)`` reads the store.

    Keyset pages by id, so a subscriber added while the export runs is either in it or not,
    and nobody is written twice.
    """
    yield ",".join(HEADER) + "\r\n"
    after = 0
    while page := next_page(after):
        yield csv_lines(page)
        after = page[-1].id


def export_filename(status: SubscriberStatus | None, now: datetime) -> str:
    """E.g. subscribers-active-2026-11-27.csv."""
    part = f"-{status}" if status else ""
    return f"subscribers{part}-{now:%Y-%m-%d}.csv"
