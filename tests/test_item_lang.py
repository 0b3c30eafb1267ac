"""Items keep their own language: given at intake or detected, and written in every output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.errors import InputError
from publisher.intake.language import clean_lang, detect_language
from publisher.pipeline.feeds import build_store_feeds
from publisher.pipeline.intake import import_records, read_source
from publisher.runtime import Runtime
from publisher.store.items import all_items
from tests.test_cli import run
from tests.web_support import AUTH, Web, make_web


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        ("IOM and Costa Rica strengthen plan", "The programme is for the young.", "en"),
        ("La OIM y Costa Rica fortalecen el plan para estudiantes", "Los jóvenes del país.", "es"),
        ("OIM e Brasil lançam um plano para os migrantes", "Não há dados sobre as famílias.", "pt"),
        ("Guatemala", "", ""),  # too little to go on: unknown, not a guess
        ("", "", ""),
        ("1234 5678", "!!!", ""),
    ],
)  # fmt: skip
def test_detect_language(title: str, summary: str, expected: str) -> None:
    assert detect_language(title, summary) == expected


@given(st.text(max_size=500), st.text(max_size=2000))
def test_detection_always_answers_one_of_the_three_or_unknown(title: str, summary: str) -> None:
    assert detect_language(title, summary) in ("", "en", "es", "pt")


@pytest.mark.parametrize(
    ("given_tag", "expected"),
    [("es", "es"), ("PT_br", "pt-BR"), ("en-GB", "en-GB"), (" es ", "es")],
)
def test_clean_lang(given_tag: str, expected: str) -> None:
    assert clean_lang(given_tag) == expected


@pytest.mark.parametrize(
    "bad", ["e", "español", "es\r\nX: y", "<b>", "es-" + "x" * 20, "\u202ees", 5]
)
def test_clean_lang_refuses_what_is_not_a_tag(bad: object) -> None:
    with pytest.raises(InputError, match="language tag"):
        clean_lang(bad)


def test_csv_and_json_lang_columns_and_detection(runtime: Runtime, tmp_path: Path) -> None:
    csv_file = tmp_path / "items.csv"
    csv_file.write_text(
        "title,summary,regions,lang\n"
        "Noticias del Caribe,Un resumen breve.,caribbean,es\n"
        "Notícias do Brasil,O resumo é breve e não tem mais dados.,br,\n"
        "A bad one,x,gt,not a tag\n",
        encoding="utf-8",
    )
    json_file = tmp_path / "items.json"
    json_file.write_text(
        json.dumps([{"title": "Short", "summary": "x", "regions": "gt", "lang": "pt-BR"}])
    )
    with runtime.session() as session:
        for path in (csv_file, json_file):
            report = import_records(
                session, records=read_source(str(path)), tree=runtime.tree,
                inferrer=runtime.inferrer, now=runtime.now(),
            )  # fmt: skip
            if path == csv_file:
                assert [e.line for e in report.errors] == [4]
                assert "language tag" in report.errors[0].reason
        langs = {it.title: it.lang for it in all_items(session)}
    assert langs == {"Noticias del Caribe": "es", "Notícias do Brasil": "pt", "Short": "pt-BR"}


def test_feeds_and_pages_carry_each_item_language(runtime: Runtime, tmp_path: Path) -> None:
    csv_file = tmp_path / "items.csv"
    csv_file.write_text(
        "title,summary,regions,lang\n"
        "Noticias de Honduras,Un resumen.,hn,es\n"
        "Honduras news,A summary.,hn,en\n"
        "Honduras,,hn,\n",
        encoding="utf-8",
    )
    with runtime.session() as session:
        import_records(
            session, records=read_source(str(csv_file)), tree=runtime.tree,
            inferrer=runtime.inferrer, now=runtime.now(),
        )  # fmt: skip
        build_store_feeds(session, settings=runtime.settings, tree=runtime.tree)
    feeds = runtime.settings.feeds_dir
    atom = feedparser.parse((feeds / "hn.atom").read_bytes())
    assert not atom.bozo and atom.version == "atom10"
    by_title = {e.title: e for e in atom.entries}
    assert by_title["Noticias de Honduras"].title_detail.language == "es"
    assert by_title["Honduras news"].title_detail.language == "en"
    jf = json.loads((feeds / "hn.json").read_bytes())
    by_title_json = {i["title"]: i for i in jf["items"]}
    assert by_title_json["Noticias de Honduras"]["language"] == "es"
    assert "language" not in by_title_json["Honduras"]  # unknown: not claimed
    rss = feedparser.parse((feeds / "hn.rss").read_bytes())
    assert not rss.bozo and len(rss.entries) == 3
    web: Iterator[Web] = make_web(runtime)
    site = next(web)
    try:
        page = site.client.get("/regions/hn?lang=pt").text
        assert '<article lang="es">' in page and '<article lang="en">' in page
        assert '<html lang="pt">' in page
    finally:
        web.close()


def test_api_takes_lang_and_refuses_a_bad_one(runtime: Runtime) -> None:
    gen = make_web(runtime)
    web = next(gen)
    try:
        r = web.client.post(
            "/api/items", headers=AUTH,
            json={"title": "Noticia", "summary": "Texto", "regions": ["hn"], "lang": "es"},
        )  # fmt: skip
        assert r.status_code == 201 and r.json()["lang"] == "es"
        detected = web.client.post(
            "/api/items", headers=AUTH,
            json={"title": "La OIM y el gobierno de Honduras firman un acuerdo", "summary": ""},
        )  # fmt: skip
        assert detected.json()["lang"] == "es"
        bad = web.client.post(
            "/api/items", headers=AUTH, json={"title": "X", "lang": "es\r\nX-Evil: 1"}
        )
        assert bad.status_code == 422
        item = web.client.get(f"/items/{r.json()['id']}").text
        assert '<article class="item" lang="es">' in item
    finally:
        gen.close()


def test_cli_add_with_lang(tmp_path: Path) -> None:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    added = run(tmp_path, "items", "add", "--title", "Notícia", "--region", "br", "--lang", "pt")
    assert added.returncode == 0, added.stderr
    bad = run(tmp_path, "items", "add", "--title", "X", "--region", "br", "--lang", "x!")
    assert bad.returncode == 1 and "language tag" in bad.stderr


def test_api_edit_changes_or_redetects_the_language(runtime: Runtime) -> None:
    gen = make_web(runtime)
    web = next(gen)
    try:
        r = web.client.post(
            "/api/items", headers=AUTH, json={"title": "Noticia", "regions": ["hn"], "lang": "es"}
        )
        item_id = r.json()["id"]
        changed = web.client.patch(f"/api/items/{item_id}", headers=AUTH, json={"lang": "pt"})
        assert changed.status_code == 200 and changed.json()["lang"] == "pt"
        redetect = web.client.patch(
            f"/api/items/{item_id}", headers=AUTH,
            json={"title": "The government of Honduras and the IOM sign an agreement", "lang": ""},
        )  # fmt: skip
        assert redetect.json()["lang"] == "en"
        bad = web.client.patch(f"/api/items/{item_id}", headers=AUTH, json={"lang": "<b>"})
        assert bad.status_code == 422
    finally:
        gen.close()
