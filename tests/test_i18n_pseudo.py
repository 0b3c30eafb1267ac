"""The pseudo-locale proof: every interface text of pages and emails comes from the catalogs.

English is served from a generated catalog that wraps each message in ⟦…⟧; every public page,
the error pages, the digest (HTML and text) and the confirmation email are rendered, and what
is left once marked spans and data (item text, region names, addresses, dates, numbers, URLs)
are removed must contain no letter. A string written straight into a template or a Python
notice shows up here as unmarked text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from babel.dates import format_date
from jinja2 import Environment
from jinja2.filters import do_truncate

from publisher.digest.assembly import SUMMARY_CHARS, period_label, shorten
from publisher.email.render import default_renderer
from publisher.i18n.formats import format_names
from publisher.models import Subscriber
from publisher.pipeline.edition_tools import preview_edition
from publisher.pipeline.editions import fire_editions
from publisher.regions.zones import offered_zones
from publisher.runtime import Runtime
from publisher.store.items import all_items
from publisher.store.notes import set_note
from publisher.store.subscribers import add_or_update
from publisher.web.zone_choices import zone_label
from tests.i18n_support import letters, pseudo_english, unmarked, visible_text
from tests.web_support import Web, seeded_web

WEEK = "2026-W48"  # the week of FIXED_NOW, where the seeded items are


@pytest.fixture
def web(runtime: Runtime) -> Iterator[Web]:
    with pseudo_english():
        yield from seeded_web(runtime)


def data_strings(web: Web) -> list[str]:
    """Everything on a page or in an email that is data, not interface."""
    settings = web.runtime.settings
    with web.runtime.session() as session:
        items = all_items(session)
    env = Environment(autoescape=False)
    out = [settings.site_title, settings.postal_address, settings.from_]
    for it in items:
        out += [it.title, it.summary, shorten(it.summary, SUMMARY_CHARS)]
        out.append(do_truncate(env, it.summary, 280, False, "…", 5))
        out += it.summary.split("\n")
        day = it.published.astimezone(UTC).date()
        out += [format_date(day, "long", locale="en"), format_date(day, "medium", locale="en")]
    for region in web.runtime.tree:
        out += [region.name_en]
    for _area, zones in offered_zones():  # the time-zone select: city and country are data
        out += [zone_label(web.runtime.tree, zone, "en") for zone in zones]
    out.append(period_label(WEEK, "en"))
    out += [WEEK]
    return out


def active(web: Web, email: str = "reader@example.org") -> Subscriber:
    with web.runtime.session() as session:
        sub, _ = add_or_update(
            session, email=email, regions=("central-america",), status="active",
            now=web.runtime.now(),
        )  # fmt: skip
    return sub


def check(html: str, data: list[str], where: str) -> None:
    left = unmarked(visible_text(html), data)
    assert not letters(left), f"unmarked interface text on {where}: {left!r}"


def test_every_public_page_and_error_page_is_marked(web: Web) -> None:
    data = data_strings(web)
    sub = active(web)
    with web.runtime.session() as session:
        item_id = all_items(session)[0].id
    web.runtime.fixed_now += timedelta(minutes=1)  # after the seed: windows are [start, cutoff)
    # the edition the archive page of central-america's week shows
    assert sub.id is not None
    fired = fire_editions(web.runtime, now=web.runtime.now(), zone=None, week=WEEK, early=True,
                          runner="test", subscriber_ids=[sub.id])  # fmt: skip
    assert fired.digest_ids
    data.append(sub.email)
    tokens = web.state.tokens
    pages = {
        "home": web.client.get("/"),
        "region": web.client.get("/regions/central-america"),
        "country": web.client.get("/regions/gt"),
        "item": web.client.get(f"/items/{item_id}"),
        "archive": web.client.get(f"/archive/central-america/{WEEK}"),
        "preferences": web.client.get(tokens.url("", "preferences", sub.key)),
        "unsubscribe page": web.client.get(tokens.url("", "unsubscribe", sub.key)),
        "404": web.client.get("/no/such/page"),
        "400 bad token": web.client.get("/preferences/forged.token"),
        "405": web.client.post("/"),
        "subscribe bad address": web.client.post("/subscribe", data={"email": "nope"}),
        "subscribe no region": web.client.post("/subscribe", data={"email": "a@example.org"}),
        "subscribe ok": web.client.post(
            "/subscribe", data={"email": "new@example.org", "regions": ["caribbean"]}
        ),
    }
    csrf = pages["preferences"].text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    prefs = tokens.url("", "preferences", sub.key)
    pages["preferences saved"] = web.client.post(
        prefs, data={"csrf": csrf, "regions": ["central-america"], "action": "save"}
    )
    pages["region refused"] = web.client.post(
        prefs, data={"csrf": csrf, "regions": ["nowhere"], "action": "save"}
    )
    data += ["nowhere", "2026-W99"]
    pages["archive index"] = web.client.get("/archive")
    pages["archive region"] = web.client.get("/archive/central-america")
    pages["archive bad week"] = web.client.get("/archive/central-america/2026-W99")
    pages["unsubscribed"] = web.client.post(tokens.url("", "unsubscribe", sub.key))
    pages["confirm"] = web.client.get(tokens.url("", "confirm", sub.key))
    for name, response in pages.items():
        assert response.headers["content-type"].startswith("text/html"), name
        assert "⟦" in response.text, f"{name}: nothing translated at all"
        check(response.text, data, name)


def test_the_check_catches_an_unmarked_string(web: Web) -> None:
    data = data_strings(web)
    page = web.client.get("/").text
    assert not letters(unmarked(visible_text(page), data))
    spoiled = page.replace("</main>", "<p>Plain text left behind</p></main>")
    assert "Plain text left behind" in unmarked(visible_text(spoiled), data)
    titled = page.replace("<main", '<main title="Untranslated tooltip"')
    assert "Untranslated tooltip" in unmarked(visible_text(titled), data)


def test_the_confirmation_email_is_marked(web: Web) -> None:
    """(The edition email: test_the_edition_email_is_marked.)"""
    data = data_strings(web)
    web.client.post("/subscribe", data={"email": "new@example.org", "regions": ["caribbean"]})
    web.flush()
    (message,) = web.outbox.messages()
    assert not letters(unmarked(str(message["Subject"]), data))
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    assert html is not None and text is not None
    check(html.get_content(), data, "confirmation html")
    left = unmarked(text.get_content(), data)
    assert not letters(left), f"confirmation text: {left!r}"


def test_pseudo_dates_are_data_not_interface() -> None:
    """Dates come from CLDR through Babel, never from the catalogs (a guard on the approach)."""
    day = date(2026, 11, 30)
    assert period_label("2026-W49", "es") == "30 nov – 6 dic 2026".replace(" – ", "\u2009–\u2009")
    assert format_date(day, "long", locale="pt") == "30 de novembro de 2026"
    assert (datetime(2026, 11, 30, tzinfo=UTC) + timedelta(days=6)).day == 6


def test_the_edition_email_is_marked(web: Web) -> None:
    """An edition of several sections, with the editors' notes (data), in the pseudo-locale."""
    rt = web.runtime
    with rt.session() as session:
        set_note(session, week=WEEK, region="", text="Week note", by="e", now=rt.now())
        set_note(session, week=WEEK, region="gt", text="Section note", by="e", now=rt.now())
    regions = ["gt", "hn", "central-america"]
    later = rt.now() + timedelta(minutes=1)  # after the seed: windows are [start, cutoff)
    # The renderer keeps each language's frame for the process: render this one in the
    # pseudo-locale from scratch, and leave no pseudo frame behind for later tests.
    default_renderer.cache_clear()
    try:
        shown = preview_edition(rt, ["sv", "gt"], "en", later, week=WEEK)
    finally:
        default_renderer.cache_clear()
    assert shown.item_ids
    names = [rt.tree.get(r).name_en for r in shown.regions]
    data = [*data_strings(web), "Week note", "Section note", format_names(names, "en"),
            "reader@example.org", *regions]  # fmt: skip
    assert "⟦" in shown.subject
    preheader = re.search(r'<div class="preheader"[^>]*>(.*?)</div>', shown.html, re.S)
    assert preheader is not None and preheader.group(1).startswith("⟦")
    check(shown.html.replace(preheader.group(0), ""), data, "edition html")
    left = unmarked(shown.text, data)
    assert not letters(left), f"edition text: {left!r}"
