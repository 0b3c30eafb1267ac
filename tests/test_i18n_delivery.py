"""Digests in each reader's language: rendered once per language with readers, fixed per row."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col, select

from publisher.digest.assembly import period_label
from publisher.models import DigestRendition, Subscriber
from publisher.pipeline.send import send_digests
from publisher.runtime import Runtime
from tests.delivery_data import REGION, WEEK, add_subscribers, rows, seed_items, use_smtp
from tests.smtp_servers import Recorder, smtp_server
from tests.web_support import make_web


def set_locales(rt: Runtime, locales: dict[int, str]) -> None:
    with rt.session() as session:
        for subscriber_id, locale in locales.items():
            session.execute(
                sa.update(Subscriber)
                .where(col(Subscriber.id) == subscriber_id)
                .values(locale=locale)
            )


def renditions(rt: Runtime) -> list[tuple[int, str]]:
    with rt.session() as session:
        found = session.exec(select(DigestRendition).order_by(col(DigestRendition.locale)))
        return [(r.digest_id, r.locale) for r in found]


def test_each_reader_gets_the_digest_in_their_language(runtime: Runtime) -> None:
    seed_items(runtime)
    subs = add_subscribers(runtime, 9)
    tags = ["en", "es", "pt", "es-CL", "pt_BR", "fr", "EN-us", "es", "xx-!!"]
    set_locales(runtime, {sid: tag for (sid, _), tag in zip(subs, tags, strict=True)})
    recorder = Recorder(pipelining=True)
    with smtp_server(recorder) as port:
        use_smtp(runtime, port)
        report = send_digests(runtime, regions=[REGION], week=WEEK, early=True)
        again = send_digests(runtime, regions=[REGION], week=WEEK, early=True)
    assert report.run.sent == 9 and again.run.sent == 0
    expected = ["en", "es", "pt", "es", "pt", "en", "en", "es", "en"]
    ledger = rows(runtime)
    assert [ledger[sid].locale for sid, _ in subs] == expected
    digest_id = report.digests[0].digest_id
    assert renditions(runtime) == [(digest_id, "es"), (digest_id, "pt")]  # English is the row
    subjects = {
        "en": "Your news: Central America, week 48 of 2026",
        "es": "Sus noticias: Centroamérica, semana 48 de 2026",
        "pt": "Suas notícias: América Central, semana 48 de 2026",
    }
    footers = {"en": "Unsubscribe", "es": "Darse de baja", "pt": "Cancelar assinatura"}
    periods = {language: period_label(WEEK, language) for language in subjects}
    assert "nov" in periods["es"] and "de nov." in periods["pt"] and "Nov" in periods["en"]
    for (_, email), language in zip(subs, expected, strict=True):
        msg = recorder.parsed(email)
        assert msg["Content-Language"] == language
        assert msg["Subject"] == subjects[language]
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert f'<html lang="{language}"' in html
        assert footers[language] in html and footers[language] in text
        assert periods[language] in text, text[:300]
        assert email in text  # the per-recipient parts still go in per message


def test_the_language_is_fixed_when_the_row_is_queued(runtime: Runtime) -> None:
    seed_items(runtime)
    ((sid, email),) = add_subscribers(runtime, 1)
    set_locales(runtime, {sid: "es"})
    recorder = Recorder()
    with smtp_server(recorder) as port:
        use_smtp(runtime, port)
        send_digests(runtime, regions=[REGION], week=WEEK, early=True, dry_run=True)
        assert rows(runtime) == {}
        send_digests(runtime, regions=[REGION], week=WEEK, early=True, deliver_now=False)
        set_locales(runtime, {sid: "pt"})  # changed after queueing: this digest stays Spanish
        send_digests(runtime, regions=[REGION], week=WEEK, early=True)
    assert recorder.parsed(email)["Content-Language"] == "es"
    assert rows(runtime)[sid].locale == "es"


def test_the_web_copy_follows_the_page_language_when_rendered(runtime: Runtime) -> None:
    seed_items(runtime)
    ((sid, _),) = add_subscribers(runtime, 1)
    set_locales(runtime, {sid: "es"})
    recorder = Recorder()
    with smtp_server(recorder) as port:
        use_smtp(runtime, port)
        send_digests(runtime, regions=[REGION], week=WEEK, early=True)
    gen = make_web(runtime)
    web = next(gen)
    try:
        spanish = web.client.get(f"/archive/{REGION}/{WEEK}/email?lang=es")
        assert spanish.headers["content-language"] == "es"
        assert "Ver en el navegador" in spanish.text and '<html lang="es"' in spanish.text
        # Portuguese was never sent, so the copy readers got first (English) is shown
        other = web.client.get(f"/archive/{REGION}/{WEEK}/email?lang=pt")
        assert other.headers["content-language"] == "en" and "View in your browser" in other.text
        assert "%%" not in spanish.text + other.text  # no placeholder, no one's address
    finally:
        gen.close()
