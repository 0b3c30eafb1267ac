"""Pages in the reader's language: ?lang= > cookie > Accept-Language > DEFAULT_LOCALE, and more."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.i18n.negotiate import accept_language, negotiate
from publisher.runtime import Runtime
from publisher.store.subscribers import add_or_update, get_by_email
from tests.web_support import Web, seeded_web

SUPPORTED = ("en", "es", "pt")


@pytest.fixture
def web(runtime: Runtime) -> Iterator[Web]:
    yield from seeded_web(runtime)


def lang_of(html: str) -> str:
    found = re.search(r'<html lang="([^"]+)">', html)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize(
    ("query", "cookie", "header", "expected"),
    [
        ("es", None, None, ("es", True)),
        ("pt", "es", "es", ("pt", True)),
        (None, "pt", "es", ("pt", False)),
        (None, None, "es-CL,es;q=0.9,en;q=0.8", ("es", False)),
        (None, None, "fr-FR, pt-BR;q=0.5, es;q=0.4", ("pt", False)),
        (None, None, "fr, de", ("en", False)),
        ("xx", "zz", "es;q=0", ("en", False)),
        (None, None, "es;q=abc, pt", ("pt", False)),
        ("es\r\nSet-Cookie: x=1", None, None, ("en", False)),
        (None, "../../etc", "*", ("en", False)),
    ],
)
def test_negotiation(
    query: str | None, cookie: str | None, header: str | None, expected: tuple[str, bool]
) -> None:
    assert (
        negotiate(query=query, cookie=cookie, header=header, supported=SUPPORTED, default="en")
        == expected
    )


@given(st.text(max_size=3000))
def test_any_accept_language_gives_a_supported_language(header: str) -> None:
    language, explicit = negotiate(
        query=None, cookie=None, header=header, supported=SUPPORTED, default="en"
    )
    assert language in SUPPORTED and not explicit
    assert all(lang.isascii() and lang.isalpha() for lang in accept_language(header))


def test_accept_language_picks_spanish_and_says_so(web: Web) -> None:
    r = web.client.get("/", headers={"accept-language": "es-CL,es;q=0.9"})
    assert r.status_code == 200 and lang_of(r.text) == "es"
    assert r.headers["content-language"] == "es"
    assert "Accept-Language" in r.headers["vary"]
    assert "Últimas noticias" in r.text and "Latest news" not in r.text
    assert "set-cookie" not in r.headers  # only an explicit choice is remembered


def test_lang_switch_is_visible_remembered_and_overrides_the_header(web: Web) -> None:
    home = web.client.get("/")
    assert lang_of(home.text) == "en"
    for code, label in (("en", "English"), ("es", "Español"), ("pt", "Português")):
        assert f'hreflang="{code}"' in home.text and label in home.text
    assert '<link rel="alternate" hreflang="x-default"' in home.text
    r = web.client.get("/?lang=pt", headers={"accept-language": "es"})
    assert lang_of(r.text) == "pt" and "Últimas notícias" in r.text
    assert "lang=pt" in r.headers["set-cookie"] and "SameSite=Lax" in r.headers["set-cookie"]
    # the cookie now wins over Accept-Language on every page, error pages included
    later = web.client.get("/regions/central-america", headers={"accept-language": "es"})
    assert lang_of(later.text) == "pt" and "<h1>América Central</h1>" in later.text
    missing = web.client.get("/no/such/page")
    assert missing.status_code == 404 and lang_of(missing.text) == "pt"
    assert "Página não encontrada" in missing.text


def test_alternates_keep_the_page_and_its_query(web: Web) -> None:
    r = web.client.get("/regions/gt?lang=es")
    base = web.runtime.settings.base_url
    assert f'hreflang="pt" href="{base}/regions/gt?lang=pt"' in r.text
    assert f'hreflang="x-default" href="{base}/regions/gt"' in r.text
    assert "Guatemala" in r.text and lang_of(r.text) == "es"


def test_bad_lang_values_fall_back_and_set_no_cookie(web: Web) -> None:
    for value in ("xx", "es%0d%0aSet-Cookie:%20evil=1", "<script>", "e" * 5000, "\u202ees"):
        r = web.client.get(f"/?lang={value}")
        assert r.status_code == 200 and lang_of(r.text) == "en", value
        assert "set-cookie" not in r.headers and "evil" not in str(r.headers)


def test_subscribe_form_records_the_language_used_and_confirms_in_it(web: Web) -> None:
    page = web.client.get("/?lang=es").text
    assert '<input type="hidden" name="locale" value="es">' in page
    r = web.client.post(
        "/subscribe",
        data={"email": "sofia@example.org", "regions": ["hn"], "locale": "es"},
    )
    assert r.status_code == 200 and "Revise su bandeja de entrada" in r.text
    web.flush()
    (message,) = web.outbox.messages()
    assert message["Content-Language"] == "es"
    assert message["Subject"].startswith("Confirme su suscripción")
    html = message.get_body(("html",))
    assert html is not None and '<html lang="es"' in html.get_content()
    assert "Honduras" in html.get_content()
    with web.runtime.session() as session:
        sub = get_by_email(session, email="sofia@example.org")
    assert sub is not None and sub.locale == "es"
    # the confirmation page speaks the subscriber's language, whatever the browser says
    link = web.outbox.confirm_links()[0]
    path = "/confirm/" + link.rsplit("/confirm/", 1)[1]
    button = web.client.get(path)  # a GET only shows the button (link scanners follow GETs)
    assert lang_of(button.text) == "es" and "Confirme su suscripción" in button.text
    assert (
        "Sí, quiero suscribirme" in button.text and "Confirm your subscription" not in button.text
    )
    confirmed = web.client.post(path)
    assert lang_of(confirmed.text) == "es" and "Está suscrito" in confirmed.text


def test_subscribe_with_an_unknown_locale_uses_the_page_language(web: Web) -> None:
    web.client.post(
        "/subscribe",
        data={"email": "x@example.org", "regions": ["hn"], "locale": "klingon"},
        headers={"accept-language": "pt-BR"},
    )
    web.flush()
    (message,) = web.outbox.messages()
    assert message["Content-Language"] == "pt"


def test_preferences_show_and_change_the_language(web: Web) -> None:
    with web.runtime.session() as session:
        sub, _ = add_or_update(
            session, email="ana@example.org", regions=("hn",), status="active", locale="es-CL",
            now=web.runtime.now(),
        )  # fmt: skip
    url = web.state.tokens.url("", "preferences", sub.key)
    page = web.client.get(url, headers={"accept-language": "en"})
    assert lang_of(page.text) == "es" and "Idioma de sus correos" in page.text
    assert '<option value="es" lang="es" selected>' in page.text
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    saved = web.client.post(
        url, data={"csrf": csrf, "regions": ["hn"], "locale": "pt", "action": "save"}
    )
    assert lang_of(saved.text) == "pt" and "Suas escolhas foram salvas." in saved.text
    with web.runtime.session() as session:
        assert get_by_email(session, email="ana@example.org").locale == "pt"  # type: ignore[union-attr]
    # a language the site does not speak is ignored, not stored
    web.client.post(url, data={"csrf": csrf, "regions": ["hn"], "locale": "zz", "action": "save"})
    with web.runtime.session() as session:
        assert get_by_email(session, email="ana@example.org").locale == "pt"  # type: ignore[union-attr]
    # ?lang= still wins for the page itself
    assert lang_of(web.client.get(url + "?lang=en").text) == "en"


def test_unsubscribe_page_speaks_the_subscriber_language(web: Web) -> None:
    with web.runtime.session() as session:
        sub, _ = add_or_update(
            session, email="joao@example.org", regions=("br",), status="active", locale="pt",
            now=web.runtime.now(),
        )  # fmt: skip
    url = web.state.tokens.url("", "unsubscribe", sub.key)
    page = web.client.get(url)
    assert lang_of(page.text) == "pt" and "Cancelar a assinatura de todas as regiões" in page.text
    done = web.client.post(url)
    assert lang_of(done.text) == "pt" and "Você cancelou a assinatura" in done.text
