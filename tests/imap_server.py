"""A small scripted IMAP4rev1 server on a real socket, for the bounce-mailbox tests.

It speaks just the commands imaplib sends for polling (CAPABILITY, LOGIN, SELECT, UID SEARCH,
UID FETCH, UID STORE, LOGOUT) with real literals and tagged replies, keeps \\Seen flags, and
records every command, so the poller is tested over the protocol rather than with a mock.
"""

from __future__ import annotations

import re
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_ARGS = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')


@dataclass
class Mailbox:
    """Messages by UID with their \\Seen flag, plus the account and the commands seen."""

    user: str = "bounces"
    password: str = 'pa ss"word'
    messages: dict[int, tuple[bytes, bool]] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, raw: bytes) -> int:
        with self.lock:
            uid = max(self.messages, default=0) + 1
            self.messages[uid] = (raw, False)
            return uid

    def seen(self) -> set[int]:
        with self.lock:
            return {uid for uid, (_, s) in self.messages.items() if s}


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def _send(self, line: str | bytes) -> None:
        self.wfile.write((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def handle(self) -> None:
        box = self.server.mailbox
        self._send("* OK [CAPABILITY IMAP4rev1] scripted IMAP ready")
        authed = False
        while line := self.rfile.readline():
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            box.commands.append(text)
            tag, _, rest = text.partition(" ")
            args = [a if a is not None and a != "" else b for a, b in _ARGS.findall(rest)]
            args = [re.sub(r"\\(.)", r"\1", a) for a in args]
            command = args[0].upper() if args else ""
            if command == "CAPABILITY":
                self._send("* CAPABILITY IMAP4rev1")
                self._send(f"{tag} OK CAPABILITY completed")
            elif command == "LOGIN":
                authed = args[1:3] == [box.user, box.password]
                self._send(f"{tag} OK LOGIN completed" if authed else f"{tag} NO bad login")
            elif not authed:
                self._send(f"{tag} BAD log in first")
            elif command == "SELECT":
                self._send(f"* {len(box.messages)} EXISTS")
                self._send("* FLAGS (\\Seen)")
                self._send(f"{tag} OK [READ-WRITE] SELECT completed")
            elif command == "UID" and len(args) > 1:
                self._uid(tag, args[1].upper(), args[2:])
            elif command == "LOGOUT":
                self._send("* BYE logging out")
                self._send(f"{tag} OK LOGOUT completed")
                return
            else:
                self._send(f"{tag} BAD unknown command")

    def _uid(self, tag: str, sub: str, args: list[str]) -> None:
        box = self.server.mailbox
        with box.lock:
            messages = dict(box.messages)
        if sub == "SEARCH":
            unseen = " ".join(str(u) for u, (_, seen) in sorted(messages.items()) if not seen)
            self._send(f"* SEARCH {unseen}".rstrip())
        elif sub == "FETCH" and args and args[0].isdigit() and int(args[0]) in messages:
            uid = int(args[0])
            raw = messages[uid][0]
            self._send(
                f"* {uid} FETCH (UID {uid} BODY[] {{{len(raw)}}}".encode() + b"\r\n" + raw + b")"
            )
        elif sub == "STORE" and args and args[0].isdigit() and int(args[0]) in box.messages:
            uid = int(args[0])
            with box.lock:
                box.messages[uid] = (box.messages[uid][0], True)
            self._send(f"* {uid} FETCH (UID {uid} FLAGS (\\Seen))")
        elif sub not in ("FETCH", "STORE"):
            self._send(f"{tag} BAD unknown UID command")
            return
        self._send(f"{tag} OK UID {sub} completed")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    mailbox: Mailbox


@contextmanager
def imap_server(mailbox: Mailbox) -> Iterator[int]:
    """Serve ``mailbox`` on 127.0.0.1; yields the port."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.mailbox = mailbox
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
