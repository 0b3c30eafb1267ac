"""Email bodies: escaping, placeholders, email-safe CSS, expected-output files, real Chromium.

Expected-output files live in tests/expected/email/. After a deliberate change to the output:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_email_render.py -k golden

Screenshots of the Chromium checks are kept in tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from publisher.digest.assembly import DigestContent, build_content
from publisher.email.render import (
    EMAIL,
    PLACEHOLDERS,
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    Branding,
    EmailRenderer,
    default_renderer,
    fill,
    public_copy,
)
from publisher.models import ItemPublic
from publisher.regions.tree import RegionTree
from tests.browser_support import chromium

GOLDEN = Path(__file__).parent / "expected" / "email"
ARTIFACTS = Path(__file__).parent / "artifacts"
BASE = "https://news.example.org"
BRANDING = Branding("Regional News", BASE, "Regional News, 1 Example Street, 10000 Example City")
TREE = RegionTree.load()
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)

FIXED_ITEMS = [
    ("IOM and Costa Rica strengthen plan for students' migration status", ["cr"],
     "Students in an irregular migratory situation are at a disadvantage; IOM and the Ministry "
     "of Public Education work to strengthen the SABER system."),
    ("Mexican states share their best experiences in migration policy", ["mx"],
     "CONOFAM & IOM prepared a report on Good Practices in twelve Mexican states."),
    ("Belize strengthens data collection on <trafficking> in persons", ["bz"],
     "The Ministry of Human Development launched the new TIP Module on FAMCare."),
    ("Panamá: border personnel exchange experiences", ["pa", "central-america"],
     "Participants from Darién and Chiriquí discussed inter-institutional coordination "
     "mechanisms for migrants in vulnerable situations."),
    ("IOM and IIN start a course about migrant children in the Americas", ["americas"],
     "The third edition of the course opened with a discussion on the rights of migrant children."),
]  # fmt: skip


def fixed_content(locale: str = "en") -> DigestContent:
    items = [
        ItemPublic(
            id=100 + n, guid=f"g{n}", title=title, summary=summary, link=None,
            published=MONDAY + timedelta(days=n, hours=9), updated=MONDAY, regions=regions,
        )
        for n, (title, regions, summary) in enumerate(FIXED_ITEMS)
    ]  # fmt: skip

    def name(slug: str) -> str:
        return TREE.get(slug).name(locale)

    return build_content(
        items, region="central-america", week="2026-W48", base_url=BASE, name_of=name, locale=locale
    )


SAMPLE = {
    EMAIL: "ann.o'neil+news@example.org",
    UNSUBSCRIBE_URL: f"{BASE}/unsubscribe/IjAxMjM0NTY3ODlhYmNkZWYi.aW5n.c2lnbmF0dXJl",
    PREFERENCES_URL: f"{BASE}/preferences/IjAxMjM0NTY3ODlhYmNkZWYi.aW5n.c2lnbmF0dXJl",
}


def test_digest_html_escapes_item_text_and_keeps_placeholders() -> None:
    r = default_renderer().digest(fixed_content(), BRANDING)
    assert "&lt;trafficking&gt;" in r.html and "<trafficking>" not in r.html
    assert "CONOFAM &amp; IOM" in r.html
    for placeholder in PLACEHOLDERS:
        assert r.html.count(placeholder) == 1, placeholder
        assert r.text.count(placeholder) == 1, placeholder
    assert f'href="{UNSUBSCRIBE_URL}"' in r.html and f'href="{PREFERENCES_URL}"' in r.html
    # plain text is not HTML-escaped: readers would see "&amp;"
    assert "CONOFAM & IOM" in r.text and "<trafficking>" in r.text
    assert r.subject == "Central America news, week 48 of 2026"


def test_placeholders_survive_escaping_and_css_inlining() -> None:
    renderer = EmailRenderer()
    env = renderer._html
    template = env.from_string(
        '<p class="x"><a href="{{ u }}">{{ e }}</a></p><style>.x{color:red}</style>'
    )
    page = renderer._inliner.inline(template.render(u=UNSUBSCRIBE_URL, e=EMAIL))
    assert f'href="{UNSUBSCRIBE_URL}"' in page and f">{EMAIL}<" in page
    assert 'style="color: red;"' in page


def test_every_url_in_the_digest_is_where_the_contract_says() -> None:
    r = default_renderer().digest(fixed_content(), BRANDING)
    hrefs = re.findall(r'href="([^"]+)"', r.html)
    assert hrefs[0] == f"{BASE}/archive/central-america/2026-W48"
    assert hrefs[1:6] == [f"{BASE}/items/{n}" for n in (104, 103, 102, 101, 100)]
    assert hrefs[6:] == [PREFERENCES_URL, UNSUBSCRIBE_URL]
    assert BRANDING.postal_address in r.html and BRANDING.postal_address in r.text


def test_html_uses_only_email_safe_layout() -> None:
    html = default_renderer().digest(fixed_content(), BRANDING).html.lower()
    compact = re.sub(r"\s+", "", html)
    for banned in ("display:flex", "display:grid", "display:inline-flex", "var(--", "position:"):
        assert banned not in compact, banned
    assert "<table" in html and 'role="presentation"' in html
    assert "max-width: 600px" in html
    assert "<script" not in html and "<link" not in html
    # CSS is inlined; the only style block left is the narrow-screen media query
    styles = re.findall(r"<style[^>]*>(.*?)</style>", html, flags=re.S)
    assert len(styles) == 1 and styles[0].strip().startswith(
        "@media only screen and (max-width: 620px)"
    )
    assert '<td class="item px" style="' in html
    # a hidden preheader comes first in the body
    body = html.split("<body", 1)[1]
    assert body.index('class="preheader"') < body.index("<table")
    assert "display: none" in body.split('class="preheader"', 1)[1][:200]


def test_spanish_digest() -> None:
    r = default_renderer().digest(fixed_content("es"), BRANDING)
    assert r.subject == "Noticias de Centroamérica, semana 48 de 2026"
    assert 'lang="es"' in r.html and "Darse de baja" in r.html and "Elegir regiones" in r.text
    assert "México" in r.html


def test_confirmation_email() -> None:
    url = f"{BASE}/confirm/abc.def.ghi"
    r = default_renderer().confirmation(
        confirm_url=url, region_names=["Central America", "Côte d'Ivoire"], branding=BRANDING
    )
    assert r.subject == "Confirm your subscription to Regional News"
    assert f'href="{url}"' in r.html and "Côte d'Ivoire" in r.html  # text, re-serialised
    assert url in r.text and "- Côte d'Ivoire" in r.text
    assert "display:flex" not in re.sub(r"\s+", "", r.html)
    es = default_renderer().confirmation(
        confirm_url=url, region_names=["Caribe"], branding=BRANDING, locale="es"
    )
    assert es.subject == "Confirme su suscripción a Regional News"


def test_public_copy_has_no_placeholders() -> None:
    r = default_renderer().digest(fixed_content(), BRANDING)
    copy = public_copy(r.html, base_url=BASE)
    assert "%%" not in copy and f'href="{BASE}/"' in copy


@pytest.mark.parametrize("kind", ["html", "txt"])
def test_golden_digest(kind: str) -> None:
    r = default_renderer().digest(fixed_content(), BRANDING)
    body = r.html if kind == "html" else r.text
    path = GOLDEN / f"digest.{kind}"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    assert body == path.read_text(encoding="utf-8"), f"{path} differs; see the module docstring"


# --- real Chromium -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def long_content(locale: str = "en") -> DigestContent:
    """The fixed digest plus items that try to break the layout (long words, long URLs)."""
    base = list(fixed_content().items)
    t = MONDAY + timedelta(days=6)
    nasty = [
        ItemPublic(
            id=200, guid="n1", title="Unbreakable-" + "x" * 90,
            summary="https://example.org/" + "p" * 150, link=None, published=t, updated=t,
            regions=["gt", "sv", "hn", "ni", "cr", "pa", "bz"],
        ),
    ]  # fmt: skip
    items = nasty + [
        ItemPublic(
            id=i.id, guid=f"g{i.id}", title=i.title, summary=i.summary, link=None,
            published=i.published, updated=i.published, regions=["cr"],
        )
        for i in base
    ]  # fmt: skip
    return build_content(
        items,
        region="central-america",
        week="2026-W48",
        base_url=BASE,
        name_of=lambda s: TREE.get(s).name(locale),
        locale=locale,
    )


LABELS = {
    "en": ("Choose your regions", "Unsubscribe", "View in your browser"),
    "es": ("Elegir regiones", "Darse de baja", "Ver en el navegador"),
}


@pytest.mark.browser
@pytest.mark.parametrize("locale", ["en", "es"])
@pytest.mark.parametrize("width", [375, 800])
def test_digest_reads_well_in_chromium(browser: object, width: int, locale: str) -> None:
    content = long_content(locale)
    r = default_renderer().digest(content, BRANDING)
    page_html = fill(r.html, SAMPLE, html=True)
    page = browser.new_page(viewport={"width": width, "height": 800})  # type: ignore[attr-defined]
    try:
        page.set_content(page_html, wait_until="load")
        scroll_width, inner = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll_width <= inner, f"horizontal scroll at {width}px: {scroll_width} > {inner}"
        for it in content.items:
            link = page.locator(f'a[href="{it.url}"]')
            assert link.count() == 1
            box = link.bounding_box()
            assert box is not None and box["width"] > 0 and box["height"] > 0, it.title
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, it.title
            assert link.is_visible()
        for label in LABELS[locale]:
            assert page.get_by_text(label, exact=True).is_visible(), label
        assert page.evaluate("document.documentElement.lang") == locale
        assert not page.locator(".preheader").is_visible()
        container = page.locator("table.container").bounding_box()
        assert container is not None and container["width"] <= 602
        if width == 375:
            assert container["width"] >= 370  # edge to edge on a phone
        ARTIFACTS.mkdir(exist_ok=True)
        suffix = "" if locale == "en" else f"-{locale}"
        page.screenshot(path=str(ARTIFACTS / f"digest-{width}{suffix}.png"), full_page=True)
    finally:
        page.close()


@pytest.mark.browser
def test_confirmation_reads_well_in_chromium(browser: object) -> None:
    r = default_renderer().confirmation(
        confirm_url=f"{BASE}/confirm/abc", region_names=["Central America"], branding=BRANDING
    )
    page = browser.new_page(viewport={"width": 375, "height": 700})  # type: ignore[attr-defined]
    try:
        page.set_content(r.html)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert page.get_by_text("Yes, subscribe me").is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "confirm-375.png"), full_page=True)
    finally:
        page.close()


# --- HTML-email support checker (optional) -------------------------------------------------

# Deliberate progressive enhancements: the hidden preheader (display:none, opacity, overflow),
# the narrow-screen media query, ARIA roles and body styles that clients without them ignore, and
# table-layout (Outlook for Windows lacks it, but its 600 px ghost table caps the width there).
ACCEPTED = {
    "display:none", "opacity", "overflow", "@media", "role attribute", "<body> element",
    "table-layout",
}  # fmt: skip


def doiuse_cli() -> str | None:
    candidates = [
        os.environ.get("DOIUSE_EMAIL", ""),
        str(Path(__file__).parents[1] / "node_modules" / "doiuse-email" / "bin" / "cli.js"),
    ]
    return next((c for c in candidates if c and Path(c).exists()), None)


@pytest.mark.parametrize("locale", ["en", "es"])
def test_doiuse_email_finds_only_deliberate_enhancements(tmp_path: Path, locale: str) -> None:
    cli = doiuse_cli()
    if cli is None or shutil.which("node") is None:
        pytest.skip("doiuse-email not installed (npm install doiuse-email; or set DOIUSE_EMAIL)")
    page = tmp_path / "digest.html"
    page.write_text(
        fill(default_renderer().digest(fixed_content(locale), BRANDING).html, SAMPLE, html=True)
    )
    clients = "gmail.*,outlook.*,apple-mail.*,yahoo.*"
    result = subprocess.run(
        ["node", cli, "-e", clients, str(page)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    errors = json.loads(result.stdout)["errors"]
    features = {m.group(1) for e in errors if (m := re.match(r"`(.+?)`", e))}
    assert features <= ACCEPTED, sorted(features - ACCEPTED)
