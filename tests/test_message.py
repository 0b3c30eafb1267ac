"""Per-recipient messages: parsed back with the email package, header safety, DKIM, speed."""

from __future__ import annotations

import base64
import email
import email.policy
import re
import shutil
import subprocess
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest

from publisher.email.dkim import DkimSigner
from publisher.email.message import MessageTemplate, list_id, message_id
from publisher.email.outgoing import DigestMail, confirmation_message
from publisher.email.render import fill
from publisher.errors import ConfigError, InputError
from publisher.models import Digest
from publisher.tokens import Tokens
from tests.test_email_render import MARKS, fixed_edition

FROM = "Regional News <news@example.org>"
LIST_ID = list_id(
    slug="central-america", name="Central America", site_title="Regional News", from_addr=FROM
)
DATE = "Mon, 30 Nov 2026 08:00:00 +0000"
RENDERED = fixed_edition()


def template(subject: str = RENDERED.subject, **kw: object) -> MessageTemplate:
    args: dict[str, object] = {
        "html": RENDERED.html,
        "text": RENDERED.text,
        "from_addr": FROM,
        "list_id": LIST_ID,
        "marks": MARKS,
    }
    args.update(kw)
    return MessageTemplate(subject=subject, **args)  # type: ignore[arg-type]


def build(t: MessageTemplate, to: str = "ann@example.org", n: int = 1, **kw: str) -> bytes:
    values = {
        "to": to,
        "unsubscribe_url": f"https://news.example.org/unsubscribe/tok{n}.sig",
        "preferences_url": f"https://news.example.org/preferences/pref{n}.sig",
        "message_id": message_id(7, n, "example.org"),
        "date": DATE,
    }
    values.update(kw)
    return t.for_recipient(**values)


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def unix(text: str) -> str:
    return text.replace("\r\n", "\n")


def test_every_header_and_both_parts_read_back() -> None:
    raw = build(template())
    msg = parse(raw)
    assert msg["From"] == FROM
    assert msg["To"] == "ann@example.org"
    assert msg["Subject"] == "Your news: Belize, Costa Rica, and Mexico, week 48 of 2026"
    assert msg["Date"].datetime == datetime(2026, 11, 30, 8, tzinfo=UTC)
    assert msg["Message-ID"] == "<digest-7.subscriber-1@example.org>"
    assert msg["MIME-Version"] == "1.0"
    assert msg["List-Id"] == '"Regional News: Central America" <central-america.example.org>'
    assert msg["List-Unsubscribe"] == "<https://news.example.org/unsubscribe/tok1.sig>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    assert not msg.defects
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    values = MARKS.values(
        email="ann@example.org",
        unsubscribe_url="https://news.example.org/unsubscribe/tok1.sig",
        preferences_url="https://news.example.org/preferences/pref1.sig",
    )
    for part, body, is_html in ((parts[0], RENDERED.text, False), (parts[1], RENDERED.html, True)):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "base64"
        assert not part.defects
        assert unix(part.get_content()) == unix(fill(body, values, html=is_html))
    assert "%%" not in parts[0].get_content() + parts[1].get_content()


def test_wire_format_crlf_and_line_lengths() -> None:
    long_subject = "Noticias de Centroamérica, semana 48 de 2026 — " + ("muy larga " * 12).strip()
    raw = build(template(subject=long_subject))
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 78
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert "=?utf-8?" in head
    assert parse(raw)["Subject"] == long_subject
    for line in raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n"):
        if line and not line.startswith(b"--") and b":" not in line:
            assert len(line) <= 76 and re.fullmatch(rb"[A-Za-z0-9+/=]+", line)


def test_list_unsubscribe_is_one_unencoded_unfolded_line() -> None:
    url = "https://news.example.org/unsubscribe/" + "A" * 300
    raw = build(template(), unsubscribe_url=url)
    (line,) = [x for x in raw.split(b"\r\n") if x.startswith(b"List-Unsubscribe:")]
    assert line == b"List-Unsubscribe: <" + url.encode() + b">"
    assert parse(raw)["List-Unsubscribe"] == f"<{url}>"
    with pytest.raises(InputError, match="one-click unsubscribe URL"):
        build(template(), unsubscribe_url="https://x.org/" + "A" * 1000)


