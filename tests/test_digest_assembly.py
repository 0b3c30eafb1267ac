"""Digest assembly: what goes in (window, related regions), freezing, skipping, preview, CLI."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from publisher.digest.assembly import build_content, count_label, period_label, shorten, subject_for
from publisher.email.placeholders import Placeholders
from publisher.errors import InputError, UnknownRegionError
from publisher.intake.records import RawRecord
from publisher.models import Digest, ItemPublic, RegionRow
from publisher.pipeline import digests as pipeline
from publisher.pipeline.digests import assemble_digest, digest_item_ids, next_week, preview
from publisher.pipeline.intake import import_records
from publisher.regions.tree import RegionTree
from publisher.runtime import Runtime

BASE = "https://news.example.org"
TREE = RegionTree.load()


def item(
    i: int, published: datetime, regions: list[str], title: str = "", summary: str = ""
) -> ItemPublic:
    return ItemPublic(
        id=i, guid=f"g{i}", title=title or f"Item {i}", summary=summary or f"Summary {i}.",
        link=None, published=published, updated=published, regions=regions,
    )  # fmt: skip


def name_en(slug: str) -> str:
    return TREE.get(slug).name_en


# --- pure assembly -----------------------------------------------------------------------


def test_content_orders_items_newest_first_and_links_them() -> None:
    t = datetime(2026, 11, 24, 9, tzinfo=UTC)
    items = [
        item(1, t, ["gt"]),
        item(2, t + timedelta(days=2), ["americas"]),
        item(3, t, ["cr", "pa"]),
    ]
    c = build_content(
        items, region="central-america", week="2026-W48", base_url=BASE, name_of=name_en
    )
    assert c.item_ids == (2, 3, 1)
    assert [i.url for i in c.items] == [f"{BASE}/items/{n}" for n in (2, 3, 1)]
    assert c.items[1].region_names == ("Costa Rica", "Panama")
    assert c.subject == "Central America news, week 48 of 2026"
    assert c.preheader == "3 new items: Item 2; Item 3; Item 1"
    assert c.archive_url == f"{BASE}/archive/central-america/2026-W48"
    assert c.period_label == "Nov 23\u2009\u2013\u200929, 2026"
    assert (c.more, c.empty) == (0, False)


def test_content_in_spanish() -> None:
    t = datetime(2026, 11, 24, 9, tzinfo=UTC)
    c = build_content(
        [item(1, t, ["mx"])], region="central-america", week="2026-W48", base_url=BASE,
        name_of=lambda s: TREE.get(s).name_es, locale="es-CL",
    )  # fmt: skip
    assert c.locale == "es"
    assert c.subject == "Noticias de Centroamérica, semana 48 de 2026"
    assert c.count_label == "1 noticia nueva"
    assert c.items[0].region_names == ("México",)
    assert "nov" in c.period_label


def test_long_lists_are_capped_in_the_email_but_frozen_whole() -> None:
    t = datetime(2026, 11, 24, tzinfo=UTC)
    items = [item(i, t + timedelta(minutes=i), ["gt"]) for i in range(1, 46)]
    c = build_content(
        items, region="gt", week="2026-W48", base_url=BASE, name_of=name_en, max_items=30
    )
    assert len(c.item_ids) == 45 and len(c.items) == 30 and c.more == 15
    assert c.item_ids[:3] == (45, 44, 43)


def test_empty_content() -> None:
    c = build_content([], region="gt", week="2026-W48", base_url=BASE, name_of=name_en)
    assert c.empty and c.preheader == "0 new items" and c.items == ()


def test_item_dates_are_shown_in_the_region_zone() -> None:
    from zoneinfo import ZoneInfo

    late = datetime(2026, 11, 25, 3, tzinfo=UTC)  # the 24th in Guatemala
    c = build_content(
        [item(1, late, ["gt"])], region="gt", week="2026-W48", base_url=BASE, name_of=name_en,
        tz=ZoneInfo("America/Guatemala"),
    )  # fmt: skip
    assert c.items[0].date_label == "Nov 24, 2026"


@pytest.mark.parametrize(
    ("text", "limit", "out"),
    [
        ("short", 10, "short"),
        ("one two three four five", 12, "one two…"),
        ("abcdefghijklmnop", 8, "abcdefg…"),
        ("words, with. punctuation; here", 18, "words, with…"),
    ],
)
def test_shorten(text: str, limit: int, out: str) -> None:
    assert shorten(text, limit) == out
    assert len(shorten(text, limit)) <= limit


def test_labels() -> None:
    assert subject_for("Caribbean", "2027-W01", "en") == "Caribbean news, week 1 of 2027"
    assert count_label(1, "en") == "1 new item" and count_label(2, "es") == "2 noticias nuevas"
    assert period_label("2026-W53", "en") == "Dec 28, 2026\u2009\u2013\u2009Jan 3, 2027"


# --- assembling from the store ------------------------------------------------------------

WEEK = "2026-W48"  # [2026-11-23, 2026-11-30) UTC


def add_items(rt: Runtime, rows: list[tuple[str, str, list[str]]]) -> list[int]:
    records = [
        RawRecord(
            source="t",
            line=n,
            title=title,
            summary=f"About {title}.",
            published=when,
            regions=regions,
        )
        for n, (title, when, regions) in enumerate(rows, 1)
    ]
    with rt.session() as s:
        report = import_records(
            s, records=records, tree=rt.tree, inferrer=rt.inferrer, now=rt.now()
        )
    assert report.errors == []
    return report.ids


@pytest.fixture
def week_items(runtime: Runtime) -> dict[str, int]:
    names = ["guatemala", "americas", "world", "caribbean", "before", "at-start", "at-end", "ca"]
    ids = add_items(
        runtime,
        [
            ("Guatemala item", "2026-11-25T10:00:00Z", ["gt"]),
            ("Americas item", "2026-11-26T10:00:00Z", ["americas"]),
            ("World item", "2026-11-27T10:00:00Z", ["world"]),
            ("Caribbean item", "2026-11-25T10:00:00Z", ["caribbean"]),
            ("Last week item", "2026-11-22T23:59:59Z", ["cr"]),
            ("Monday midnight item", "2026-11-23T00:00:00Z", ["pa"]),
            ("Next Monday item", "2026-11-30T00:00:00Z", ["sv"]),
            ("Central America item", "2026-11-29T23:00:00Z", ["central-america"]),
        ],
    )
    return dict(zip(names, ids, strict=True))


def test_an_embargoed_item_stays_out_of_a_digest_assembled_before_its_time(
    runtime: Runtime, week_items: dict[str, int]
) -> None:
    """Assembled on Friday 27 November (an early send), Sunday's item is still embargoed."""
    d = assemble(runtime, "central-america", now=datetime(2026, 11, 27, 12, tzinfo=UTC))
    w = week_items
    assert digest_item_ids(d) == [w["world"], w["americas"], w["guatemala"], w["at-start"]]
    assert "Central America item" not in d.html


