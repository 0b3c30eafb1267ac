"""The bounce mailbox over IMAP, against a scripted IMAP4 server on a real socket: unseen
reports are stored then marked seen, a bad login never stops the service, bad URLs and clear-text
passwords are refused."""

from __future__ import annotations

import logging

import pytest
from sqlmodel import select

from publisher.bounces.imap import poll_mailbox
from publisher.bounces.policy import sweep
from publisher.models import BounceReport
from publisher.runtime import Runtime
from tests.bounce_support import receiver, report, send_digest, status, with_verp
from tests.imap_server import Mailbox, imap_server
from tests.service_support import wait_until


def _reports(rt: Runtime) -> list[BounceReport]:
    with rt.session() as session:
        return list(session.exec(select(BounceReport)))


def test_bounce_mailbox_over_imap(runtime: Runtime) -> None:
    with_verp(runtime)
    sent = send_digest(runtime, 3)
    (hard_id, hard), (away_id, away), (plaint_id, plaint) = sent.readers
    box = Mailbox()
    box.add(report("gmail_hard.eml", verp=sent.senders[hard], rcpt=hard, msgid="<a@b>"))
    box.add(report("ooo_spanish.eml", verp=sent.senders[away], rcpt=away))
    box.add(report("arf_yahoo_complaint.eml", verp=sent.senders[plaint], rcpt=plaint))
    box.add(b"\x00\xff garbage \r\n\r\n")
    pw = "pa%20ss%22word"
    url = f"imap://bounces:{pw}@127.0.0.1:{{port}}/INBOX"
    with imap_server(box) as port:
        assert poll_mailbox(runtime, url.format(port=port)) == 4
        assert box.seen() == {1, 2, 3, 4}
        assert poll_mailbox(runtime, url.format(port=port)) == 0
        box.messages[1] = (box.messages[1][0], False)  # marked unseen again by a person
        assert poll_mailbox(runtime, url.format(port=port)) == 1
    assert any(c.split()[1:3] == ["UID", "STORE"] for c in box.commands)
    assert len(_reports(runtime)) == 4  # the refetched one is the same report
    sweep(runtime)
    assert status(runtime, hard_id) == "bounced"
    assert status(runtime, away_id) == "active"
    assert status(runtime, plaint_id) == "unsubscribed"


def test_the_service_polls_the_mailbox_and_survives_a_bad_login(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    with_verp(runtime)
    sent = send_digest(runtime, 1)
    sub_id, email = sent.readers[0]
    box = Mailbox()
    box.add(report("yahoo_plain.eml", verp=sent.senders[email], rcpt=email))
    with imap_server(box) as port:
        runtime.settings = runtime.settings.model_copy(
            update={"imap_url": f"imap://bounces:wrong@127.0.0.1:{port}/INBOX"}
        )
        with caplog.at_level(logging.WARNING), receiver(runtime):
            wait_until(lambda: "bounces.imap_failed" in caplog.text, 20, "the failed poll")
        assert box.seen() == set() and status(runtime, sub_id) == "active"
        runtime.settings = runtime.settings.model_copy(
            update={"imap_url": f"imap://bounces:pa%20ss%22word@127.0.0.1:{port}/INBOX"}
        )
        with receiver(runtime) as (_, outcomes):
            assert [o.state for o in outcomes.wait(1)] == ["applied"]
        assert box.seen() == {1}
    assert status(runtime, sub_id) == "bounced"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("pop3://u:p@host/INBOX", "must look like"),
        ("imaps://host/INBOX", "no user name"),
        ("imaps://u:p@host/IN%0D%0ABOX", "forbidden characters"),
        ('imaps://u:p@host/a"b', "forbidden characters"),
    ],
)
def test_bad_imap_urls_are_one_clear_error(url: str, message: str) -> None:
    from publisher.bounces.imap import parse_imap_url
    from publisher.errors import ConfigError

    with pytest.raises(ConfigError, match=message) as caught:
        parse_imap_url(url)
    assert ":p@" not in str(caught.value)


def test_clear_text_imap_to_a_remote_host_is_refused() -> None:
    import socketserver
    import threading

    from publisher.bounces.imap import ImapTarget, _connect
    from publisher.errors import ConfigError

    class NoTls(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(b"* OK [CAPABILITY IMAP4rev1] no tls here\r\n")
            while line := self.rfile.readline():
                tag = line.split(b" ")[0]
                self.wfile.write(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.2", 0), NoTls)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        # 127.0.0.2 is loopback too, but not a name the poller trusts with a clear password.
        target = ImapTarget("127.0.0.2", port, False, "u", "secret", "INBOX")
        with pytest.raises(ConfigError, match="no STARTTLS"):
            _connect(target, 5)
    finally:
        server.shutdown()
        server.server_close()
