"""SMTP_URL, what SMTP replies mean, TLS and AUTH, the rate limiter, the Maildir server."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from publisher.delivery.embedded import maildir_server
from publisher.delivery.mailer import send_one_message
from publisher.delivery.ratelimit import RateLimiter
from publisher.delivery.smtp import (
    Outcome,
    SmtpConnection,
    SmtpPool,
    WireReady,
    data_payload,
    is_wire_ready,
)
from publisher.delivery.smtp_url import SmtpTarget, parse_smtp_url
from publisher.errors import ConfigError, DeliveryError
from publisher.settings import Settings
from tests.smtp_servers import DROP, Recorder, smtp_server

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nline\r\n.dot line\r\n"


# -- SMTP_URL ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.org", SmtpTarget("mail.example.org", 25)),
        ("smtp://relay:2525", SmtpTarget("relay", 2525)),
        ("smtps://mail.example.org", SmtpTarget("mail.example.org", 465, security="tls")),
        (
            "smtp://news%40example.org:p%40ss%3Aw%2Fd@mail.example.org:587",
            SmtpTarget("mail.example.org", 587, username="news@example.org", password="p@ss:w/d"),
        ),
        ("SMTP://h:1?starttls=never", SmtpTarget("h", 1, starttls="never")),
        (
            "smtp://h:1?starttls=require&verify=false",
            SmtpTarget("h", 1, starttls="require", verify=False),
        ),
    ],
)
def test_smtp_url_parses(url: str, expected: SmtpTarget) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mail.example.org", "scheme"),
        ("http://mail.example.org", "scheme"),
        ("smtp://", "no host"),
        ("smtp://h:port", "not a URL"),
        ("smtp://h:99999", "not a URL"),
        ("smtp://h/path", "path"),
        ("smtp://:secret@h", "no user name"),
        ("smtp://h?tls=1", "unknown option"),
        ("smtp://h?verify=maybe", "true or false"),
        ("smtp://h?starttls=sometimes", "auto|require|never"),
    ],
)
def test_smtp_url_junk_is_a_config_error(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        parse_smtp_url(url)


def test_smtp_target_never_shows_the_password() -> None:
    target = parse_smtp_url("smtp://user:hunter2@h:25")
    assert "hunter2" not in repr(target) and "hunter2" not in target.describe()


def test_data_payload_stuffs_dots_and_fixes_line_ends() -> None:
    assert data_payload(b".a\nb\r\n.c") == b"..a\r\nb\r\n..c\r\n.\r\n"
    assert data_payload(MESSAGE).endswith(b"line\r\n..dot line\r\n.\r\n")


@pytest.mark.parametrize(
    ("message", "ready"),
    [
        (b"A: b\r\n\r\nbody\r\n", True),
        (b"A: b\r\n\r\nbody", False),  # no final CRLF
        (b"A: b\n\nbody\r\n", False),  # bare LF
        (b"A: b\r\n\r\nbo\rdy\r\n", False),  # bare CR
        (b"A: b\r\n\r\n.body\r\n", False),  # a line starting with a dot
    ],
)
def test_wire_ready_messages_skip_the_scans(message: bytes, ready: bool) -> None:
    assert is_wire_ready(message) is ready
    if ready:
        assert data_payload(WireReady(message)) == message + b".\r\n"


# -- replies and outcomes ------------------------------------------------------------------------
def _send(port: int, recipients: list[str], **target: Any) -> dict[str, Any]:
    conn = SmtpConnection(SmtpTarget("127.0.0.1", port, starttls="never", **target))
    try:
        return conn.transact("news@example.org", recipients, MESSAGE)
    finally:
        conn.close()


@pytest.fixture(params=[False, True], ids=["lockstep", "pipelining"])
def recorder(request: pytest.FixtureRequest) -> Recorder:
    return Recorder(pipelining=request.param)


@pytest.mark.parametrize(
    ("where", "reply", "outcome", "bounce"),
    [
        ("rcpt", "421 4.3.2 shutting down", Outcome.deferred, False),
        ("rcpt", "451 4.3.0 try later", Outcome.deferred, False),
        ("rcpt", "452 4.2.2 mailbox full", Outcome.deferred, False),
        ("rcpt", "550 5.1.1 no such user", Outcome.failed, True),
        ("rcpt", "554 5.7.1 rejected", Outcome.failed, True),
        ("rcpt", DROP, Outcome.deferred, False),
        ("data", "451 4.3.0 try later", Outcome.deferred, False),
        ("data", "554 5.6.0 content refused", Outcome.failed, True),
        ("data", DROP, Outcome.unknown, False),
    ],
)
def test_each_reply_has_one_meaning(
    recorder: Recorder, where: str, reply: str, outcome: Outcome, bounce: bool
) -> None:
    (recorder.rcpt_replies if where == "rcpt" else recorder.data_replies)["x@example.org"] = reply
    with smtp_server(recorder) as port:
        result = _send(port, ["x@example.org"])["x@example.org"]
        assert result.outcome is outcome
        assert result.bounce is bounce
        if reply != DROP:
            assert result.code == int(reply[:3])
        # The connection is usable (or reopened) for the next message.
        assert _send(port, ["ok@example.org"])["ok@example.org"].outcome is Outcome.sent


def test_refused_recipients_are_handled_one_by_one(recorder: Recorder) -> None:
    recorder.rcpt_replies = {
        "gone@example.org": "550 5.1.1 unknown",
        "full@example.org": "452 full",
    }
    with smtp_server(recorder) as port:
        results = _send(
            port, ["a@example.org", "gone@example.org", "full@example.org", "b@example.org"]
        )
    assert {r: v.outcome for r, v in results.items()} == {
        "a@example.org": Outcome.sent,
        "gone@example.org": Outcome.failed,
        "full@example.org": Outcome.deferred,
        "b@example.org": Outcome.sent,
    }
    assert recorder.received() == {"a@example.org": 1, "b@example.org": 1}


def test_a_refused_sender_is_the_setup_not_the_recipient(recorder: Recorder) -> None:
    recorder.mail_reply = "553 5.7.1 sender not allowed"
    with smtp_server(recorder) as port:
        result = _send(port, ["a@example.org"])["a@example.org"]
    assert result.outcome is Outcome.failed and result.systemic and not result.bounce


def test_no_server_means_deferred() -> None:
    from publisher.delivery.embedded import free_port

    result = _send(free_port(), ["a@example.org"])["a@example.org"]
    assert result.outcome is Outcome.deferred and result.systemic


def test_pool_reuses_connections() -> None:
    recorder = Recorder()
    with smtp_server(recorder) as port, SmtpPool(SmtpTarget("127.0.0.1", port), 2) as pool:
        for i in range(10):
            rcpt = f"r{i}@example.org"
            assert pool.send("n@example.org", [rcpt], MESSAGE)[rcpt].outcome is Outcome.sent
    assert recorder.sessions == 1  # one thread: one connection for all ten messages


# -- TLS and AUTH --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def _authenticator(logins: list[tuple[bytes, bytes]]) -> Callable[..., AuthResult]:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"p@ss:w/d")

    return check


def test_starttls_then_auth_with_percent_decoded_password(certificate: tuple[Path, Path]) -> None:
    recorder, logins = Recorder(), []
    with smtp_server(
        recorder, tls_context=_server_context(certificate), require_starttls=True,
        authenticator=_authenticator(logins), auth_require_tls=True,
    ) as port:  # fmt: skip
        target = parse_smtp_url(
            f"smtp://news%40example.org:p%40ss%3Aw%2Fd@127.0.0.1:{port}?verify=false"
        )
        conn = SmtpConnection(target)
        assert (
            conn.transact("n@x.org", ["a@example.org"], MESSAGE)["a@example.org"].outcome == "sent"
        )
        conn.close()
        # With certificate checks on, a self-signed server is refused before anything is sent.
        strict = SmtpConnection(parse_smtp_url(f"smtp://u:p@127.0.0.1:{port}"))
        refused = strict.transact("n@x.org", ["b@example.org"], MESSAGE)["b@example.org"]
        assert refused.outcome is Outcome.deferred
    assert logins == [(b"news@example.org", b"p@ss:w/d")]
    assert recorder.received() == {"a@example.org": 1}


def test_smtps_speaks_tls_from_the_first_byte(certificate: tuple[Path, Path]) -> None:
    recorder = Recorder()
    with smtp_server(recorder, ssl_context=_server_context(certificate)) as port:
        target = parse_smtp_url(f"smtps://127.0.0.1:{port}?verify=false")
        assert _send_target(target)["a@example.org"].outcome is Outcome.sent
    assert recorder.received() == {"a@example.org": 1}


def _send_target(target: SmtpTarget) -> dict[str, Any]:
    conn = SmtpConnection(target)
    try:
        return conn.transact("n@example.org", ["a@example.org"], MESSAGE)
    finally:
        conn.close()


def test_starttls_required_but_not_offered_is_refused() -> None:
    with smtp_server(Recorder()) as port:
        result = _send_target(parse_smtp_url(f"smtp://127.0.0.1:{port}?starttls=require"))
    assert result["a@example.org"].outcome is Outcome.deferred
    assert "STARTTLS" in result["a@example.org"].detail


# -- rate limit ----------------------------------------------------------------------------------
def test_rate_limiter_paces_without_waiting() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(10, clock=lambda: now[0], sleep=sleep)
    for _ in range(30):
        limiter.acquire()
    # a burst of 10 goes at once, then one every 0.1 s: 30 messages take 2 s
    assert now[0] == pytest.approx(2.0)
    assert len(slept) == 20
    RateLimiter(0, sleep=lambda s: pytest.fail("rate 0 never sleeps")).acquire()


# -- the embedded Maildir server -----------------------------------------------------------------
def test_embedded_server_writes_maildir_files(tmp_path: Path) -> None:
    with maildir_server(tmp_path / "mail") as target:
        pool = SmtpPool(target, 1)
        results = pool.send("n@example.org", ["a@example.org", "b@example.org"], MESSAGE)
        pool.close()
    assert {r.outcome for r in results.values()} == {Outcome.sent}
    files = sorted((tmp_path / "mail" / "new").iterdir())
    assert len(files) == 2
    parsed = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    delivered = {m["Delivered-To"] for m in parsed}
    assert delivered == {"a@example.org", "b@example.org"}
    assert b"\r\n..dot line" not in files[0].read_bytes()  # dot-stuffing undone by the server


def test_send_one_message_uses_the_embedded_server(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    result = send_one_message(settings, "News <news@example.org>", "c@example.org", MESSAGE)
    assert result.outcome is Outcome.sent
    assert len(list((settings.mail_dir / "new").iterdir())) == 1


def test_send_one_message_raises_when_refused(make_settings: Callable[..., Settings]) -> None:
    recorder = Recorder()
    recorder.rcpt_replies["c@example.org"] = "550 5.1.1 unknown"
    with smtp_server(recorder) as port:
        settings = make_settings(smtp_url=f"smtp://127.0.0.1:{port}")
        with pytest.raises(DeliveryError, match="550"):
            send_one_message(settings, "news@example.org", "c@example.org", MESSAGE)


def test_non_ascii_addresses_use_smtputf8_when_offered() -> None:
    recorder = Recorder()
    with smtp_server(recorder, enable_SMTPUTF8=True) as port:
        assert _send(port, ["josé@example.org"])["josé@example.org"].outcome is Outcome.sent
    with smtp_server(Recorder(), enable_SMTPUTF8=False) as port:
        refused = _send(port, ["josé@example.org"])["josé@example.org"]
    assert (refused.outcome, refused.code) == (Outcome.failed, 553)
    assert recorder.received() == {"josé@example.org": 1}
