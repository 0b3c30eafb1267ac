"""Files only the service's own user may read (the signing key, the SQLite database), made 0600.

Each is created with its final mode by ``os.open`` (never chmod-ed afterwards, so no moment
exists when another user could open it), and an ``fchmod`` makes the mode exact whatever the
umask. The key is written to a private temporary file and linked into place, so a reader never
sees a half-written key and two processes starting at once agree on one key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

PRIVATE = 0o600


def create_private(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists; whether this call created it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, PRIVATE)
    finally:
        os.close(fd)
    return True


def read_or_create_secret(path: Path) -> str:
    """The key stored in ``path``, creating it (0600, written whole, then linked) the first time."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE)
        try:
            os.fchmod(fd, PRIVATE)
            os.write(fd, secrets.token_urlsafe(32).encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)  # fails if another process linked its key first: use that
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    return path.read_text().strip()
