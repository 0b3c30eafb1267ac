"""The cached counts (trigger-kept tallies on PostgreSQL) always equal a live count of the tables.

Every change the service makes to subscribers, their regions and the ledger goes through here:
signups, confirmations, region changes, unsubscribes, bounces, erasure, enqueue, claim, outcomes,
recovery and deletes; after each, and after a fold, the counts the dashboard reads are compared
with GROUP BY queries over the tables themselves, on SQLite (live either way) and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from publisher.db import alembic_config, make_engine
from publisher.delivery.ledger import RowUpdate
from publisher.errors import SuppressedError
from publisher.models import DeliveryState, FollowerTally, LedgerTally, SubscriberStatus
from publisher.runtime import Runtime
from publisher.store import deliveries as ledger
from publisher.store import delivery_counts, tallies
from publisher.store import subscribers as store
from publisher.store.dashboard import readers_per_zone
from tests.conftest import FIXED_NOW
from tests.delivery_data import add_subscribers, plain_digest

LEASE = timedelta(minutes=10)


def assert_counts_match(session: Session) -> None:
    assert store.counts(session) == store.counts(session, live=True)
    assert readers_per_zone(session) == readers_per_zone(session, live=True)
    assert store.status_counts(session) == store.status_counts(session, live=True)
    assert delivery_counts.counts(session) == delivery_counts.counts(session, live=True)
    assert delivery_counts.per_state(session) == delivery_counts.per_state(session, live=True)
    week_ago = FIXED_NOW - timedelta(days=7)
    assert sorted(delivery_counts.per_region_state(session, since=week_ago)) == sorted(
        delivery_counts.per_region_state(session, since=week_ago, live=True)
    )


def check(rt: Runtime) -> None:
    with rt.session() as session:
        assert_counts_match(session)


def _send_round(rt: Runtime, outcome: DeliveryState) -> None:
    now = rt.now()
    with rt.session() as s:
        claim = ledger.claim_batch(s, worker_id="w1", limit=3, lease_until=now + LEASE, now=now)
    updates = [RowUpdate(id=r.row.id, state=outcome) for r in claim.recipients]
    bounced = [r.row.subscriber_id for r in claim.recipients] if outcome == "failed" else []
    with rt.session() as s:
        ledger.record(s, worker_id="w1", updates=updates, now=now, bounced=bounced)


def test_counts_follow_every_change(runtime: Runtime) -> None:
    rt = runtime
    now = rt.now()
    readers = add_subscribers(rt, 12)  # active, central-america
    check(rt)
    with rt.session() as s:
        pending, _ = store.add_or_update(s, email="new@example.org", regions=["gt", "sv"], now=now)
        assert pending.id is not None
        store.set_regions(s, subscriber_id=pending.id, regions=["gt", "hn"])
    check(rt)
    with rt.session() as s:
        store.set_status(s, subscriber_id=pending.id, status=SubscriberStatus.active, now=now)
        store.set_status(s, subscriber_id=readers[0][0], status="unsubscribed", now=now)
    check(rt)
    with rt.session() as s:  # readers choose zones (the dashboard's next send per zone)
        s.execute(
            sa.text("UPDATE subscribers SET timezone = 'America/Guatemala' WHERE id <= :i"),
            {"i": readers[3][0]},
        )
        # three of those four (the first one left) and, by default, the reader of gt and hn
        assert readers_per_zone(s)["America/Guatemala"] == 4
    check(rt)
    digest_id = plain_digest(rt)
    with rt.session() as s:
        ledger.enqueue(
            s, digest_id=digest_id, subscriber_ids=[i for i, _ in readers] + [pending.id]
        )
    check(rt)
    _send_round(rt, DeliveryState.sent)
    check(rt)
    _send_round(rt, DeliveryState.failed)  # hard bounce: subscribers become bounced
    check(rt)
    _send_round(rt, DeliveryState.deferred)
    check(rt)
    with rt.session() as s:  # a crash mid-send: recovery marks the claimed rows
        ledger.claim_batch(s, worker_id="w2", limit=2, lease_until=now - LEASE, now=now)
    with rt.session() as s:
        ledger.recover(s, now=now + LEASE)
    check(rt)
    with rt.session() as s:  # erasure: regions cascade away, ledger rows stay detached
        assert store.erase(s, email=readers[5][1], now=now)
        assert store.erase(s, email="new@example.org", now=now)
    check(rt)
    with rt.session() as s:
        s.execute(sa.text("DELETE FROM deliveries WHERE state = 'sent'"))
        s.execute(sa.text("DELETE FROM subscribers WHERE id = :i"), {"i": readers[7][0]})
    check(rt)
    with rt.session() as s:
        tallies.fold(s)
    check(rt)


@pytest.mark.postgres
def test_postgres_keeps_tallies_and_fold_merges_them(runtime: Runtime) -> None:
    rt = runtime
    if rt.engine.dialect.name != "postgresql":
        pytest.skip("tallies are kept on PostgreSQL; SQLite counts live")
    readers = add_subscribers(rt, 30)
    for i, _ in readers[:10]:
        with rt.session() as s:
            store.set_status(s, subscriber_id=i, status="unsubscribed", now=rt.now())
    with rt.session() as s:
        raw = s.execute(sa.select(sa.func.count()).select_from(FollowerTally)).scalar_one()
        assert raw > 2  # one row per statement and key
        tallies.fold(s)
    with rt.session() as s:
        rows = s.execute(sa.select(sa.func.count()).select_from(FollowerTally)).scalar_one()
        assert rows == 4  # (everyone | central-america) x (active | unsubscribed)
        assert store.counts(s) == {"central-america": {"active": 20, "unsubscribed": 10}}
        assert_counts_match(s)
        s.execute(sa.text("TRUNCATE subscribers CASCADE"))
        assert store.counts(s) == {} and store.status_counts(s) == {}
        assert s.execute(sa.select(sa.func.count()).select_from(LedgerTally)).scalar_one() == 0


OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["add", "regions", "status", "zone", "enqueue", "send", "fail", "erase", "fold"]
        ),
        st.integers(min_value=0, max_value=7),
    ),
    min_size=1,
    max_size=12,
)
REGION_SETS = (["gt"], ["gt", "sv"], ["central-america"], ["hn", "sv", "americas"], [])


@pytest.mark.postgres
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_any_interleaving_keeps_counts_exact(runtime: Runtime, ops: list[tuple[str, int]]) -> None:
    """Property: whatever sequence of changes, the cached counts equal the live ones."""
    rt = runtime
    if rt.engine.dialect.name != "postgresql":
        pytest.skip("tallies are kept on PostgreSQL; SQLite counts live")
    now = rt.now()
    with rt.session() as s:
        s.execute(sa.text("DELETE FROM deliveries"))
        s.execute(sa.text("DELETE FROM digests"))
        s.execute(sa.text("DELETE FROM subscribers"))
        s.execute(sa.text("DELETE FROM suppressions"))
    digest_id = plain_digest(rt)
    for op, k in ops:
        with rt.session() as s:
            ids = [int(i) for (i,) in s.execute(sa.text("SELECT id FROM subscribers ORDER BY id"))]
            target = ids[k % len(ids)] if ids else None
            if op == "add":
                with contextlib.suppress(SuppressedError):  # an erased address: refused, no change
                    store.add_or_update(
                        s, email=f"r{k}-{len(ids)}@example.org", regions=REGION_SETS[k % 5],
                        status=("active", "pending")[k % 2], now=now,
                    )  # fmt: skip
            elif op == "regions" and target is not None:
                store.set_regions(s, subscriber_id=target, regions=REGION_SETS[(k + 1) % 5])
            elif op == "status" and target is not None:
                status = ("active", "pending", "unsubscribed", "bounced")[k % 4]
                store.set_status(s, subscriber_id=target, status=status, now=now)
            elif op == "zone" and target is not None:
                zone = (None, "America/Guatemala", "Europe/Madrid")[k % 3]
                s.execute(
                    sa.text("UPDATE subscribers SET timezone = :z WHERE id = :i"),
                    {"z": zone, "i": target},
                )
            elif op == "enqueue" and ids:
                ledger.enqueue(s, digest_id=digest_id, subscriber_ids=ids[: k + 1])
            elif op == "erase" and target is not None:
                email = s.execute(
                    sa.text("SELECT email FROM subscribers WHERE id = :i"), {"i": target}
                ).scalar_one()
                store.erase(s, email=email, now=now)
            elif op == "fold":
                tallies.fold(s)
        if op in ("send", "fail"):
            _send_round(rt, DeliveryState.sent if op == "send" else DeliveryState.failed)
        check(rt)


def test_migration_seeds_counts_and_goes_both_ways(database_url: str) -> None:
    """0018 on a store with data: the tallies start equal to the live counts; down and up again."""
    engine = make_engine(database_url)
    try:
        config = alembic_config(engine)
        before = ScriptDirectory.from_config(config).get_revision("0018").down_revision
        assert isinstance(before, str)
        command.upgrade(config, before)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO regions (slug, m49, level, name_en, name_es)"
                    " VALUES ('gt', '320', 'country', 'Guatemala', 'Guatemala')"
                )
            )
            for i, status in enumerate(["active", "active", "pending", "bounced"]):
                conn.execute(
                    sa.text(
                        "INSERT INTO subscribers (id, email, key, status, locale, created)"
                        " VALUES (:i, :e, :k, :s, 'en', :c)"
                    ),
                    {"i": i + 1, "e": f"m{i}@example.org", "k": f"k{i}", "s": status,
                     "c": FIXED_NOW.replace(tzinfo=None)},
                )  # fmt: skip
                conn.execute(
                    sa.text("INSERT INTO subscriptions (subscriber_id, region) VALUES (:i, 'gt')"),
                    {"i": i + 1},
                )
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO digests (id, region, week, status, window_start, window_end,"
                    " item_ids, subject, html, text, created, locale)"
                    " VALUES (7, 'gt', '2026-W47', 'assembled', :t, :t, '', 's', '', '', :t, 'en')"
                ),
                {"t": FIXED_NOW.replace(tzinfo=None)},
            )
            digest_id = 7
            for i, state in enumerate(["sent", "sent", "failed"]):
                conn.execute(
                    sa.text(
                        "INSERT INTO deliveries (digest_id, subscriber_id, state, attempts,"
                        " last_error, message_id, locale) VALUES (:d, :s, :st, 1, '', '', 'en')"
                    ),
                    {"d": digest_id, "s": i + 1, "st": state},
                )
        command.upgrade(config, "0018")
        with Session(engine) as session:
            assert store.counts(session) == {"gt": {"active": 2, "pending": 1, "bounced": 1}}
            assert delivery_counts.counts(session) == {digest_id: {"sent": 2, "failed": 1}}
            assert readers_per_zone(session) == {None: 2}
            assert_counts_match(session)
        command.downgrade(config, before)
        assert "ledger_tallies" not in sa.inspect(engine).get_table_names()
        with engine.begin() as conn:  # no trigger is left behind to write into a missing table
            conn.execute(sa.text("UPDATE deliveries SET state = 'unknown'"))
            conn.execute(sa.text("DELETE FROM subscriptions"))
        command.upgrade(config, "0018")
        with Session(engine) as session:
            assert delivery_counts.counts(session) == {digest_id: {"unknown": 3}}
            assert_counts_match(session)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_concurrent_workers_and_folds_keep_counts_exact(runtime: Runtime) -> None:
    """Four workers claim and record outcomes on one digest while folds run: no deadlock, no
    lost or doubled count (the tallies are appended, never updated in place)."""
    rt = runtime
    if rt.engine.dialect.name != "postgresql":
        pytest.skip("tallies are kept on PostgreSQL; SQLite counts live")
    readers = add_subscribers(rt, 400)
    digests = [plain_digest(rt, week=w) for w in ("2026-W46", "2026-W47")]
    with rt.session() as s:
        for d in digests:
            ledger.enqueue(s, digest_id=d, subscriber_ids=[i for i, _ in readers])
    now = rt.now()
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            outcomes = [DeliveryState.sent, DeliveryState.deferred, DeliveryState.failed]
            for k in range(40):
                with rt.session() as s:
                    claim = ledger.claim_batch(
                        s, worker_id=name, limit=7, lease_until=now + LEASE, now=now
                    )
                    updates = [
                        RowUpdate(
                            id=r.row.id,
                            state=outcomes[(r.row.id + k) % 3],
                            next_attempt=now - LEASE,
                        )
                        for r in claim.recipients
                    ]
                    ledger.record(s, worker_id=name, updates=updates, now=now)
        except BaseException as e:
            errors.append(e)

    def folds() -> None:
        try:
            for _ in range(15):
                with rt.session() as s:
                    tallies.fold(s)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
    threads.append(threading.Thread(target=folds))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    check(rt)
    with rt.session() as s:
        counted = delivery_counts.per_state(s)
        assert sum(counted.values()) == 800 and counted.get("sent", 0) > 0