def test_two_recipients_differ_only_in_their_parts() -> None:
    t = template()
    a, b = parse(build(t, "ann@example.org", 1)), parse(build(t, "bob@example.org", 2))
    differ = {"To", "Message-ID", "List-Unsubscribe"}
    assert a.keys() == b.keys()
    for name in a:
        assert (a[name] == b[name]) == (name not in differ), name
    for pa, pb in zip(a.iter_parts(), b.iter_parts(), strict=True):
        assert pa.keys() == pb.keys()
        ca = (
            pa.get_content()
            .replace("ann@example.org", "X")
            .replace("tok1", "T")
            .replace("pref1", "P")
        )
        cb = (
            pb.get_content()
            .replace("bob@example.org", "X")
            .replace("tok2", "T")
            .replace("pref2", "P")
        )
        assert ca == cb


def test_addresses_with_html_specials_are_escaped_in_html_only() -> None:
    to = "o'neil&co@example.org"
    msg = parse(build(template(), to))
    text, html = (p.get_content() for p in msg.iter_parts())
    assert f"sent to {to} because" in text
    assert "o&#x27;neil&amp;co@example.org" in html
    assert msg["To"] == to


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("to", "ann@example.org\r\nBcc: all@example.org", "To header"),
        ("to", "ann@example.org\n", "To header"),
        ("to", "Ann <ann@example.org>", "To header"),
        ("to", "ünï@example.org", "To header"),
        ("to", "", "To header"),
        ("message_id", "<a@b>\r\nBcc: x", "Message-ID"),
        ("message_id", "no-brackets@example.org", "Message-ID"),
        ("date", "Mon, 30 Nov 2026\r\nBcc: x", "header date"),
        ("date", "Mon\x00", "header date"),
        ("unsubscribe_url", "https://x.org/u\r\nBcc: x", "unsubscribe URL"),
        ("unsubscribe_url", "https://x.org/u>, <mailto:evil@x.org", "unsubscribe URL"),
        ("unsubscribe_url", "javascript:alert(1)", "unsubscribe URL"),
        ("unsubscribe_url", "https://x.org/a b", "unsubscribe URL"),
    ],
)
def test_cr_lf_nul_and_malformed_values_never_reach_a_header(
    field: str, value: str, reason: str
) -> None:
    with pytest.raises(InputError, match=reason):
        build(template(), **{field: value})


def test_static_headers_are_checked_once() -> None:
    with pytest.raises(InputError, match="Subject holds a line break"):
        template(subject="Hello\r\nBcc: all@example.org")
    with pytest.raises(ConfigError, match="PUBLISHER_FROM"):
        template(from_addr="News <news@example.org>\nBcc: x@example.org")
    with pytest.raises(ConfigError, match="PUBLISHER_FROM must be one address"):
        template(from_addr="a@example.org, b@example.org")
    with pytest.raises(ConfigError, match="PUBLISHER_FROM must be one address"):
        template(from_addr="Regional News, Inc. <news@example.org>")  # the comma makes two
    quoted = parse(build(template(from_addr='"Regional News, Inc." <news@example.org>')))
    assert quoted["From"].addresses[0].display_name == "Regional News, Inc."
    nonascii = build(template(from_addr="Noticias Región <news@example.org>"))
    assert b"From: Noticias =?utf-8?q?Regi=C3=B3n?= <news@example.org>" in nonascii


def test_message_ids_are_stable_per_delivery() -> None:
    assert message_id(3, 9, "Example.ORG") == "<digest-3.subscriber-9@example.org>"
    assert message_id(3, 9, "example.org") == message_id(3, 9, "example.org")
    assert message_id(3, 9, "example.org") != message_id(3, 10, "example.org")


def stored_digest() -> Digest:
    now = datetime(2026, 11, 30, 8, tzinfo=UTC)
    return Digest(
        id=7, region="bz", regions="bz cr mx", week="2026-W48", status="assembled",
        window_start=now, window_end=now, item_ids="[104, 103, 102, 100, 101]",
        subject=RENDERED.subject, html=RENDERED.html, text=RENDERED.text, created=now,
        placeholder_key=MARKS.key,
    )  # fmt: skip


