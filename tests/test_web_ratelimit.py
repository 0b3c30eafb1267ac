"""The subscribe limiters: bounded memory, an honest Retry-After, LRU eviction with expired keys
first, and (SharedWindow) one count across processes through the database."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.runtime import Runtime
from publisher.store import ratelimits
from publisher.web.ratelimit import SharedWindow, SlidingWindow
from tests.web_support import FakeClock

BYTES_PER_KEY = 100  # the bound: 100,000 keys in at most 10 MB


def test_memory_is_bounded_by_the_key_count() -> None:
    keys = 100_000
    clock = FakeClock()
    limiter = SlidingWindow(limit=10, window=600, clock=clock, max_keys=keys)
    names = [f"198.51.{i // 256}.{i % 256}/{i}" for i in range(keys + keys // 10)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for name in names[:keys]:
            limiter.hit(name)
        full = tracemalloc.get_traced_memory()[0] - before
        for name in names[keys:]:  # more keys: the table stays at its cap
            limiter.hit(name)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert limiter.held == keys
    assert full <= BYTES_PER_KEY * keys, f"{full / keys:.0f} bytes per key"
    assert after <= BYTES_PER_KEY * keys, f"{after / keys:.0f} bytes per key after churn"


def test_a_full_table_forgets_expired_keys_before_live_ones() -> None:
    clock = FakeClock()
    limiter = SlidingWindow(limit=2, window=60, clock=clock, max_keys=100)
    for i in range(60):
        limiter.hit(f"old-{i}")
    clock.advance(200)  # the old keys' windows have ended
    for _ in range(2):
        limiter.hit("live")
    for i in range(39):
        limiter.hit(f"new-{i}")
    assert limiter.held == 100
    for i in range(60):  # 60 newcomers push out exactly the 60 expired keys
        limiter.hit(f"newer-{i}")
    assert limiter.held == 100
    assert limiter.hit("live") > 0  # still counted: it was not evicted
    assert limiter.hit("old-0") == 0  # forgotten, and nothing was lost by it


def test_a_client_that_keeps_trying_stays_limited_under_a_flood_of_keys() -> None:
    clock = FakeClock()
    limiter = SlidingWindow(limit=3, window=600, clock=clock, max_keys=1000)
    for _ in range(3):
        assert limiter.hit("attacker") == 0
    for round_ in range(20):
        for i in range(900):
            limiter.hit(f"flood-{round_}-{i}")
        assert limiter.hit("attacker") > 0, round_
        clock.advance(1)


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 6),
    gaps=st.lists(st.floats(0, 50, allow_nan=False), min_size=1, max_size=80),
)
def test_limits_hold_and_retry_after_is_honest(limit: int, gaps: list[float]) -> None:
    window = 60.0
    clock = FakeClock()
    limiter = SlidingWindow(limit=limit, window=window, clock=clock)
    allowed: list[float] = []
    for gap in gaps:
        clock.advance(gap)
        wait = limiter.hit("k")
        if wait == 0:
            allowed.append(clock.now)
        else:
            assert 1 <= wait <= 2 * window
            probe = SlidingWindow(limit=limit, window=window, clock=clock)
            probe.hit("other")  # a table of the same size, then the same contents
            probe._keys, probe._counts = limiter._keys[:], limiter._counts[:]
            probe._next, probe._prev = limiter._next[:], limiter._prev[:]
            probe._used = limiter._used
            clock.advance(wait)
            assert probe.hit("k") == 0, "Retry-After said the next hit would fit"
            clock.advance(-wait)
    for start in allowed:  # at most the limit in a fixed window, twice it in a sliding one
        fixed = start // window
        assert sum(1 for t in allowed if t // window == fixed) <= limit
        assert sum(1 for t in allowed if start <= t < start + window) <= 2 * limit


def test_hits_spread_below_the_rate_are_never_refused() -> None:
    clock = FakeClock()
    limiter = SlidingWindow(limit=10, window=600, clock=clock)
    for _ in range(500):
        assert limiter.hit("steady") == 0
        clock.advance(100)  # 6 per 600 s: well under the limit of 10


# -- SharedWindow: the counters in the database ------------------------------------------------
@pytest.fixture
def shared(runtime: Runtime) -> Iterator[tuple[SharedWindow, SharedWindow, FakeClock]]:
    """Two limiters over one database, as two web processes would have."""
    clock = FakeClock()
    clock.now = 1_800_000_000.0
    other = Runtime(runtime.settings)
    try:
        yield (
            SharedWindow(runtime.engine, scope="ip", limit=3, window=600, clock=clock),
            SharedWindow(other.engine, scope="ip", limit=3, window=600, clock=clock),
            clock,
        )
    finally:
        other.close()


def test_processes_share_one_count(
    shared: tuple[SharedWindow, SharedWindow, FakeClock], runtime: Runtime
) -> None:
    one, two, clock = shared
    assert [one.hit("a"), two.hit("a"), one.hit("a")] == [0, 0, 0]
    assert two.hit("a") > 0 and one.hit("a") > 0
    assert two.hit("b") == 0  # another key counts on its own
    wait = two.hit("a")
    clock.advance(wait)
    assert one.hit("a") == 0  # Retry-After was honest across processes
    clock.advance(3 * 600)
    assert two.hit("c") == 0  # a new window: the purge forgets keys two windows old
    with runtime.engine.connect() as conn:
        assert ratelimits.keys(conn, scope="ip") == 1
        stored = conn.execute(sa.text("SELECT key FROM rate_limits")).scalars().all()
    assert all(isinstance(k, int) for k in stored)  # hashes, never addresses


def test_the_shared_limiter_counts_concurrent_hits_once_each(
    shared: tuple[SharedWindow, SharedWindow, FakeClock], runtime: Runtime
) -> None:
    import threading

    one, two, _ = shared
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("row locks across processes: PostgreSQL")
    answers: list[int] = []
    go = threading.Barrier(8)

    def hit(limiter: SharedWindow) -> None:
        go.wait()
        answers.append(limiter.hit("crowd"))

    threads = [threading.Thread(target=hit, args=((one, two)[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers.count(0) == 3 and all(a > 0 for a in answers if a)
