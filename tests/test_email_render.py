"""Email bodies: escaping, placeholders, email-safe CSS, expected-output files, real Chromium.

The bodies checked are an edition's (three sections, the editors' notes), rendered through
``EditionRenderer.render`` as a send renders them. Expected-output files live in
tests/expected/email/. After a deliberate change to the output:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_email_render.py -k golden

Screenshots of the Chromium checks are kept in tests/artifacts/ (git-ignored); the edition's
own Chromium checks are in test_edition_render.py.
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

from publisher.digest.editions import EditionPlan, plan_edition, region_set
from publisher.email.placeholders import Placeholders
from publisher.email.render import (
    EMAIL,
    UNSUBSCRIBE_URL,
    Branding,
    EmailRenderer,
    RenderedEmail,
    default_renderer,
    fill,
    public_copy,
)
from publisher.models import ItemPublic
from publisher.pipeline.edition_render import EditionRenderer, web_url
from publisher.regions.tree import RegionTree
from publisher.settings import Settings
from publisher.tokens import Tokens
from tests.browser_support import chromium

GOLDEN = Path(__file__).parent / "expected" / "email"
ARTIFACTS = Path(__file__).parent / "artifacts"
BASE = "https://news.example.org"
SETTINGS = Settings(_env_file=None, base_url=BASE, secret_key="k")  # type: ignore[call-arg]
TOKENS = Tokens(SETTINGS.secret_keys())
BRANDING = Branding.from_settings(SETTINGS)
TREE = RegionTree.load()
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)
CUTOFF = MONDAY + timedelta(days=7, hours=8)  # the W48 fire
DIGEST_ID = 7
# Fixed markers, so the expected-output files hold the same bytes every run (a send's are random).
MARKS = Placeholders.of("0123456789abcdef0123")
NOTES = {"": "Floods & <storms> this week: see the Belize section.", "cr": "Costa Rica's note"}

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


def fixed_items() -> list[ItemPublic]:
    out = []
    for n, (title, regions, summary) in enumerate(FIXED_ITEMS):
        t = MONDAY + timedelta(days=n, hours=9)
        out.append(ItemPublic(id=100 + n, guid=f"g{n}", title=title, summary=summary, link=None,
                              published=t, updated=MONDAY, regions=regions,
                              visible_at=t))  # fmt: skip
    return out


def fixed_plan() -> EditionPlan:
    """The W48 edition of a reader of Belize, Costa Rica and Mexico."""
    regions = region_set(TREE, ["mx", "cr", "bz"])
    return plan_edition(TREE, regions, fixed_items(), week="2026-W48",
                        window_start=CUTOFF - timedelta(days=7), cutoff=CUTOFF)  # fmt: skip


def fixed_edition(locale: str = "en", marks: Placeholders = MARKS) -> RenderedEmail:
    """``fixed_plan`` in ``locale`` as a send renders it (frozen digest DIGEST_ID)."""
    return EditionRenderer(SETTINGS, TREE).render(
        fixed_plan(), locale, marks=marks, notes=NOTES,
        web_url=web_url(SETTINGS, TOKENS, DIGEST_ID, locale),
    )  # fmt: skip


SAMPLE = MARKS.values(
    email="ann.o'neil+news@example.org",
    unsubscribe_url=f"{BASE}/unsubscribe/IjAxMjM0NTY3ODlhYmNkZWYi.aW5n.c2lnbmF0dXJl",
    preferences_url=f"{BASE}/preferences/IjAxMjM0NTY3ODlhYmNkZWYi.aW5n.c2lnbmF0dXJl",
)


def test_edition_html_escapes_item_text_and_keeps_placeholders() -> None:
    r = fixed_edition()
    assert "&lt;trafficking&gt;" in r.html and "<trafficking>" not in r.html
    assert "CONOFAM &amp; IOM" in r.html
    assert "Floods &amp; &lt;storms&gt; this week" in r.html and "<storms>" not in r.html
    for placeholder in MARKS.all:
        assert r.html.count(placeholder) == 1, placeholder
        assert r.text.count(placeholder) == 1, placeholder
    assert f'href="{MARKS.unsubscribe_url}"' in r.html
    assert f'href="{MARKS.preferences_url}"' in r.html
    # plain text is not HTML-escaped: readers would see "&amp;"
    assert "CONOFAM & IOM" in r.text and "<trafficking>" in r.text
    assert "Floods & <storms> this week" in r.text
    assert r.subject == "Your news: Belize, Costa Rica, and Mexico, week 48 of 2026"


def test_placeholders_survive_escaping_and_css_inlining() -> None:
    renderer = EmailRenderer()
    env = renderer._html
    template = env.from_string(
        '<p class="x"><a href="{{ u }}">{{ e }}</a></p><style>.x{color:red}</style>'
    )
    for unsubscribe, email in ((UNSUBSCRIBE_URL, EMAIL), (MARKS.unsubscribe_url, MARKS.email)):
        page = renderer._inliner.inline(template.render(u=unsubscribe, e=email))
        assert f'href="{unsubscribe}"' in page and f">{email}<" in page
        assert 'style="color: red;"' in page


def test_every_url_in_the_edition_is_where_the_contract_says() -> None:
    r = fixed_edition()
    hrefs = re.findall(r'href="([^"]+)"', r.html)
    assert hrefs[0] == f"{BASE}/editions/{TOKENS.edition(DIGEST_ID, 'en')}"
    assert TOKENS.read_edition(hrefs[0].rsplit("/", 1)[1]) == (DIGEST_ID, "en")
    # sections in the tree's order (Belize, Costa Rica, Mexico), each newest first; an item in
    # the first section it belongs to (the Americas and Central America ones are Belize's)
    assert hrefs[1:6] == [f"{BASE}/items/{n}" for n in (104, 103, 102, 100, 101)]
    assert hrefs[6:] == [MARKS.preferences_url, MARKS.unsubscribe_url]
    assert BRANDING.postal_address in r.html and BRANDING.postal_address in r.text
    assert f"View in your browser: {hrefs[0]}" in r.text


def test_html_uses_only_email_safe_layout() -> None:
    html = fixed_edition().html.lower()
    compact = re.sub(r"\s+", "", html)
    for banned in ("display:flex", "display:grid", "display:inline-flex", "var(--", "position:"):
        assert banned not in compact, banned
    assert "<table" in html and 'role="presentation"' in html
    assert "max-width: 600px" in html
    assert "<script" not in html and "<link" not in html
    # CSS is inlined (into the frame and into each item's fragment); the only style block left
    # is the narrow-screen media query
    styles = re.findall(r"<style[^>]*>(.*?)</style>", html, flags=re.S)
    assert len(styles) == 1 and styles[0].strip().startswith(
        "@media only screen and (max-width: 620px)"
    )
    assert '<td class="item px" style="' in html
    assert '<p class="summary" style="' in html and '<h2 class="section-title" style="' in html
    # a hidden preheader comes first in the body
    body = html.split("<body", 1)[1]
    assert body.index('class="preheader"') < body.index("<table")
    assert "display: none" in body.split('class="preheader"', 1)[1][:200]


def test_spanish_edition() -> None:
    r = fixed_edition("es")
    assert r.subject == "Sus noticias: Belice, Costa Rica y México, semana 48 de 2026"
    assert 'lang="es"' in r.html and "Darse de baja" in r.html and "Elegir regiones" in r.text
    assert "México" in r.html and "3 noticias nuevas" in r.html
    assert f"{BASE}/editions/{TOKENS.edition(DIGEST_ID, 'es')}" in r.text


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
    r = fixed_edition()
    copy = public_copy(r.html, base_url=BASE, marks=MARKS)
    assert "%%" not in copy and f'href="{BASE}/"' in copy


@pytest.mark.parametrize("kind", ["html", "txt"])
def test_golden_edition(kind: str) -> None:
    r = fixed_edition()
    body = r.html if kind == "html" else r.text
    path = GOLDEN / f"edition.{kind}"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    assert body == path.read_text(encoding="utf-8"), f"{path} differs; see the module docstring"


# --- real Chromium -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


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
    page = tmp_path / "edition.html"
    page.write_text(fill(fixed_edition(locale).html, SAMPLE, html=True))
    clients = "gmail.*,outlook.*,apple-mail.*,yahoo.*"
    result = subprocess.run(
        ["node", cli, "-e", clients, str(page)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    errors = json.loads(result.stdout)["errors"]
    features = {m.group(1) for e in errors if (m := re.match(r"`(.+?)`", e))}
    assert features <= ACCEPTED, sorted(features - ACCEPTED)