def test_digest_mail_builds_signed_links_for_each_recipient(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings()
    tokens = Tokens(settings.secret_keys())
    mail = DigestMail(stored_digest(), settings=settings, tokens=tokens, region_name="Belize")
    key = "0123456789abcdef0123456789abcdef"
    now = datetime(2026, 11, 30, 8, 0, 1, 500, tzinfo=UTC)
    msg = parse(mail.build(subscriber_id=42, key=key, email="ann@example.org", now=now))
    assert msg["Message-ID"] == mail.message_id(42) == "<digest-7.subscriber-42@example.org>"
    assert msg["Date"] == "Mon, 30 Nov 2026 08:00:01 +0000"
    url = msg["List-Unsubscribe"].strip("<>")
    assert url.startswith("https://news.example.org/unsubscribe/")
    assert tokens.read("unsubscribe", url.rsplit("/", 1)[1], now=now) == key
    html = msg.get_body(("html",)).get_content()
    assert "sent to ann@example.org because" in html  # the digest's own markers were filled
    pref = re.search(r'href="(https://news.example.org/preferences/[^"]+)"', html)
    assert pref and tokens.read("preferences", pref.group(1).rsplit("/", 1)[1], now=now) == key
    assert "ann@example.org" not in url and "ann@example.org" not in pref.group(1)
    with pytest.raises(ValueError, match="non-skipped"):
        DigestMail(
            Digest(status="skipped", id=1), settings=settings, tokens=tokens, region_name="x"
        )


def test_confirmation_message(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings()
    tokens = Tokens(settings.secret_keys())
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    raw = confirmation_message(
        settings=settings, tokens=tokens, subscriber_id=5, key="0123456789abcdef0123456789abcdef",
        email="Ann@example.org", region_names=["Central America"], now=now,
    )  # fmt: skip
    msg = parse(raw)
    assert (
        msg["To"] == "Ann@example.org" and msg["Message-ID"] == "<confirm-5.1795780800@example.org>"
    )
    assert msg["List-Unsubscribe"] is None and msg["List-Id"] is None
    text = msg.get_body(("plain",)).get_content()
    link = re.search(r"https://news.example.org/confirm/(\S+)", text)
    assert (
        link
        and tokens.read("confirm", link.group(1), now=now) == "0123456789abcdef0123456789abcdef"
    )


# --- DKIM --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test key")
    folder = tmp_path_factory.mktemp("dkim")
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key, base64.b64encode(der)


def test_dkim_signature_covers_the_one_click_headers_and_verifies(
    rsa_key: tuple[Path, bytes],
    make_settings,  # type: ignore[no-untyped-def]
) -> None:
    key_file, public = rsa_key
    settings = make_settings(
        dkim_key_file=key_file, dkim_selector="news", dkim_domain="example.org"
    )
    signer = DkimSigner.from_settings(settings)
    assert signer is not None
    raw = build(template(dkim=signer))
    assert raw.startswith(b"DKIM-Signature: ")
    signature = parse(raw)["DKIM-Signature"]
    signed = re.search(r"h=([^;]+)", signature.replace(" ", "").replace("\r\n", ""))
    assert signed
    names = signed.group(1).split(":")
    for name in (
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ):
        assert name in names

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"news._domainkey.example.org."
        return b"v=DKIM1; k=rsa; p=" + public

    assert dkim.verify(raw, dnsfunc=dns)
    tampered = raw.replace(b"https://news.example.org/unsubscribe/", b"https://evil.example/unsub/")
    assert not dkim.verify(tampered, dnsfunc=dns)
    assert DkimSigner.from_settings(make_settings()) is None


# --- speed -------------------------------------------------------------------------------


def test_for_recipient_reuses_the_encoded_body_and_encodes_only_the_footer() -> None:
    """Speed lives in bench/bench_message.py; what makes it fast is checked here: each body is
    base64-encoded once per digest, up to the footer that holds the placeholders, and a
    recipient's message only adds the short encoded tail (no timing in tests)."""
    from bench.bench_message import edition_of_size

    big, marks = edition_of_size(25_000)
    t = template(subject=big.subject, html=big.html, text=big.text, marks=marks)
    one, two = build(t, "reader1@example.org", 1), build(t, "reader2@example.org", 2)
    assert 25_000 <= len(one) < 40_000
    for body in (t._html, t._text):
        assert len(body.prefix) > 0 and body.prefix in one and body.prefix in two
        assert len(body.tail) < 3_000  # only the footer is encoded per recipient
    assert len(t._html.prefix) > 10 * len(t._html.tail)
