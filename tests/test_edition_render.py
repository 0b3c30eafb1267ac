"""The edition email in real Chromium at 375 and 800 px: sections, notes, nasty items (long
words, long URLs); and the fragments: each item rendered once per language however many
editions show it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from publisher.digest.editions import plan_edition
from publisher.email.placeholders import Placeholders
from publisher.email.render import fill
from publisher.models import ItemPublic
from publisher.pipeline.edition_render import EditionRenderer
from publisher.regions.tree import RegionTree
from publisher.settings import Settings
from tests.browser_support import chromium

ARTIFACTS = Path(__file__).parent / "artifacts"
TREE = RegionTree.load()
CUT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
SETTINGS = Settings(_env_file=None, base_url="https://news.example.org", secret_key="k")  # type: ignore[call-arg]


def items() -> list[ItemPublic]:
    t = CUT - timedelta(days=2)
    nasty = ItemPublic(
        id=200, guid="n1", title="Unbreakable-" + "x" * 90,
        summary="https://example.org/" + "p" * 150, published=t, updated=t,
        regions=["gt", "sv", "hn", "ni", "cr", "pa", "bz"], visible_at=t,
    )  # fmt: skip
    rest = [
        ItemPublic(
            id=n,
            guid=f"g{n}",
            title=f"Item {n} about the region",
            summary="Summary " * 30,
            published=t - timedelta(hours=n),
            updated=t,
            regions=[region],
            visible_at=t,
            lang="es" if n % 2 else "",
        )
        for n, region in enumerate(["gt", "hn", "hn", "central-america", "mx", "americas"], 1)
    ]
    return [nasty, *rest]


def render(language: str, renderer: EditionRenderer | None = None) -> tuple[str, list[int]]:
    plan = plan_edition(TREE, ("sv", "gt", "hn"), items(), week="2026-W48",
                        window_start=CUT - timedelta(days=7), cutoff=CUT)  # fmt: skip
    marks = Placeholders.fresh()
    made = (renderer or EditionRenderer(SETTINGS, TREE)).render(
        plan, language, marks=marks, web_url="https://news.example.org/editions/T",
        notes={"": "A note for the week " + "long " * 40, "hn": "Honduras note"},
    )  # fmt: skip
    values = marks.values(email="reader@example.org", unsubscribe_url="https://u.example/u",
                          preferences_url="https://u.example/p")  # fmt: skip
    return fill(made.html, values, html=True), list(plan.item_ids)


def test_fragments_are_rendered_once_per_item_and_language() -> None:
    renderer = EditionRenderer(SETTINGS, TREE)
    html, ids = render("en", renderer)
    render("en", renderer)
    render("es", renderer)
    assert renderer.fragments_rendered == 2 * len(ids)
    assert html.count('class="item px"') == len(ids) and "frag-" not in html


LABELS = {
    "en": ("Choose your regions", "Unsubscribe", "View in your browser"),
    "es": ("Elegir regiones", "Darse de baja", "Ver en el navegador"),
}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


@pytest.mark.browser
@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("width", [375, 800])
def test_the_edition_reads_well_in_chromium(browser: object, width: int, language: str) -> None:
    html, ids = render(language)
    page = browser.new_page(viewport={"width": width, "height": 800})  # type: ignore[attr-defined]
    try:
        page.set_content(html, wait_until="load")
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner, f"horizontal scroll at {width}px: {scroll} > {inner}"
        for item_id in ids:
            link = page.locator(f'h3 a[href="https://news.example.org/items/{item_id}"]')
            assert link.count() == 1
            box = link.bounding_box()
            assert box is not None and box["width"] > 0 and box["height"] > 0, item_id
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, item_id
            assert link.is_visible()
        headings = page.locator("h2.section-title").all_inner_texts()
        assert headings == ["El Salvador", "Guatemala", "Honduras"]
        assert page.get_by_text("Honduras note").is_visible()
        for label in LABELS[language]:
            assert page.get_by_text(label, exact=True).is_visible(), label
        assert page.evaluate("document.documentElement.lang") == language
        assert not page.locator(".preheader").is_visible()
        container = page.locator("table.container").bounding_box()
        assert container is not None and container["width"] <= 602
        if width == 375:
            assert container["width"] >= 370  # edge to edge on a phone
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"edition-{width}-{language}.png"), full_page=True)
    finally:
        page.close()