AFTER_WEEK = datetime(2026, 12, 1, 8, tzinfo=UTC)  # every item of week_items is visible


def assemble(rt: Runtime, region: str, week: str = WEEK, now: datetime = AFTER_WEEK) -> Digest:
    with rt.session() as s:
        return assemble_digest(
            s, region=region, week=week, settings=rt.settings, tree=rt.tree, now=now
        )


def test_digest_holds_the_window_items_of_related_regions(
    runtime: Runtime, week_items: dict[str, int]
) -> None:
    d = assemble(runtime, "central-america")
    w = week_items
    assert d.status == "assembled" and d.id is not None
    assert digest_item_ids(d) == [w["ca"], w["world"], w["americas"], w["guatemala"], w["at-start"]]
    assert (d.window_start, d.window_end) == (
        datetime(2026, 11, 23, tzinfo=UTC),
        datetime(2026, 11, 30, tzinfo=UTC),
    )
    assert d.subject == "Central America news, week 48 of 2026"
    assert "Guatemala item" in d.html and "Caribbean item" not in d.html
    marker = Placeholders.of(d.placeholder_key).unsubscribe_url
    assert d.placeholder_key and marker in d.html and marker in d.text
    assert f"{BASE}/items/{w['guatemala']}" in d.html
    caribbean = assemble(runtime, "caribbean")
    assert digest_item_ids(caribbean) == [w["world"], w["americas"], w["caribbean"]]


def test_region_timezone_override_moves_the_window(
    runtime: Runtime, week_items: dict[str, int]
) -> None:
    with runtime.session() as s:
        row = s.get(RegionRow, "central-america")
        assert row is not None
        row.timezone = "America/Guatemala"  # UTC-6: the week runs 06:00 Monday to 06:00 Monday UTC
    d = assemble(runtime, "central-america")
    assert d.window_start == datetime(2026, 11, 23, 6, tzinfo=UTC)
    w = week_items
    assert digest_item_ids(d) == [w["at-end"], w["ca"], w["world"], w["americas"], w["guatemala"]]


def test_assembling_again_returns_the_frozen_digest(
    runtime: Runtime, week_items: dict[str, int]
) -> None:
    first = assemble(runtime, "central-america")
    add_items(runtime, [("Late arrival", "2026-11-28T10:00:00Z", ["gt"])])
    runtime.fixed_now = runtime.now() + timedelta(days=3)  # type: ignore[attr-defined]
    again = assemble(runtime, "central-america")
    assert (again.id, again.item_ids, again.html, again.text, again.created) == (
        first.id, first.item_ids, first.html, first.text, first.created,
    )  # fmt: skip
    with runtime.session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Digest)).scalar_one() == 1
        fresh = preview(
            s, region="central-america", week=WEEK, settings=runtime.settings, tree=runtime.tree
        )
    assert fresh.stored and "Late arrival" not in fresh.html


