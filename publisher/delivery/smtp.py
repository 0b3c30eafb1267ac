"""SMTP connections and their pool: one transaction's replies turned into outcomes per recipient.

A 2xx after the final dot is ``sent``; a 4xx, or a connection lost before the final dot went
out, is ``deferred``; a 5xx is ``failed``; a connection that drops after the final dot went out,
with no reply, is ``unknown`` (the server may have taken the message). The data phase is written
here rather than left to smtplib, whose ``data()`` cannot tell those last two cases apart.
"""

from __future__ import annotations

import logging
import queue
import re
import smtplib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

from publisher.delivery.journal import final_dot
from publisher.delivery.outcome import NO_DATA, Outcome, Reply, SendResult, classify
from publisher.delivery.smtp_url import SmtpTarget

__all__ = [
    "Outcome", "SendResult", "SmtpConnection", "SmtpPool", "WireReady", "classify",
    "data_payload", "is_wire_ready",
]  # fmt: skip

log = logging.getLogger(__name__)

_LEADING_DOT = re.compile(rb"(?m)^\.")
_BARE_EOL = re.compile(rb"\r\n|\r|\n")


_QUOTED = re.compile('[<>" \r\n\x00]')


def _plain(address: str) -> bool:
    """An ASCII address with nothing to quote, safe to write between angle brackets as is."""
    return address.isascii() and _QUOTED.search(address) is None


def _path(address: str) -> str:
    return f"<{address}>"


class WireReady(bytes):
    """A message known to be in wire form already: CRLF line ends only, ending in CRLF, and no
    line starting with a dot. ``data_payload`` skips its checks (three scans of the whole
    message, a third of the transport's CPU per message); see ``is_wire_ready``."""


def is_wire_ready(message: bytes) -> bool:
    """Whether ``message`` needs no line-end repair and no dot-stuffing."""
    crlf = message.count(b"\r\n")
    return (
        message.count(b"\n") == crlf
        and message.count(b"\r") == crlf
        and message.endswith(b"\r\n")
        and not message.startswith(b".")
        and b"\n." not in message
    )


