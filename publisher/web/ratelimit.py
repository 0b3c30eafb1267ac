"""Rate limits for the subscribe form (per IP and per address): sliding-window counters.

Each key keeps two counts, the current fixed window's and the previous one's; the number of
hits in the sliding window ending now is estimated as ``previous * (share of the previous
window still inside it) + current`` (the approach of Cloudflare's limiter). That is three small
numbers per key instead of a timestamp per hit.

``SlidingWindow`` keeps them in memory, bounded: keys are hashed to 64-bit integers and the
counters packed into one, in flat arrays of at most ``max_keys`` keys (about 50 bytes a key);
a full table forgets the least recently hit key, so expired keys always go first.
``SharedWindow`` keeps them in the database (PostgreSQL: every web process counts together).
The clock is injected so tests move time instead of sleeping.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from array import array
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.engine import Engine

from publisher.store import ratelimits

_COUNT_BITS = 20
_COUNT_MAX = (1 << _COUNT_BITS) - 1
_MASK = _COUNT_MAX


class Limiter(Protocol):
    """Counts hits per key; ``hit`` answers 0 (go ahead) or the seconds to wait."""

    def hit(self, key: str) -> int: ...


def estimate(previous: int, current: int, elapsed: float, window: float) -> float:
    """Hits in the sliding window that ends ``elapsed`` seconds into the current fixed window."""
    return previous * (1.0 - elapsed / window) + current


def wait_seconds(previous: int, current: int, elapsed: float, *, limit: int, window: float) -> int:
    """Seconds until one more hit fits under ``limit`` (at least 1): Retry-After is honest."""
    room = limit - 1  # what the estimate may be for one more hit to fit
    if current > room:  # only after this window ends, and enough of it has slid out
        until = window - elapsed + window * (1.0 - room / current)
    else:  # once enough of the previous window has slid out
        until = window * (1.0 - (room - current) / previous) - elapsed
    return max(1, math.ceil(until))


def decide(previous: int, current: int, elapsed: float, *, limit: int, window: float) -> int:
    """0 when one more hit is allowed now, else the seconds to wait."""
    if estimate(previous, current, elapsed, window) + 1 <= limit + 1e-9:  # float rounding
        return 0
    return wait_seconds(previous, current, elapsed, limit=limit, window=window)


def key_hash(key: str) -> int:
    """A 64-bit digest of ``key``: small in memory, the same in every process."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


