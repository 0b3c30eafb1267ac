"""The sender's journal: each message's final dot and reply, so a killed sender leaves little doubt.

Every sending process appends to its own folder under VAR_DIR/journal/ two records per message:
``D`` just before the final dot goes out, ``R`` with the outcome once the reply (or its absence)
is known. After a SIGKILL the ledger still says ``sending`` for the rows the process held;
recovery reads its journal and settles each row by what really happened (``settle``): a reply
gives its outcome, a final dot without a reply is ``unknown`` (at most one per connection), and
a row with neither goes back to pending, since nothing of it reached the server.

Durability: each record is one ``os.write`` on an O_APPEND descriptor, never fsynced. Written
data outlives the process at once (SIGKILL, OOM, a crash), which is what the journal is for,
and costs a few microseconds per message; an fsync would cost a disk flush per message. A power
cut or kernel crash may lose the unsynced tail, so a journal written before the machine's last
boot is trusted for its replies only: its rows without a reply become ``unknown``, today's rule.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

from publisher.delivery.outcome import Outcome, SendResult

log = logging.getLogger(__name__)

LOCK = "lock"
SEGMENT_BYTES = 1 << 20  # a new file once this much is written; settled files are deleted
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
# (journal, row id, attempt) of the message the current sending thread is handing to SMTP
_sending: ContextVar[tuple[Journal, int, int] | None] = ContextVar("journal_sending", default=None)


def boot_id() -> str:
    """This boot of the machine ('' where the system does not say): a reboot may lose a tail."""
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return ""


def journal_dir(var_dir: Path) -> Path:
    """Where the journals of every sender of this installation live."""
    return var_dir / "journal"


def folder_of(root: Path, worker_id: str) -> Path:
    """A worker's own folder; its name is the worker id, reversibly quoted (never . or ..)."""
    if not worker_id:
        raise ValueError("a journal needs a worker id")
    return root / quote(worker_id, safe="").replace(".", "%2E")


def worker_of(folder: Path) -> str:
    return unquote(folder.name)


def final_dot() -> None:
    """Called by the SMTP client just before a message's final dot goes out."""
    entry = _sending.get()
    if entry is not None:
        journal, row_id, attempt = entry
        journal.end_of_data(row_id, attempt)


def _line(*fields: object) -> bytes:
    return ("\t".join(str(f) for f in fields) + "\n").encode("utf-8", "replace")


def _clean(detail: str) -> str:
    """A reply's text on one line, without tabs (the record's separator)."""
    return " ".join(detail.split())[:300]


@dataclass(slots=True)
class _Segment:
    path: Path
    fd: int
    held: frozenset[int] | None = None  # rows in flight when it stopped growing


class Journal:
    """One sending process's append-only journal; its methods are safe from any thread."""

    def __init__(self, root: Path, worker_id: str, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.folder = folder_of(root, worker_id)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        # held while this process lives; the kernel drops it at any death, even SIGKILL
        self._lock = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock)
            raise
        self.segment_bytes = segment_bytes
        self._run = secrets.token_hex(4)
        self._seq = 0
        self._boot = boot_id()
        self._old: list[_Segment] = []
        self._current = self._open()
        self._closed = False

    def _open(self) -> _Segment:
        self._seq += 1
        path = self.folder / f"{self._run}-{self._seq:06d}.journal"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        os.write(fd, _line("J", 1, self._boot))
        return _Segment(path, fd)

    @contextmanager
    def sending(self, row_id: int, attempt: int) -> Iterator[None]:
        """While this thread hands the row's message to SMTP, ``final_dot`` journals it."""
        token = _sending.set((self, row_id, attempt))
        try:
            yield
        finally:
            _sending.reset(token)

    def end_of_data(self, row_id: int, attempt: int) -> None:
        os.write(self._current.fd, b"D\t%d\t%d\n" % (row_id, attempt))

    def reply(self, row_id: int, attempt: int, result: SendResult) -> None:
        r = result
        fields = (r.outcome.value, r.code, int(r.systemic), _clean(r.detail))
        os.write(self._current.fd, _line("R", row_id, attempt, *fields))

    def rotate(self, held: Collection[int]) -> None:
        """Called with the rows still in flight after outcomes were recorded: start a new file
        once the current one is large, and delete the old ones whose rows are all recorded."""
        if os.fstat(self._current.fd).st_size >= self.segment_bytes:
            self._current.held = frozenset(held)
            self._old.append(self._current)
            self._current = self._open()
        keep: list[_Segment] = []
        for seg in self._old:
            if seg.held is not None and seg.held.isdisjoint(held):
                os.close(seg.fd)
                seg.path.unlink(missing_ok=True)
            else:
                keep.append(seg)
        self._old = keep

    def close(self, *, settled: bool) -> None:
        """Close the files; delete them when every row is recorded, else keep them for recovery.
        Only the first call counts (the engine's run closes it; its builder again, in case)."""
        if self._closed:
            return
        self._closed = True
        for seg in [*self._old, self._current]:
            os.close(seg.fd)
            if settled:
                seg.path.unlink(missing_ok=True)
        if settled and not any(self.folder.glob("*.journal")):
            (self.folder / LOCK).unlink(missing_ok=True)
            with suppress(OSError):
                self.folder.rmdir()
        os.close(self._lock)