def data_payload(message: bytes) -> bytes:
    """The DATA body on the wire: CRLF line ends, leading dots doubled, the final dot appended."""
    if isinstance(message, WireReady):
        return message + b".\r\n"
    crlf = message.count(b"\r\n")
    if message.count(b"\n") != crlf or message.count(b"\r") != crlf:
        message = _BARE_EOL.sub(b"\r\n", message)
    if message.startswith(b".") or b"\n." in message:
        message = _LEADING_DOT.sub(b"..", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message + b".\r\n"


class SmtpConnection:
    """One SMTP session reused across transactions; it reconnects by itself after any failure."""

    def __init__(self, target: SmtpTarget, *, local_hostname: str | None = None) -> None:
        self.target = target
        self.local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None
        self.pipelining = False
        self.last_used = 0.0

    @property
    def connected(self) -> bool:
        return self._smtp is not None and self._smtp.sock is not None

    def open(self) -> None:
        """Connect, say EHLO, upgrade with STARTTLS when offered (or required) and log in."""
        t = self.target
        smtp: smtplib.SMTP
        if t.security == "tls":
            smtp = smtplib.SMTP_SSL(
                t.host, t.port, local_hostname=self.local_hostname,
                timeout=t.timeout, context=t.tls_context(),
            )  # fmt: skip
        else:
            smtp = smtplib.SMTP(
                t.host, t.port, local_hostname=self.local_hostname, timeout=t.timeout
            )
        try:
            smtp.ehlo_or_helo_if_needed()
            offered = smtp.has_extn("starttls")
            if t.security == "starttls" and t.starttls == "require" and not offered:
                raise smtplib.SMTPNotSupportedError(f"{t.describe()} does not offer STARTTLS")
            if t.security == "starttls" and t.starttls != "never" and offered:
                smtp.starttls(context=t.tls_context())
                smtp.ehlo()
            if t.username:
                smtp.login(t.username, t.password or "")
        except BaseException:
            with suppress(Exception):
                smtp.close()
            raise
        self._smtp = smtp
        self.pipelining = smtp.has_extn("pipelining")
        self.last_used = time.monotonic()

    def close(self) -> None:
        """QUIT politely; a server already gone is not an error here."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            with suppress(Exception):
                smtp.quit()
            with suppress(Exception):
                smtp.close()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            with suppress(Exception):
                smtp.close()

    def healthy(self) -> bool:
        """NOOP round trip, used on a connection that sat idle."""
        if not self.connected:
            return False
        assert self._smtp is not None
        try:
            return self._smtp.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            self._drop()
            return False

    def transact(
        self, sender: str, recipients: Sequence[str], message: bytes
    ) -> dict[str, SendResult]:
        """Send ``message`` to ``recipients`` in one transaction; a result per recipient."""
        try:
            if not self.connected:
                self.open()
        except (smtplib.SMTPException, OSError) as e:
            self._drop()
            code = getattr(e, "smtp_code", 0)
            detail = f"cannot connect to {self.target.describe()}: {e}"
            failure = SendResult(
                Outcome.deferred, code if code >= 400 else 0, detail, systemic=True
            )
            return dict.fromkeys(recipients, failure)
        self.last_used = time.monotonic()
        return self._transaction(sender, recipients, message)

    def _envelope(self, sender: str, recipients: Sequence[str]) -> tuple[Reply, list[Reply], Reply]:
        """The replies to MAIL, each RCPT and DATA (code 0 for commands not sent).

        With PIPELINING the three commands go out in one write (RFC 2920); without it each waits
        for its reply, and DATA is not sent when no recipient was accepted. A non-ASCII address
        goes with SMTPUTF8 when the server offers it, and is refused (553) when it does not.
        """
        smtp = self._smtp
        assert smtp is not None
        skipped: Reply = (0, b"")
        if self.pipelining and all(_plain(a) for a in (sender, *recipients)):
            lines = [f"MAIL FROM:{_path(sender)}\r\n"]
            lines += [f"RCPT TO:{_path(r)}\r\n" for r in recipients]
            smtp.send("".join([*lines, "DATA\r\n"]))
            replies = [smtp.getreply()]
            for _ in recipients:
                if replies[-1][0] == 421:
                    break
                replies.append(smtp.getreply())
            data = smtp.getreply() if replies[-1][0] != 421 else skipped
            replies += [skipped] * (len(recipients) + 1 - len(replies))
            return replies[0], replies[1:], data
        utf8 = not all(a.isascii() for a in (sender, *recipients)) and smtp.has_extn("smtputf8")
        mail = smtp.mail(sender, ["SMTPUTF8"] if utf8 else [])
        if mail[0] != 250:
            return mail, [skipped] * len(recipients), skipped
        rcpts: list[Reply] = []
        for rcpt in recipients:
            try:
                rcpts.append(smtp.rcpt(rcpt) if not rcpts or rcpts[-1][0] != 421 else skipped)
            except UnicodeEncodeError:  # raised before anything was written
                rcpts.append((553, b"address is not ASCII and SMTPUTF8 is not used"))
        if not any(code in (250, 251) for code, _ in rcpts) or 421 in (c for c, _ in rcpts):
            return mail, rcpts, skipped
        return mail, rcpts, smtp.docmd("DATA")

    def _transaction(
        self, sender: str, recipients: Sequence[str], message: bytes
    ) -> dict[str, SendResult]:
        smtp = self._smtp
        assert smtp is not None
        results: dict[str, SendResult] = {}
        accepted: list[str] = []
        dot_sent = False
        try:
            (mail_code, mail_reply), rcpts, (data_code, data_reply) = self._envelope(
                sender, recipients
            )
            if mail_code != 250:
                # The sender was refused: a set-up problem, never the recipients' fault.
                refusal = classify(mail_code, mail_reply, systemic=True)
                self._end_data(data_code)
                self._after_refusal(mail_code)
                return dict.fromkeys(recipients, refusal)
            for rcpt, (code, reply) in zip(recipients, rcpts, strict=True):
                if code in (250, 251):
                    accepted.append(rcpt)
                elif code:
                    results[rcpt] = classify(code, reply)
            if 421 in (code for code, _ in rcpts) or data_code == 421:
                raise smtplib.SMTPServerDisconnected("421: the server is closing the connection")
            if not accepted or data_code != 354:
                self._end_data(data_code)
                final = classify(data_code, data_reply) if data_code else NO_DATA
                self._after_refusal(data_code)
            else:
                payload = data_payload(message)
                final_dot()  # journaled first: a kill from here on leaves the row unknown
                smtp.send(payload)
                dot_sent = True
                code, reply = smtp.getreply()
                final = classify(code, reply)
                if code == 421:
                    self._drop()
        except Exception as e:  # whatever broke, the final dot decides what may have happened
            self._drop()
            if dot_sent:
                final = SendResult(
                    Outcome.unknown, 0, f"connection lost after the final dot: {e}", systemic=True
                )
            else:
                final = SendResult(
                    Outcome.deferred, 0, f"connection lost before the end of data: {e}", True
                )
            for rcpt in recipients:
                results.setdefault(rcpt, final)
            return results
        for rcpt in accepted:
            results[rcpt] = final
        return results

    def _end_data(self, data_code: int) -> None:
        """Close a DATA the server opened although nobody was accepted: an empty body, refused."""
        if data_code == 354 and self._smtp is not None:
            self._smtp.send(b".\r\n")
            self._smtp.getreply()

    def _after_refusal(self, code: int) -> None:
        """Ready the session for the next MAIL (RSET), or drop it when the server is leaving."""
        if code == 421 or self._smtp is None:
            self._drop()
            return
        try:
            self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()


class SmtpPool:
    """At most ``size`` connections, opened on demand and reused across messages by any thread."""

    announces_final_dot = True  # calls journal.final_dot() just before each final dot

    def __init__(
        self,
        target: SmtpTarget,
        size: int,
        *,
        local_hostname: str | None = None,
        idle_check: float = 30.0,
    ) -> None:
        self.target = target
        self.size = size
        self.idle_check = idle_check
        self._idle: queue.LifoQueue[SmtpConnection] = queue.LifoQueue()
        self._all = [SmtpConnection(target, local_hostname=local_hostname) for _ in range(size)]
        for conn in self._all:
            self._idle.put(conn)
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[SmtpConnection]:
        """Borrow a connection (waiting while all are busy); an idle one is checked with NOOP."""
        conn = self._idle.get()
        try:
            if conn.connected and time.monotonic() - conn.last_used > self.idle_check:
                conn.healthy()
            yield conn
        finally:
            self._idle.put(conn)

    def send(self, sender: str, recipients: Sequence[str], message: bytes) -> dict[str, SendResult]:
        """One transaction on a pooled connection."""
        with self.connection() as conn:
            return conn.transact(sender, recipients, message)

    def close(self) -> None:
        """QUIT every open connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for conn in self._all:
            conn.close()

    def __enter__(self) -> SmtpPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
