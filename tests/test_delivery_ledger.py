"""The ledger's store functions on SQLite and PostgreSQL: enqueue, claim, record, recover."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from publisher.delivery import recovery
from publisher.delivery.ledger import Claim, RowUpdate
from publisher.models import Delivery, DeliveryState, SubscriberStatus
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.store import deliveries as ledger
from publisher.store.delivery_counts import counts as ledger_counts
from publisher.store.subscribers import erase
from tests.conftest import FixedClockRuntime
from tests.delivery_data import add_subscribers, plain_digest, rows, set_status, states, status_of

LEASE = timedelta(minutes=10)


def _queued(rt: Runtime, n: int = 10) -> tuple[int, list[int]]:
    subs = [i for i, _ in add_subscribers(rt, n)]
    digest_id = plain_digest(rt)
    with rt.session() as s:
        ledger.enqueue(s, digest_id=digest_id, subscriber_ids=subs, message_id=lambda i: f"<{i}@x>")
    return digest_id, subs


def _claim(
    rt: Runtime,
    worker: str = "w1",
    limit: int = 100,
    *,
    now: datetime | None = None,
    after_id: int = 0,
    digest_ids: list[int] | None = None,
) -> Claim:
    moment = now or rt.now()
    with rt.session() as s:
        return ledger.claim_batch(
            s, worker_id=worker, limit=limit, lease_until=moment + LEASE, now=moment,
            after_id=after_id, digest_ids=digest_ids,
        )  # fmt: skip


def _ids(claim: Claim) -> list[int]:
    return [r.row.id for r in claim.recipients]


def test_enqueue_is_idempotent(runtime: Runtime) -> None:
    digest_id, subs = _queued(runtime, 7)
    more = [i for i, _ in add_subscribers(runtime, 3, prefix="late")]
    with runtime.session() as s:
        added = ledger.enqueue(s, digest_id=digest_id, subscriber_ids=subs + more)
    assert added == 3
    table = rows(runtime)
    assert len(table) == 10 and states(runtime) == {"pending": 10}
    assert table[subs[0]].message_id == f"<{subs[0]}@x>"


def test_enqueue_many_counts_only_the_rows_it_added_per_digest(runtime: Runtime) -> None:
    subs = [i for i, _ in add_subscribers(runtime, 5)]
    first, second = plain_digest(runtime), plain_digest(runtime, week="2026-W49")

    def queued(digest_id: int, sid: int, week: str) -> ledger.Queued:
        return ledger.Queued(digest_id, sid, f"<{digest_id}.{sid}@x>", "en", week)

    with runtime.session() as s:
        got = ledger.enqueue_many(s, [queued(first, sid, "2026-W48") for sid in subs[:3]])
    assert got == {first: 3}
    again = [queued(first, sid, "2026-W48") for sid in subs]  # three exist, two are new
    again += [queued(second, sid, "2026-W49") for sid in subs[:2]]
    again.append(queued(second, subs[0], "2026-W49"))  # the same row twice in one call
    with runtime.session() as s:
        got = ledger.enqueue_many(s, again)
    assert got == {first: 2, second: 2}
    with runtime.session() as s:
        per_digest = dict(
            s.execute(
                sa.select(Delivery.digest_id, sa.func.count()).group_by(Delivery.digest_id)  # type: ignore[arg-type]
            ).all()
        )
    assert per_digest == {first: 5, second: 2}


def test_claim_pages_by_keyset_and_marks_sending(runtime: Runtime) -> None:
    _, subs = _queued(runtime, 10)
    first = _claim(runtime, limit=4)
    second = _claim(runtime, limit=4, after_id=first.last_id)
    assert _ids(first) == sorted(_ids(first)) and first.last_id == _ids(first)[-1]
    assert first.last_id < _ids(second)[0]
    recipient = first.recipients[0]
    assert recipient.email.endswith("@example.org") and recipient.key
    assert (recipient.row.attempts, recipient.row.first_attempt) == (1, runtime.now())
    assert recipient.row.message_id == f"<{subs[0]}@x>"
    # claimed rows are sending: nobody else takes them, even from the start of the table
    rest = _claim(runtime, "w2")
    assert set(_ids(rest)).isdisjoint(_ids(first) + _ids(second)) and len(_ids(rest)) == 2
    assert _claim(runtime, "w3").empty
    assert states(runtime) == {"sending": 10}
    assert {r.claimed_by for r in rows(runtime).values()} == {"w1", "w2"}


def test_only_due_deferred_rows_are_claimed(runtime: Runtime) -> None:
    digest_id, _ = _queued(runtime, 2)
    claim = _claim(runtime)
    later = runtime.now() + timedelta(minutes=5)
    with runtime.session() as s:
        updates = [RowUpdate(i, DeliveryState.deferred, "451 later", later) for i in _ids(claim)]
        ledger.record(s, worker_id="w1", now=runtime.now(), updates=updates)
    assert _claim(runtime, "w2").empty
    assert _claim(runtime, "w2", now=later - timedelta(seconds=1)).empty
    assert _claim(runtime, "w3", now=later, digest_ids=[digest_id + 1]).empty
    again = _claim(runtime, "w2", now=later)
    assert [r.row.attempts for r in again.recipients] == [2, 2]
    assert {r.row.first_attempt for r in again.recipients} == {runtime.now()}


def test_claim_rechecks_subscribers(runtime: Runtime) -> None:
    _, subs = _queued(runtime, 5)
    set_status(runtime, subs[1], SubscriberStatus.unsubscribed)
    set_status(runtime, subs[2], SubscriberStatus.bounced)
    with runtime.session() as s:
        assert erase(s, email="reader00004@example.org", now=runtime.now())
    claim = _claim(runtime)
    assert [r.row.subscriber_id for r in claim.recipients] == [subs[0], subs[3]]
    assert len(claim.skipped) == 3 and claim.last_id == max(_ids(claim) + claim.skipped)
    assert "erased" in rows(runtime)[-subs[4]].last_error  # erase detaches the row
    table = rows(runtime)
    assert table[subs[1]].state == "skipped" and "unsubscribed" in table[subs[1]].last_error
    assert table[subs[2]].state == "skipped" and "bounced" in table[subs[2]].last_error
    assert (table[subs[1]].attempts, table[subs[1]].first_attempt) == (0, None)
    assert table[subs[0]].state == "sending"


def test_record_writes_outcomes_and_bounces(runtime: Runtime) -> None:
    _, subs = _queued(runtime, 4)
    ids = _ids(_claim(runtime))
    updates = [
        RowUpdate(ids[0], DeliveryState.sent),
        RowUpdate(ids[1], DeliveryState.sent),
        RowUpdate(ids[2], DeliveryState.failed, "550 5.1.1 unknown user"),
        RowUpdate(ids[3], DeliveryState.unknown, "connection lost after the final dot"),
    ]
    with runtime.session() as s:
        assert ledger.record(s, worker_id="other", updates=updates, now=runtime.now()) == 0
        written = ledger.record(
            s, worker_id="w1", updates=updates, now=runtime.now(), bounced=[subs[2]]
        )
    assert written == 4
    table = rows(runtime)
    assert table[subs[0]].state == "sent" and table[subs[0]].sent_at == runtime.now()
    assert table[subs[2]].last_error == "550 5.1.1 unknown user"
    assert status_of(runtime, subs[2]) == "bounced"
    assert status_of(runtime, subs[0]) == "active"
    assert states(runtime) == {"sent": 2, "failed": 1, "unknown": 1}


def test_release_puts_rows_back_as_they_were(runtime: Runtime) -> None:
    _, subs = _queued(runtime, 4)
    first = _claim(runtime)
    later = runtime.now() + timedelta(minutes=5)
    with runtime.session() as s:
        deferred = [RowUpdate(i, DeliveryState.deferred, "451", later) for i in _ids(first)[:2]]
        ledger.record(s, worker_id="w1", updates=deferred, now=runtime.now())
        ledger.release(s, worker_id="w1", ids=_ids(first)[2:])
    again = _claim(runtime, "w2", now=later)  # the two deferred (second attempt) + the released
    with runtime.session() as s:
        assert ledger.release(s, worker_id="w1", ids=_ids(again)) == 0  # not w1's any more
        assert ledger.release(s, worker_id="w2", ids=_ids(again)) == 4
    table = rows(runtime)
    assert [table[i].state for i in subs] == ["deferred"] * 2 + ["pending"] * 2
    assert [table[i].attempts for i in subs] == [1, 1, 0, 0]
    assert table[subs[0]].first_attempt == runtime.now() and table[subs[2]].first_attempt is None
    assert {table[i].claimed_by for i in subs} == {None}


def test_recover_makes_rows_of_dead_workers_unknown(runtime: Runtime) -> None:
    digest_id, subs = _queued(runtime, 6)
    _claim(runtime, "dead", limit=2)
    _claim(runtime, "alive", limit=2, after_id=subs[1])
    with runtime.session() as s:
        assert ledger.recover(s, now=runtime.now()) == 0  # leases still run
        assert ledger.recover(s, now=runtime.now(), dead_workers=["dead"]) == 2
    table = rows(runtime)
    assert [table[i].state for i in subs] == ["unknown"] * 2 + ["sending"] * 2 + ["pending"] * 2
    assert "may or may not" in table[subs[0]].last_error
    # an expired lease counts as dead too
    with runtime.session() as s:
        assert ledger.recover(s, now=runtime.now() + LEASE * 2) == 2
        assert ledger_counts(s) == {digest_id: {"unknown": 4, "pending": 2}}
        assert ledger.resend_unknown(s, digest_ids=[digest_id]) == 4
    assert states(runtime) == {"pending": 6}


def test_renew_keeps_a_slow_workers_rows(runtime: Runtime) -> None:
    _queued(runtime, 2)
    ids = _ids(_claim(runtime))
    with runtime.session() as s:
        assert ledger.renew(s, worker_id="w2", ids=ids, lease_until=runtime.now()) == 0
        assert ledger.renew(s, worker_id="w1", ids=ids, lease_until=runtime.now() + LEASE * 3) == 2
        assert ledger.recover(s, now=runtime.now() + LEASE * 2) == 0


def test_dead_local_workers_are_found_by_pid(runtime: Runtime) -> None:
    _queued(runtime, 2)
    child = subprocess.Popen(["true"])
    child.wait()
    host = recovery.worker_identity().split(":")[0]
    dead, alive = f"{host}:{child.pid}:abcd", recovery.worker_identity()
    first = _claim(runtime, dead, limit=1)
    _claim(runtime, alive, limit=1, after_id=first.last_id)
    with runtime.session() as s:
        assert recovery.dead_local_workers(s, now=runtime.now()) == [dead]
    assert not recovery.is_dead_here(f"elsewhere:{child.pid}:abcd")
    assert not recovery.is_dead_here("junk")


@pytest.mark.postgres
def test_concurrent_claims_on_postgres_skip_locked_rows(
    pg_url: str, make_settings: Callable[..., Settings]
) -> None:
    rt = FixedClockRuntime(make_settings(database_url=pg_url))
    rt.migrate()
    _queued(rt, 20)
    now = rt.now()
    with Session(bind=rt.engine) as session_a, Session(bind=rt.engine) as session_b:
        session_b.execute(sa.text("SET lock_timeout = '2s'"))  # blocking would fail, not hang
        first = ledger.claim_batch(
            session_a, worker_id="a", limit=12, lease_until=now + LEASE, now=now
        )
        # a's transaction is still open and holds its rows; b must skip them, not wait
        second = ledger.claim_batch(
            session_b, worker_id="b", limit=12, lease_until=now + LEASE, now=now
        )
        session_b.commit()
        session_a.commit()
    assert len(first.recipients) == 12 and len(second.recipients) == 8
    assert set(_ids(first)).isdisjoint(_ids(second))
    assert {d.claimed_by for d in rows(rt).values()} == {"a", "b"}
    rt.close()


def test_claims_across_many_digests_walk_the_primary_key(runtime: Runtime) -> None:
    """A send of many region sets claims rows of thousands of digests. On SQLite the claim must
    walk the primary key from the keyset position, not sort every waiting row per claim
    (quadratic in the size of the send); every row is still claimed exactly once, in order."""
    subs = [i for i, _ in add_subscribers(runtime, 12)]
    digests = [plain_digest(runtime, week=f"2026-W{n:02d}") for n in range(40, 44)]
    with runtime.session() as s:
        for n, digest_id in enumerate(digests):
            part = subs[n * 3 : n * 3 + 3]
            ledger.enqueue(s, digest_id=digest_id, subscriber_ids=part,
                           message_id=lambda i, d=digest_id: f"<{d}.{i}@x>")  # fmt: skip
    seen: list[str] = []

    def remember(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE DELIVERIES"):
            seen.append(statement)

    sa.event.listen(runtime.engine, "before_cursor_execute", remember)
    try:
        taken = [_ids(_claim(runtime, limit=5, digest_ids=digests[:3], after_id=after))
                 for after in (0,)]  # fmt: skip
        after = taken[0][-1]
        while claim := _ids(_claim(runtime, limit=5, digest_ids=digests[:3], after_id=after)):
            taken.append(claim)
            after = claim[-1]
    finally:
        sa.event.remove(runtime.engine, "before_cursor_execute", remember)
    flat = [i for part in taken for i in part]
    with runtime.session() as s:
        expected = list(s.execute(
            sa.select(ledger.T.c.id).where(ledger.T.c.digest_id.in_(digests[:3]))
            .order_by(ledger.T.c.id)
        ).scalars())  # fmt: skip
    assert flat == expected and len(flat) == 9
    if runtime.engine.dialect.name == "sqlite":
        with runtime.engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            sql = seen[0].split(" IN (", 1)[1].rsplit(")", 1)[0]  # the picking subquery
            params = (0,) * sql.count("?")
            plan = " ".join(str(row) for row in raw.execute("EXPLAIN QUERY PLAN " + sql, params))
        assert "PRIMARY KEY" in plan and "TEMP B-TREE" not in plan, plan
