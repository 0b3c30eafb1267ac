"""Item images: taken in by hand (API, CSV, JSON), shown on item pages and in edition emails."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa

from publisher.digest.editions import plan_edition
from publisher.email.placeholders import Placeholders
from publisher.errors import InputError
from publisher.intake.readers import read_csv, read_json
from publisher.intake.records import RawRecord, clean_record
from publisher.models import Item, ItemPublic, ItemRegion
from publisher.pipeline.edition_render import EditionRenderer
from publisher.runtime import Runtime
from tests.test_email_render import CUTOFF, MONDAY, SETTINGS, TREE
from tests.web_support import AUTH, Web, seeded_web

IMG = "https://img.example.org/floods.jpg"


@pytest.fixture
def web(runtime: Runtime) -> Iterator[Web]:
    yield from seeded_web(runtime)


def test_api_item_carries_an_image(web: Web) -> None:
    body = {"title": "Floods in Peru", "summary": "Rain.", "image_url": IMG, "image_alt": "A river"}
    r = web.client.post("/api/items", headers=AUTH, json=body)
    assert r.status_code == 201
    assert (r.json()["image_url"], r.json()["image_alt"]) == (IMG, "A river")
    page = web.client.get(f"/items/{r.json()['id']}").text
    img = re.search(r'<img src="([^"]+)" width="640" height="360" alt="([^"]*)"', page)
    assert img and img.groups() == (IMG, "A river")
    for bad in ("javascript:alert(1)", "ftp://x.org/a.png", "https://x.org/a b.png", "/a.png"):
        r = web.client.post("/api/items", headers=AUTH, json={"title": "x", "image_url": bad})
        assert r.status_code == 422 and "image_url" in r.json()["detail"], bad


def test_a_hostile_stored_image_is_not_rendered(web: Web) -> None:
    now = web.runtime.now()
    with web.runtime.session() as session:
        session.execute(
            sa.insert(Item),
            {"guid": "raw", "title": "t", "summary": "", "source": "x", "published": now,
             "updated": now, "created": now, "visible_at": now, "image_url": "javascript:alert(1)",
             "image_alt": '"><script>x</script>'},
        )  # fmt: skip
        item_id = session.execute(sa.select(Item.id).where(Item.guid == "raw")).scalar_one()
        session.execute(sa.insert(ItemRegion), {"item_id": item_id, "region": "gt"})
    page = web.client.get(f"/items/{item_id}").text
    assert "javascript:" not in page and "<script>x" not in page


def test_csv_and_json_columns(tmp_path: Path) -> None:
    csv = tmp_path / "items.csv"
    csv.write_text(f"title,summary,image_url,image_alt\nPeru floods,Rain.,{IMG},A river\n")
    data = tmp_path / "items.json"
    data.write_text(json.dumps([{"title": "Peru", "image_url": IMG, "image_alt": "<b>River</b>"}]))
    for reader, path in ((read_csv, csv), (read_json, data)):
        [record] = list(reader(path))
        assert isinstance(record, RawRecord)
        item = clean_record(record)
        assert item.image_url == IMG and item.image_alt in ("A river", "River")


def test_alt_without_image_is_dropped_and_bad_image_is_an_error() -> None:
    item = clean_record(RawRecord("x", 1, title="t", image_alt="orphan alt"))
    assert (item.image_url, item.image_alt) == (None, "")
    with pytest.raises(InputError, match="image_url must be an absolute http"):
        clean_record(RawRecord("x", 1, title="t", image_url="data:image/png;base64,AAAA"))
    with pytest.raises(InputError, match="image_alt is"):
        clean_record(RawRecord("x", 1, title="t", image_url=IMG, image_alt="a" * 301))


def _edition(image_url: str | None, alt: str) -> str:
    """The HTML of a Peru reader's edition holding one item with this image."""
    items = [
        ItemPublic(
            id=1, guid="g", title="Floods in Peru", summary="Rain.", link=None,
            published=MONDAY + timedelta(hours=9), updated=MONDAY, regions=["pe"],
            image_url=image_url, image_alt=alt, visible_at=MONDAY + timedelta(hours=9),
        )
    ]  # fmt: skip
    plan = plan_edition(TREE, ("pe",), items, week="2026-W48",
                        window_start=CUTOFF - timedelta(days=7), cutoff=CUTOFF)  # fmt: skip
    made = EditionRenderer(SETTINGS, TREE).render(
        plan, "en", marks=Placeholders.fresh(), web_url=f"{SETTINGS.base_url}/editions/T"
    )
    return made.html


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.found.append(dict(attrs))


def images(html: str) -> list[dict[str, str | None]]:
    parser = _Images()
    parser.feed(html)
    return parser.found


def test_the_edition_shows_the_image_at_a_fixed_size_with_alt() -> None:
    alt = 'River "Rímac" <flooded>'
    [img] = images(_edition(IMG, alt))
    assert (img["src"], img["width"], img["height"], img["alt"]) == (IMG, "536", "302", alt)
    assert "height: auto" in (img["style"] or "")  # inlined: it scales on narrow screens
    assert images(_edition(None, "")) == []
