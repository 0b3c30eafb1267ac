"""The catalogs: current with the sources, complete in every language, compiled at load time."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from publisher.i18n import catalogs
from publisher.i18n.context import gettext, ngettext, use_locale

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ("es", "pt")


def read(path: Path) -> object:
    with path.open("rb") as f:
        return read_po(f)


def ids(catalog: object) -> set[object]:
    return {m.id for m in catalog if m.id}  # type: ignore[attr-defined]


def test_messages_pot_is_current_with_the_sources(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
         "-k", "N_", "-k", "gettext", "-k", "ngettext:1,2", "--no-location", "--omit-header",
         "-o", str(fresh), "."],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    shipped = ids(read(catalogs.LOCALE_DIR / "messages.pot"))
    assert ids(read(fresh)) == shipped, "run `make i18n` and translate the new messages"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated_and_none_is_fuzzy(locale: str) -> None:
    template = ids(read(catalogs.LOCALE_DIR / "messages.pot"))
    catalog = read(catalogs.LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po")
    by_id = {m.id: m for m in catalog if m.id}  # type: ignore[attr-defined]
    assert set(by_id) >= template, f"{locale}: missing {template - set(by_id)}"
    for msgid in template:
        message = by_id[msgid]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{locale}: {msgid!r} is not translated"
        assert not message.fuzzy, f"{locale}: {msgid!r} is fuzzy"
        if message.python_format:
            placeholders = set(re.findall(r"%\(\w+\)[sd]", str(msgid)))
            for text in strings:
                assert set(re.findall(r"%\(\w+\)[sd]", text)) == placeholders


def test_po_files_compile_in_memory_when_no_mo_exists(tmp_path: Path) -> None:
    po = catalogs.LOCALE_DIR / "es" / "LC_MESSAGES" / "messages.po"
    target = tmp_path / "es" / "LC_MESSAGES"
    target.mkdir(parents=True)
    (target / "messages.po").write_bytes(po.read_bytes())
    loaded = catalogs.load(tmp_path, "es")
    assert loaded.gettext("Latest news") == "Últimas noticias"
    assert not (target / "messages.mo").exists()
    assert catalogs.load(tmp_path, "xx").gettext("Latest news") == "Latest news"


@pytest.mark.parametrize(
    ("locale", "n", "text"),
    [("en", 1, "1 new item"), ("en", 2, "2 new items"), ("es", 1, "1 noticia nueva"),
     ("es", 5, "5 noticias nuevas"), ("pt", 1, "1 notícia nova"), ("pt", 3, "3 notícias novas")],
)  # fmt: skip
def test_plurals(locale: str, n: int, text: str) -> None:
    with use_locale(locale):
        assert ngettext("%(num)d new item", "%(num)d new items", n) % {"num": n} == text


def test_locale_is_per_context() -> None:
    with use_locale("pt"):
        assert gettext("Latest news") == "Últimas notícias"
        with use_locale("es"):
            assert gettext("Latest news") == "Últimas noticias"
        assert gettext("Latest news") == "Últimas notícias"
    assert gettext("Latest news") == "Latest news"


def test_locales_setting_accepts_only_languages_with_a_catalog() -> None:
    from publisher.errors import ConfigError
    from publisher.settings import load_settings

    settings = load_settings(_env_file=None, locales=" es, EN ,pt,es", default_locale="pt")
    assert settings.locale_list == ("es", "en", "pt")
    assert settings.pick_locale("es-CL") == "es" and settings.pick_locale("fr") == "pt"
    assert load_settings(_env_file=None, locales="es").locale_list == ("en", "es")
    for bad in ({"locales": "en,xx"}, {"locales": ""}, {"default_locale": "klingon"}):
        with pytest.raises(ConfigError, match="LOCALE"):
            load_settings(_env_file=None, **bad)


def test_content_language_cannot_carry_a_header() -> None:
    from publisher.email.message import MessageTemplate
    from publisher.errors import InputError

    for bad in ("es\r\nBcc: x@example.org", "es es", "\u202ees", ""):
        if not bad:
            continue
        with pytest.raises(InputError, match="language tag"):
            MessageTemplate(
                subject="s", html="h", text="t", from_addr="News <news@example.org>",
                list_id=None, language=bad,
            )  # fmt: skip
