"""The console's item list query (store/item_search.py) on SQLite and PostgreSQL: filters, keyset
pages that never skip nor repeat an item, and the bounded window of the text and language filters.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.errors import InputError
from publisher.intake.records import RawRecord
from publisher.models import ItemPublic
from publisher.pipeline.edits import delete_item
from publisher.pipeline.intake import ImportReport, import_records, read_upload
from publisher.store.item_search import ItemFilter, search_items
from publisher.store.items import ItemInsert, insert_items, list_items
from tests.conftest import FIXED_NOW, FixedClockRuntime

NOW = FIXED_NOW
T0 = datetime(2026, 11, 1, tzinfo=UTC)
TEXTS = ["Guatemala floods", "Honduras roads", "Mexico elections", "Chile mining", "Cuba sugar"]
LANGS = ["en", "es", "pt-BR", ""]
REGIONS = [("gt",), ("hn",), ("mx",), ("cl",), ("cu", "caribbean")]


def seed(rt: FixedClockRuntime, n: int, *, same_time_every: int = 1) -> None:
    """``n`` items, several sharing a published time (ties the keyset must break by id)."""
    rows = [
        ItemInsert(
            guid=f"g{i}", title=f"{TEXTS[i % 5]} {i}", summary=f"Summary {i} 100% _done_",
            link=None, published=T0 + timedelta(hours=i // same_time_every),
            regions=REGIONS[i % 5], source="test", regions_inferred=False, lang=LANGS[i % 4],
        )
        for i in range(n)
    ]  # fmt: skip
    with rt.session() as session:
        insert_items(session, items=rows, now=T0 - timedelta(days=1))


def every_page(
    rt: FixedClockRuntime, wanted: ItemFilter, *, limit: int, scan: int = 5_000
) -> tuple[list[int], int]:
    """The ids of all pages in order, and how many pages it took."""
    ids: list[int] = []
    after = None
    pages = 0
    with rt.session() as session:
        while True:
            found = search_items(
                session, wanted=wanted, now=NOW, after=after, limit=limit, scan=scan
            )
            pages += 1
            ids += [r.id for r in found.rows]
            if found.after is None:
                return ids, pages
            after = found.after
            assert pages < 1000


def expected(rt: FixedClockRuntime, keep: object) -> list[int]:
    with rt.session() as session:
        found = search_items(session, wanted=ItemFilter(), now=NOW, limit=10_000)
    return [r.id for r in found.rows if keep(r)]  # type: ignore[operator]


def test_newest_first_and_keyset_pages_cover_everything_once(runtime: FixedClockRuntime) -> None:
    seed(runtime, 120, same_time_every=7)
    ids, pages = every_page(runtime, ItemFilter(), limit=25)
    assert len(ids) == 120 == len(set(ids))
    assert pages == 5
    with runtime.session() as session:
        rows = search_items(session, wanted=ItemFilter(), now=NOW, limit=200).rows
    keys = [(r.published, r.id) for r in rows]
    assert keys == sorted(keys, reverse=True)
    assert [r.id for r in rows] == ids


def test_filters_region_language_text_dates_status(runtime: FixedClockRuntime) -> None:
    seed(runtime, 60)
    tree = runtime.tree
    central = tree.descendants("central-america") | {"central-america"}
    ids, _ = every_page(runtime, ItemFilter(regions=central), limit=7)
    assert sorted(ids) == sorted(expected(runtime, lambda r: set(r.regions) & {"gt", "hn", "mx"}))
    ids, _ = every_page(runtime, ItemFilter(lang="pt"), limit=7)
    assert ids and ids == expected(runtime, lambda r: r.lang == "pt-BR")
    ids, _ = every_page(runtime, ItemFilter(text="HONDURAS"), limit=5)
    assert ids == expected(runtime, lambda r: r.title.startswith("Honduras"))
    # LIKE wildcards in the text are literal characters, not patterns.
    assert every_page(runtime, ItemFilter(text="100%"), limit=100)[0] == expected(runtime, bool)
    assert every_page(runtime, ItemFilter(text="1_0"), limit=100)[0] == []
    since, until = T0 + timedelta(hours=10), T0 + timedelta(hours=20)
    ids, _ = every_page(runtime, ItemFilter(since=since, until=until), limit=4)
    assert ids == expected(runtime, lambda r: since <= r.published < until)


def test_status_embargoed_visible_and_withdrawn(runtime: FixedClockRuntime) -> None:
    seed(runtime, 10)
    late = NOW + timedelta(days=3)
    with runtime.session() as session:
        report = import_records(
            session,
            records=[RawRecord("t", 1, "Future Guatemala item", "soon", published=late)],
            tree=runtime.tree, inferrer=runtime.inferrer, now=NOW,
        )  # fmt: skip
        future = report.ids[0]
    with runtime.session() as session:
        assert delete_item(session, item_id=1, now=NOW)
    embargoed, _ = every_page(runtime, ItemFilter(status="embargoed"), limit=5)
    visible, _ = every_page(runtime, ItemFilter(status="visible"), limit=5)
    withdrawn, _ = every_page(runtime, ItemFilter(status="withdrawn"), limit=5)
    assert embargoed == [future]
    assert future not in visible and 1 not in visible and len(visible) == 9
    assert withdrawn == [1]
    with runtime.session() as session:
        gone = search_items(
            session, wanted=ItemFilter(status="withdrawn", text="guatemala"), now=NOW
        )
        assert [r.withdrawn for r in gone.rows] == [True]
        elsewhere = ItemFilter(status="withdrawn", regions=frozenset({"hn"}))
        assert search_items(session, wanted=elsewhere, now=NOW).rows == []


def test_text_filter_reads_a_bounded_window_and_says_how_far(runtime: FixedClockRuntime) -> None:
    seed(runtime, 50)
    with runtime.session() as session:
        first = search_items(session, wanted=ItemFilter(text="cuba"), now=NOW, limit=20, scan=12)
    # 12 newest rows hold 2 or 3 Cuba items; the page stops there and names the window's end.
    assert 0 < len(first.rows) <= 3 and first.scanned_to is not None
    assert first.after is not None and first.after[0] == first.scanned_to
    ids, pages = every_page(runtime, ItemFilter(text="cuba"), limit=20, scan=12)
    assert ids == expected(runtime, lambda r: r.title.startswith("Cuba")) and pages >= 4


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    limit=st.integers(1, 9),
    scan=st.integers(1, 30),
    text=st.sampled_from(["", "a", "guatemala", "zzz", "1"]),
    lang=st.sampled_from(["", "en", "pt"]),
)
def test_pages_never_skip_nor_repeat(
    runtime: FixedClockRuntime, limit: int, scan: int, text: str, lang: str
) -> None:
    """Whatever the page size and window, walking the pages gives exactly the matching items
    in order (run on one seeded store per database; hypothesis varies the reading)."""
    with runtime.session() as session:
        if not search_items(session, wanted=ItemFilter(), now=NOW, limit=1).rows:
            seed(runtime, 40, same_time_every=3)
    wanted = ItemFilter(text=text, lang=lang)
    ids, _ = every_page(runtime, wanted, limit=limit, scan=scan)

    truth = [
        r.id
        for r in _all_rows(runtime)
        if (not text or text in r.title.lower() or text in r.summary.lower())
        and (not lang or r.lang == lang or r.lang.startswith(lang + "-"))
    ]
    assert ids == truth


def _all_rows(rt: FixedClockRuntime) -> list[ItemPublic]:
    with rt.session() as session:
        return list_items(session, limit=None)


def test_an_upload_reports_every_line(runtime: FixedClockRuntime) -> None:
    data = (
        b"title,summary,regions\n"
        b"Guatemala floods,Rain,gt\n"
        b"Bad region,text,atlantis\n"
        b"Guatemala floods,Rain,gt\n"
        b"only,two,columns,too many\n"
        b",no title,\n"
    )
    with runtime.session() as session:
        report = import_records(
            session, records=read_upload(data, name="up.csv"), tree=runtime.tree,
            inferrer=runtime.inferrer, now=NOW,
        )  # fmt: skip
    got = [(r.line, r.result, r.same_as) for r in report.lines]
    assert got == [
        (2, "added", None), (3, "skipped", None), (4, "present", 2), (5, "skipped", None),
        (6, "skipped", None),
    ]  # fmt: skip
    assert "atlantis" in report.lines[1].reason and "title" in report.lines[4].reason
    with runtime.session() as session:
        again = import_records(
            session, records=read_upload(data, name="up.csv"), tree=runtime.tree,
            inferrer=runtime.inferrer, now=NOW,
        )  # fmt: skip
    assert [r.result for r in again.lines][:1] == ["present"] and again.added == 0


def _upload(rt: FixedClockRuntime, data: bytes, name: str) -> ImportReport:
    with rt.session() as session:
        return import_records(
            session, records=read_upload(data, name=name), tree=rt.tree,
            inferrer=rt.inferrer, now=NOW,
        )  # fmt: skip


def test_malformed_records_are_skipped_with_their_reason(runtime: FixedClockRuntime) -> None:
    report = _upload(runtime, b'[{"title": 1}, {"title": "ok", "summary": "fine"}, 3]', "x.json")
    assert [r.result for r in report.lines] == ["skipped", "added", "skipped"]
    assert "title must be text" in report.lines[0].reason
    assert "not an object" in report.lines[2].reason


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (b'{"title": "x"}', "x.json", "expected a JSON list"),
        (b"[{", "x.json", "not JSON"),
        (b"\xff\xfe junk", "x.txt", "not UTF-8"),
        (b"<html><body>hi</body></html>", "x.rss", "not an RSS or Atom feed"),
    ],
)
def test_unreadable_files_are_one_error(
    runtime: FixedClockRuntime, data: bytes, name: str, reason: str
) -> None:
    with pytest.raises(InputError, match=reason):
        _upload(runtime, data, name)