def open_journal(root: Path, worker_id: str) -> Journal | None:
    """The journal of a sender, or None (logged) where it cannot be written: the run goes on,
    and a crash then leaves its rows ``unknown`` as without a journal."""
    try:
        return Journal(root, worker_id)
    except OSError as e:
        log.warning("no delivery journal in %s (%s): a crash leaves its rows unknown", root, e)
        return None


UNANSWERED = SendResult(
    Outcome.unknown, 0, "the final dot went out and no reply came before the sender stopped", True
)
UNTRUSTED = SendResult(
    Outcome.unknown,
    0,
    "the sender stopped and the machine restarted since: its journal may "
    "have lost its end, so the server may or may not have the message",
    True,
)


@dataclass(slots=True)
class Replay:
    """What a dead sender's journal says, per (row id, attempt)."""

    end_of_data: set[tuple[int, int]] = field(default_factory=set)
    replies: dict[tuple[int, int], SendResult] = field(default_factory=dict)
    same_boot: bool = True  # every file was written since the machine's last boot
    ignored: int = 0  # lines that are not records (a torn last line, damage)

    def settle(self, row_id: int, attempt: int) -> SendResult | None:
        """The row's outcome, or None when its message provably never reached the server."""
        key = (row_id, attempt)
        if key in self.replies:
            return self.replies[key]
        if key in self.end_of_data or not self.same_boot:
            return UNANSWERED if self.same_boot else UNTRUSTED
        return None

    def take(self, line: bytes, boot: str) -> None:
        f = line.decode("utf-8", "replace").split("\t")
        try:
            if f[0] == "J" and len(f) == 3:
                self.same_boot = self.same_boot and bool(boot) and f[2] == boot
            elif f[0] == "D" and len(f) == 3:
                self.end_of_data.add((int(f[1]), int(f[2])))
            elif f[0] == "R" and len(f) == 7 and f[5] in ("0", "1"):
                result = SendResult(Outcome(f[3]), int(f[4]), f[6], f[5] == "1")
                self.replies[(int(f[1]), int(f[2]))] = result
            else:
                self.ignored += 1
        except ValueError:
            self.ignored += 1


def read(folder: Path) -> Replay:
    """Every record of a sender's journal files; a file without its header is not trusted."""
    replay, boot = Replay(), boot_id()
    for path in sorted(folder.glob("*.journal")):
        data = path.read_bytes()
        if not data:
            continue
        if not data.startswith(b"J\t"):
            replay.same_boot = False
        *lines, torn = data.split(b"\n")
        replay.ignored += bool(torn)
        for line in lines:
            replay.take(line, boot)
    return replay


def in_use(folder: Path) -> bool:
    """Whether a live process still writes the journal in ``folder`` (it holds the lock)."""
    try:
        fd = os.open(folder / LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return False  # a writer locks before its first record
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def folders(root: Path) -> Iterator[Path]:
    """The journal folders under ``root`` (real directories only, never a symlink)."""
    if not root.is_dir():
        return
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            yield entry


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