def test_a_week_without_items_is_skipped(runtime: Runtime, week_items: dict[str, int]) -> None:
    assert digest_item_ids(assemble(runtime, "western-africa")) == [week_items["world"]]
    d = assemble(runtime, "western-africa", "2026-W40")
    assert (d.status, d.html, d.text, digest_item_ids(d)) == ("skipped", "", "", [])
    assert d.subject == "Western Africa news, week 40 of 2026"
    assert assemble(runtime, "western-africa", "2026-W40").id == d.id


def test_a_concurrent_assembly_loses_to_the_first(
    runtime: Runtime, week_items: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    winner = assemble(runtime, "central-america")
    real = pipeline.find_digest
    looked = []  # the loser's first look happened before the winner committed

    def find(s: Session, **kw: str) -> Digest | None:
        looked.append(kw)
        return None if len(looked) == 1 else real(s, **kw)

    monkeypatch.setattr(pipeline, "find_digest", find)
    loser = assemble(runtime, "central-america")
    assert loser.id == winner.id and loser.html == winner.html
    assert len(looked) == 2  # it lost the insert, then read the winner back


def test_bad_region_or_week(runtime: Runtime) -> None:
    with pytest.raises(UnknownRegionError):
        assemble(runtime, "atlantis")
    with pytest.raises(InputError, match="2025 has ISO weeks 01 to 52"):
        assemble(runtime, "gt", "2025-W53")


def test_preview_stores_nothing_and_fills_sample_recipient(
    runtime: Runtime, week_items: dict[str, int]
) -> None:
    with runtime.session() as s:
        p = preview(s, region="CR", week=WEEK, settings=runtime.settings, tree=runtime.tree)
        assert next_week(s, region="cr", settings=runtime.settings, now=runtime.now()) == WEEK
        assert s.execute(sa.select(sa.func.count()).select_from(Digest)).scalar_one() == 0
    assert (p.region, p.stored, p.skipped) == ("cr", False, False)
    assert "%%" not in p.html and "%%" not in p.text
    assert f"{BASE}/unsubscribe/PREVIEW" in p.html and "reader@example.org" in p.text


def cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "PUBLISHER_DATABASE_URL": f"sqlite:///{tmp / 'var' / 'publisher.db'}",
        "PUBLISHER_VAR_DIR": str(tmp / "var"),
        "PUBLISHER_FEEDS_DIR": str(tmp / "feeds"),
        "PUBLISHER_BASE_URL": BASE,
    }
    return subprocess.run(
        [sys.executable, "-m", "publisher", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        timeout=120,
    )


def test_cli_preview_writes_html_text_and_eml(tmp_path: Path) -> None:
    assert cli(tmp_path, "db", "upgrade").returncode == 0
    seed = Path(__file__).resolve().parents[1] / "publisher" / "data" / "demo-items.txt"
    assert cli(tmp_path, "items", "import", str(seed)).returncode == 0
    for fmt in ("html", "text", "eml"):
        r = cli(
            tmp_path,
            "digests",
            "preview",
            "--region",
            "central-america",
            "--format",
            fmt,
            "--out",
            f"out/d.{fmt}",
        )
        assert r.returncode == 0, r.stderr
    html = (tmp_path / "out" / "d.html").read_text()
    assert "<table" in html and "Costa Rica" in html
    text = (tmp_path / "out" / "d.text").read_text()
    assert text.startswith("Your news: Central America, week ")
    msg = email.message_from_bytes(
        (tmp_path / "out" / "d.eml").read_bytes(), policy=email.policy.default
    )
    assert msg["To"] == "reader@example.org" and msg.get_body(("html",)) is not None
    stdout = cli(
        tmp_path, "digests", "preview", "--region", "fr", "--week", "2026-W01", "--format", "text"
    )
    assert stdout.returncode == 0 and b"0 new items" in stdout.stdout
    assert b"week 1 of 2026" in stdout.stdout  # --week labels the edition
    assert b"fr has no items in the window: no email would be sent" in stdout.stderr
    both = cli(tmp_path, "digests", "preview", "--region", "gt", "--region", "central-america",
               "--format", "text")  # fmt: skip
    assert both.returncode == 0 and both.stdout.startswith(b"Your news: Central America, week")
    bad = cli(tmp_path, "digests", "preview", "--region", "gt", "--week", "2025-W53")
    assert bad.returncode == 1
    assert bad.stderr == b"publisher: 2025 has ISO weeks 01 to 52; '2025-W53' does not exist\n"
    fmt = cli(tmp_path, "digests", "preview", "--region", "gt", "--format", "pdf")
    assert fmt.returncode == 1 and b"unknown --format 'pdf'" in fmt.stderr
