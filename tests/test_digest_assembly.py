"""Edition content (pure: order, labels, caps, dates) and the `digests preview` command.

The content is what ``EditionRenderer.render`` renders (``build_edition`` over ``item_view``);
what an edition holds, from the store, is tested in test_editions and test_edition_plan."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import pytest

from publisher.digest.assembly import MAX_ITEMS, count_label, period_label, pick_locale, shorten
from publisher.digest.edition_content import (
    EditionContent,
    build_edition,
    edition_subject,
    item_view,
)
from publisher.digest.editions import plan_edition
from publisher.models import ItemPublic
from publisher.regions.tree import RegionTree

BASE = "https://news.example.org"
WEB_URL = f"{BASE}/editions/TOKEN"
TREE = RegionTree.load()
CUT = datetime(2026, 11, 30, 8, tzinfo=UTC)  # the W48 fire


def item(
    i: int, published: datetime, regions: list[str], title: str = "", summary: str = ""
) -> ItemPublic:
    return ItemPublic(
        id=i, guid=f"g{i}", title=title or f"Item {i}", summary=summary or f"Summary {i}.",
        link=None, published=published, updated=published, regions=regions, visible_at=published,
    )  # fmt: skip


def content(
    items: list[ItemPublic], regions: tuple[str, ...] = ("central-america",), *,
    locale: str = "en", tz: tzinfo = UTC, max_items: int | None = MAX_ITEMS,
) -> EditionContent:  # fmt: skip
    """The W48 edition of a new reader of ``regions``, as the renderer builds it."""
    plan = plan_edition(TREE, regions, items, week="2026-W48", window_start=CUT - timedelta(days=7),
                        cutoff=CUT)  # fmt: skip
    lang = pick_locale(locale)

    def name(slug: str) -> str:
        return TREE.get(slug).name(lang)

    return build_edition(
        plan, locale=locale, name_of=name, web_url=WEB_URL, max_items=max_items,
        view=lambda it: item_view(it, locale=lang, base_url=BASE, name_of=name, tz=tz),
    )  # fmt: skip


# --- pure content ------------------------------------------------------------------------


def test_content_orders_items_newest_first_and_links_them() -> None:
    t = datetime(2026, 11, 24, 9, tzinfo=UTC)
    items = [
        item(1, t, ["gt"]),
        item(2, t + timedelta(days=2), ["americas"]),
        item(3, t, ["cr", "pa"]),
    ]
    c = content(items)
    assert c.item_ids == (2, 3, 1)
    (section,) = c.sections
    assert (section.region, section.name, section.count_label) == (
        "central-america", "Central America", "3 new items",
    )  # fmt: skip
    assert [i.url for i in section.items] == [f"{BASE}/items/{n}" for n in (2, 3, 1)]
    assert section.items[1].region_names == ("Costa Rica", "Panama")
    assert c.subject == "Your news: Central America, week 48 of 2026"
    assert c.preheader == "3 new items: Item 2; Item 3"  # the first two of each section
    assert c.web_url == WEB_URL
    assert c.period_label == "Nov 23\u2009\u2013\u200929, 2026"
    assert (c.more, c.empty) == (0, False)


def test_content_in_spanish() -> None:
    t = datetime(2026, 11, 24, 9, tzinfo=UTC)
    c = content([item(1, t, ["mx"])], locale="es-CL")
    assert c.locale == "es"
    assert c.subject == "Sus noticias: Centroamérica, semana 48 de 2026"
    assert c.count_label == "1 noticia nueva"
    assert c.sections[0].items[0].region_names == ("México",)
    assert "nov" in c.period_label


def test_long_lists_are_capped_in_the_email_but_frozen_whole() -> None:
    t = datetime(2026, 11, 24, tzinfo=UTC)
    items = [item(i, t + timedelta(minutes=i), ["gt"]) for i in range(1, 46)]
    c = content(items, ("gt",), max_items=30)
    assert len(c.item_ids) == 45 and len(c.sections[0].items) == 30 and c.more == 15
    assert c.item_ids[:3] == (45, 44, 43)
    # the cap is for the whole edition: the second section gets what the first left
    items += [item(i, t + timedelta(minutes=i), ["hn"]) for i in range(101, 121)]
    c = content(items, ("gt", "hn"), max_items=50)
    assert [len(s.items) for s in c.sections] == [45, 5] and c.more == 15
    assert c.sections[1].count_label == "20 new items"  # counts all, shows what fits
    assert len(content(items, ("gt", "hn"), max_items=None).item_ids) == 65


def test_empty_content() -> None:
    c = content([], ("gt",))
    assert c.empty and c.preheader == "0 new items" and c.sections == ()


def test_item_dates_are_shown_in_the_zone_given() -> None:
    from zoneinfo import ZoneInfo

    late = datetime(2026, 11, 25, 3, tzinfo=UTC)  # the 24th in Guatemala
    c = content([item(1, late, ["gt"])], ("gt",), tz=ZoneInfo("America/Guatemala"))
    assert c.sections[0].items[0].date_label == "Nov 24, 2026"
    assert content([item(1, late, ["gt"])], ("gt",)).sections[0].items[0].date_label == (
        "Nov 25, 2026"
    )


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
    assert (
        edition_subject(["Caribbean"], "2027-W01", "en") == "Your news: Caribbean, week 1 of 2027"
    )
    assert count_label(1, "en") == "1 new item" and count_label(2, "es") == "2 noticias nuevas"
    assert period_label("2026-W53", "en") == "Dec 28, 2026\u2009\u2013\u2009Jan 3, 2027"


# --- the command line --------------------------------------------------------------------


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
