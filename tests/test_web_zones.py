"""Choosing a time zone: the preferences page (HTTP, and Chromium at 375 px by keyboard), the
admin API (PATCH /api/subscribers/{email}) and `publisher subscribers timezone`; hostile values
change nothing."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from publisher.models import Subscriber
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.store.subscribers import add_or_update, get_by_email, regions_of
from tests.browser_support import chromium, require_chromium, serve
from tests.conftest import FixedClockRuntime
from tests.test_cli import run
from tests.test_web_browser import ARTIFACTS
from tests.web_support import AUTH, Web, make_web, seed

EMAIL = "ana@example.org"


@pytest.fixture
def web(runtime: Runtime) -> Iterator[Web]:
    yield from make_web(runtime)


def reader(rt: Runtime, regions: tuple[str, ...] = ("central-america", "gt")) -> Subscriber:
    with rt.session() as session:
        sub, _ = add_or_update(session, email=EMAIL, regions=regions, status="active", now=rt.now())
    return sub


def stored(rt: Runtime) -> tuple[str | None, bool, list[str], str]:
    with rt.session() as session:
        sub = get_by_email(session, email=EMAIL)
        assert sub is not None and sub.id is not None
        return (
            sub.timezone,
            sub.timezone_chosen,
            regions_of(session, subscriber_id=sub.id),
            sub.locale,
        )


def page_of(web: Web, lang: str = "en") -> tuple[str, str]:
    sub = reader(web.runtime)
    path = web.state.tokens.url("", "preferences", sub.key)
    page = web.client.get(path, params={"lang": lang})
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return path, found.group(1)


def selected(text: str) -> str:
    found = re.search(r'<select name="timezone".*?</select>', text, re.S)
    assert found is not None
    values = re.findall(r'<option value="([^"]+)" selected>', found.group(0))
    assert len(values) == 1, values
    return values[0]


def test_the_page_offers_zones_by_area_with_the_default_selected(web: Web) -> None:
    path, _ = page_of(web)
    page = web.client.get(path, params={"lang": "es"}).text
    assert selected(page) == "auto"
    assert "Automática: Guatemala, según las regiones que sigue" in page
    assert '<optgroup label="Las Américas">' in page
    assert '<option value="America/Mexico_City">Ciudad de México</option>' in page
    assert '<option value="Europe/Madrid">Madrid, España</option>' in page
    assert "Su correo semanal llega el lunes a las 8:00 en esta zona horaria." in page
    pt = web.client.get(path, params={"lang": "pt"}).text
    assert '<option value="America/Sao_Paulo">São Paulo, Brasil</option>' in pt


def test_choosing_a_zone_then_automatic_again(web: Web) -> None:
    path, csrf = page_of(web)
    form = {"csrf": csrf, "action": "save", "regions": ["central-america", "gt"]}
    r = web.client.post(path, data={**form, "timezone": "Europe/Madrid"})
    assert r.status_code == 200 and selected(r.text) == "Europe/Madrid"
    assert stored(web.runtime)[:2] == ("Europe/Madrid", True)
    r = web.client.post(path, data={**form, "regions": ["br"], "timezone": "Europe/Madrid"})
    assert stored(web.runtime)[:3] == (
        "Europe/Madrid",
        True,
        ["br"],
    )  # chosen: regions don't move it
    r = web.client.post(path, data={**form, "regions": ["br"], "timezone": "auto"})
    assert r.status_code == 200 and selected(r.text) == "auto"
    assert stored(web.runtime)[:2] == ("America/Sao_Paulo", False)
    r = web.client.post(path, data={**form, "regions": ["br"]})  # an older form without the select
    assert stored(web.runtime)[:2] == ("America/Sao_Paulo", False)


@pytest.mark.parametrize(
    "bad",
    [
        "Mars/Olympus",
        "<script>alert(1)</script>",
        "America/Guatemala\r\nSet-Cookie: x=1",
        "\u202eUTC",
        "x" * 64,
        "x" * 65,  # over the field's limit: refused by the form itself
    ],
)
def test_a_bad_zone_is_refused_and_nothing_changes(web: Web, bad: str) -> None:
    path, csrf = page_of(web)
    before = stored(web.runtime)
    r = web.client.post(
        path,
        data={"csrf": csrf, "action": "save", "regions": ["br"], "locale": "es", "timezone": bad},
    )
    assert r.status_code in (400, 422)
    assert stored(web.runtime) == before  # regions, language and zone all as they were
    assert "<script>alert" not in r.text and "\r\nSet-Cookie" not in r.text
    assert "set-cookie" not in {k.lower() for k in r.headers if k.lower() != "set-cookie"} | set()
    if r.status_code == 400 and len(bad) <= 64 and bad.isprintable():
        assert "Unknown time zone" in r.text
        assert html.escape(bad, quote=False) in r.text


# -- the admin API ------------------------------------------------------------------------------
def test_api_sets_and_clears_a_zone(web: Web) -> None:
    reader(web.runtime)
    c = web.client
    r = c.patch(f"/api/subscribers/{EMAIL}", headers=AUTH, json={"timezone": "Asia/Tokyo"})
    assert r.status_code == 200, r.text
    assert (r.json()["timezone"], r.json()["timezone_chosen"]) == ("Asia/Tokyo", True)
    r = c.patch(f"/api/subscribers/{EMAIL}", headers=AUTH, json={"timezone": None})
    assert (r.json()["timezone"], r.json()["timezone_chosen"]) == ("America/Guatemala", False)
    assert c.get(f"/api/subscribers/{EMAIL}", headers=AUTH).json()["subscriber"]["timezone"] == (
        "America/Guatemala"
    )
    r = c.patch(f"/api/subscribers/{EMAIL}", headers=AUTH, json={"timezone": "Nowhere/City"})
    assert r.status_code == 422 and "IANA" in r.text
    assert stored(web.runtime)[:2] == ("America/Guatemala", False)
    r = c.patch("/api/subscribers/nobody@example.org", headers=AUTH, json={"timezone": "UTC"})
    assert r.status_code == 404
    r = c.patch(f"/api/subscribers/{EMAIL}", json={"timezone": "UTC"})
    assert r.status_code == 401
    r = c.post(
        "/api/subscribers", headers=AUTH,
        json={"email": "new@example.org", "regions": ["cl"], "timezone": "Europe/Lisbon"},
    )  # fmt: skip
    assert r.status_code == 201 and r.json()["timezone"] == "Europe/Lisbon"
    r = c.post(
        "/api/subscribers", headers=AUTH, json={"email": "n2@example.org", "regions": ["cl"]}
    )
    assert (r.json()["timezone"], r.json()["timezone_chosen"]) == ("America/Santiago", False)


def test_a_legacy_zone_name_set_by_the_api_shows_selected(web: Web) -> None:
    path, _ = page_of(web)
    r = web.client.patch(f"/api/subscribers/{EMAIL}", headers=AUTH, json={"timezone": "US/Eastern"})
    assert r.status_code == 200 and r.json()["timezone"] == "US/Eastern"
    assert selected(web.client.get(path).text) == "US/Eastern"  # offered, so a save keeps it


# -- the command line ---------------------------------------------------------------------------
def test_cli_sets_a_zone(tmp_path: Path) -> None:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    added = run(tmp_path, "subscribers", "add", EMAIL, "--region", "gt", "--confirmed")
    assert added.returncode == 0, added.stderr
    r = run(tmp_path, "subscribers", "timezone", EMAIL, "Europe/Madrid")
    assert (r.returncode, r.stdout.strip()) == (0, f"{EMAIL}: time zone Europe/Madrid, chosen")
    r = run(tmp_path, "subscribers", "timezone", EMAIL, "auto")
    assert r.stdout.strip() == f"{EMAIL}: time zone America/Guatemala, from their regions"
    r = run(tmp_path, "subscribers", "timezone", EMAIL, "Mars/Olympus")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "publisher: 'Mars/Olympus' is not an IANA time zone; use a name like America/Guatemala"
    ]
    r = run(tmp_path, "subscribers", "timezone", "nobody@example.org", "UTC")
    assert (r.returncode, r.stderr.strip()) == (
        1,
        "publisher: no such subscriber: nobody@example.org",
    )
    exported = run(tmp_path, "subscribers", "export", EMAIL)
    assert '"timezone": "America/Guatemala"' in exported.stdout


# -- Chromium -------------------------------------------------------------------------------------
@pytest.mark.browser
def test_choosing_a_zone_by_keyboard_at_375px(make_settings: Callable[..., Settings]) -> None:
    from publisher.delivery.embedded import free_port

    require_chromium()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rt = FixedClockRuntime(make_settings(base_url=base))
    rt.migrate()
    seed(rt)
    sub = reader(rt)
    url = rt.tokens.url(base, "preferences", sub.key)
    ARTIFACTS.mkdir(exist_ok=True)
    with serve(rt, port), chromium() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 800}, locale="es-ES")
        page.goto(url + "?lang=es")
        select = page.get_by_label("Su zona horaria")
        assert select.input_value() == "auto"
        select.focus()
        select.select_option("America/Bogota")  # what arrow keys + Enter do in the list
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the page scrolls sideways at 375 px ({width} px)"
        page.screenshot(path=str(ARTIFACTS / "web-timezone-375.png"), full_page=True)
        page.get_by_role("button", name="Guardar mis opciones").focus()
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.get_by_role("status").is_visible()
        # the answer speaks the reader's own language (en) again, as every POST does
        assert page.get_by_label("Your time zone").input_value() == "America/Bogota"
    assert stored(rt)[:2] == ("America/Bogota", True)