class SlidingWindow:
    """At most about ``limit`` hits per ``window`` seconds for each key, in bounded memory.

    An open-addressing table in four flat arrays (key hash, packed counters, and the links of
    a doubly linked list in order of last hit), at most half full and grown by doubling up to
    twice ``max_keys`` slots: 24 bytes a slot, about 50 bytes a key. When ``max_keys`` keys
    are held, a new key evicts the least recently hit one; keys expire in the order they were
    last hit, so while any expired key is held, the one evicted is expired.
    """

    def __init__(
        self,
        *,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if limit < 1 or window <= 0 or max_keys < 1:
            raise ValueError("a limit needs at least one hit per positive window and one key")
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._max_size = 1 << max(4, (2 * max_keys - 1).bit_length())
        self._lock = threading.Lock()
        self._allocate(16)

    def _allocate(self, size: int) -> None:
        self._size = size
        self._mask = size - 1
        self._keys = array("q", bytes(8 * size))  # 0: an empty slot
        self._counts = array("q", bytes(8 * size))  # window index, previous, current
        # The recency list; slot ``size`` is its head (next = oldest, prev = newest).
        self._next = array("i", [size]) * (size + 1)
        self._prev = array("i", [size]) * (size + 1)
        self._used = 0

    @property
    def held(self) -> int:
        """How many keys are counted now (at most ``max_keys``)."""
        return self._used

    def _find(self, digest: int) -> int:
        """The slot holding ``digest``, or the empty slot where it would go."""
        keys, mask = self._keys, self._mask
        i = digest & mask
        while keys[i] != 0 and keys[i] != digest:
            i = (i + 1) & mask
        return i

    def _unlink(self, i: int) -> None:
        nxt, prv = self._next, self._prev
        nxt[prv[i]] = nxt[i]
        prv[nxt[i]] = prv[i]

    def _append(self, i: int) -> None:
        """Make slot ``i`` the most recently hit."""
        head = self._size
        last = self._prev[head]
        self._next[last] = i
        self._prev[i] = last
        self._next[i] = head
        self._prev[head] = i

    def hit(self, key: str) -> int:
        """Count one hit for ``key``; 0 if allowed, else the seconds to wait (Retry-After)."""
        digest = key_hash(key) or 1
        with self._lock:
            now = self.clock()
            index = math.floor(now / self.window)
            elapsed = now - index * self.window
            i = self._find(digest)
            previous = current = 0
            if self._keys[i] == digest:
                packed = self._counts[i]
                seen = packed >> (2 * _COUNT_BITS)
                if seen == index:
                    previous, current = (packed >> _COUNT_BITS) & _MASK, packed & _MASK
                elif seen == index - 1:
                    previous = packed & _MASK
                self._unlink(i)
            else:
                i = self._make_room(digest)
            self._append(i)
            wait = decide(previous, current, elapsed, limit=self.limit, window=self.window)
            if not wait:
                current = min(current + 1, _COUNT_MAX)
            self._counts[i] = (index << 2 * _COUNT_BITS) | (previous << _COUNT_BITS) | current
            return wait

    def _make_room(self, digest: int) -> int:
        """Take a slot for a new key, evicting or growing first; its index (not yet linked)."""
        if self._used >= self.max_keys:
            oldest = self._next[self._size]
            self._unlink(oldest)
            self._delete(oldest)
        elif 2 * (self._used + 1) > self._size and self._size < self._max_size:
            self._grow()
        i = self._find(digest)
        self._keys[i] = digest
        self._used += 1
        return i

    def _delete(self, i: int) -> None:
        """Empty slot ``i`` (already unlinked), moving later keys of its cluster back."""
        keys, counts, nxt, prv, mask = self._keys, self._counts, self._next, self._prev, self._mask
        j = i
        while True:
            j = (j + 1) & mask
            if keys[j] == 0:
                break
            home = keys[j] & mask
            if (i < home <= j) if i <= j else (home > i or home <= j):
                continue  # its home lies between the hole and it: it stays
            keys[i], counts[i], nxt[i], prv[i] = keys[j], counts[j], nxt[j], prv[j]
            nxt[prv[i]] = i
            prv[nxt[i]] = i
            i = j
        keys[i] = counts[i] = 0
        self._used -= 1

    def _grow(self) -> None:
        order, slot = [], self._next[self._size]
        while slot != self._size:  # oldest first, so the new list keeps the order
            order.append((self._keys[slot], self._counts[slot]))
            slot = self._next[slot]
        self._allocate(self._size * 2)
        for digest, packed in order:
            i = self._find(digest)
            self._keys[i], self._counts[i] = digest, packed
            self._append(i)
            self._used += 1

    def reset(self) -> None:
        with self._lock:
            self._allocate(16)


class SharedWindow:
    """The same counters in the database, so every web process on it counts together."""

    def __init__(
        self,
        engine: Engine,
        *,
        scope: str,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a limit needs at least one hit per positive window")
        self.engine = engine
        self.scope = scope
        self.limit = limit
        self.window = window
        self.clock = clock  # wall time: every process must agree on the window boundaries
        self._purged = -1

    def wait(self, key: str) -> int:
        """0 when one more hit for ``key`` would be allowed now, else the seconds to wait.

        Counts nothing: the console's login counts only failures, but checks before each try.
        """
        now = self.clock()
        index = math.floor(now / self.window)
        elapsed = now - index * self.window
        with self.engine.begin() as conn:
            previous, current = ratelimits.counts(
                conn, scope=self.scope, key=key_hash(key), window=index
            )
        return decide(previous, current, elapsed, limit=self.limit, window=self.window)

    def hit(self, key: str) -> int:
        """Count one hit for ``key`` under a row lock; 0 if allowed, else the seconds to wait."""
        now = self.clock()
        index = math.floor(now / self.window)
        elapsed = now - index * self.window
        with self.engine.begin() as conn:
            previous, current = ratelimits.counts(
                conn, scope=self.scope, key=key_hash(key), window=index
            )
            wait = decide(previous, current, elapsed, limit=self.limit, window=self.window)
            if not wait:
                ratelimits.count_hit(
                    conn, scope=self.scope, key=key_hash(key), window=index, previous=previous
                )
            if self._purged != index:  # once per window per process: keys of the past go
                ratelimits.purge(conn, scope=self.scope, window=index)
                self._purged = index
        return wait
