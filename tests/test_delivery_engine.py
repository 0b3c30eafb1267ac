"""The send loop against real SMTP servers: one copy each, every failure's ledger state, retries in
injected time, the 3-day give-up, bounces, unsubscribes mid-send, and pausing on a dead server."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import pytest

from publisher.delivery.embedded import free_port
from publisher.delivery.engine import Engine, EngineConfig
from publisher.delivery.ledger import Claim, Claimed, Recipient
from publisher.delivery.policy import next_attempt
from publisher.delivery.smtp import SmtpPool, WireReady, is_wire_ready
from publisher.delivery.smtp_url import SmtpTarget
from publisher.delivery.store import LedgerStore
from publisher.models import SubscriberStatus
from publisher.pipeline.send import digest_messenger, send_digests
from publisher.runtime import Runtime
from publisher.store import deliveries as ledger
from tests.conftest import FIXED_NOW
from tests.delivery_data import (
    REGION,
    WEEK,
    add_subscribers,
    plain_digest,
    rows,
    seed_items,
    set_status,
    states,
    status_of,
    use_smtp,
)
from tests.smtp_servers import DROP, Recorder, smtp_server

SMALL = EngineConfig(concurrency=3, chunk_size=7)


def _send(rt: Runtime, config: EngineConfig = SMALL, **kw: object):  # type: ignore[no-untyped-def]
    return send_digests(rt, regions=[REGION], week=WEEK, early=True, config=config, **kw)  # type: ignore[arg-type]


def test_every_recipient_gets_exactly_one_message(runtime: Runtime) -> None:
    seed_items(runtime)
    subs = add_subscribers(runtime, 50)
    recorder = Recorder(pipelining=True)
    with smtp_server(recorder) as port:
        use_smtp(runtime, port)
        report = _send(runtime)
        again = _send(runtime)
    assert report.run.sent == 50 and again.run.sent == 0
    assert recorder.received() == {email: 1 for _, email in subs}
    assert again.digests[0].counts == {"sent": 50}
    ledger = rows(runtime)
    sub_id, email = subs[7]
    msg = recorder.parsed(email)
    assert msg["To"] == email
    assert msg["From"] == "Regional News <news@example.org>"
    assert msg["Subject"] == report.digests[0].subject
    assert msg["Message-ID"] == ledger[sub_id].message_id
    assert msg["List-Unsubscribe"].startswith("<https://news.example.org/unsubscribe/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert all(d.sent_at == FIXED_NOW and d.attempts == 1 for d in ledger.values())


def test_scripted_failures_land_in_the_right_state(runtime: Runtime) -> None:
    seed_items(runtime)
    subs = {email.split("@")[0]: i for i, email in add_subscribers(runtime, 12)}
    recorder = Recorder()
    recorder.rcpt_replies = {
        "reader00001@example.org": "421 4.3.2 closing",
        "reader00002@example.org": "451 4.3.0 try later",
        "reader00003@example.org": "452 4.2.2 mailbox full",
        "reader00004@example.org": "550 5.1.1 no such user",
        "reader00005@example.org": DROP,  # lost before DATA: surely not delivered
    }
    recorder.data_replies = {
        "reader00006@example.org": "554 5.7.1 refused",
        "reader00007@example.org": "451 4.7.1 greylisted",
        "reader00008@example.org": DROP,  # lost after the final dot: maybe delivered
    }
    with smtp_server(recorder) as port:
        use_smtp(runtime, port)
        report = _send(runtime)
    run = report.run
    assert (run.sent, run.deferred, run.failed, run.unknown) == (4, 5, 2, 1)
    ledger = {name: rows(runtime)[i] for name, i in subs.items()}
    for name in ("reader00001", "reader00002", "reader00003", "reader00005", "reader00007"):
        assert ledger[name].state == "deferred", name
        assert ledger[name].next_attempt == FIXED_NOW + timedelta(minutes=5)
    assert ledger["reader00002"].last_error == "451 4.3.0 try later"
    for name in ("reader00004", "reader00006"):
        assert ledger[name].state == "failed" and ledger[name].last_error.startswith("5")
        assert status_of(runtime, subs[name]) == SubscriberStatus.bounced
    assert ledger["reader00008"].state == "unknown"
    assert recorder.received()["reader00008@example.org"] == 1
    assert status_of(runtime, subs["reader00002"]) == SubscriberStatus.active


def test_retries_follow_the_backoff_and_give_up_after_three_days(runtime: Runtime) -> None:
    seed_items(runtime)
    (late_id, late), (stuck_id, stuck) = add_subscribers(runtime, 2)
    recorder = Recorder()
    recorder.rcpt_replies = {late: "451 later", stuck: "451 later"}
    with smtp_server(recorder) as port:
        use_smtp(runtime, port)
        _send(runtime)
        runtime.fixed_now = FIXED_NOW + timedelta(minutes=4)  # type: ignore[attr-defined]
        assert _send(runtime).run.done == 0  # not due yet
        runtime.fixed_now = FIXED_NOW + timedelta(minutes=5)  # type: ignore[attr-defined]
        del recorder.rcpt_replies[late]
        assert _send(runtime).run.sent == 1
        stuck_row = rows(runtime)[stuck_id]
        assert stuck_row.attempts == 2
        assert stuck_row.next_attempt == runtime.now() + timedelta(minutes=10)
        runtime.fixed_now = FIXED_NOW + timedelta(days=3)  # type: ignore[attr-defined]
        report = _send(runtime)
    assert report.run.failed == 1
    assert rows(runtime)[stuck_id].state == "failed"
    assert rows(runtime)[stuck_id].last_error == "gave up after 3 days: 451 later"
    assert status_of(runtime, stuck_id) == SubscriberStatus.active  # a soft failure is no bounce
    assert recorder.received() == {late: 1}
    assert rows(runtime)[late_id].first_attempt == FIXED_NOW


@pytest.mark.parametrize(
    ("attempts", "after", "expected"),
    [
        (1, timedelta(0), timedelta(minutes=5)),
        (2, timedelta(minutes=5), timedelta(minutes=15)),
        (4, timedelta(hours=1), timedelta(hours=1, minutes=40)),
        (10, timedelta(hours=60), timedelta(days=3)),  # capped at the deadline: one last try
    ],
)
def test_next_attempt_doubles_from_five_minutes(
    attempts: int, after: timedelta, expected: timedelta
) -> None:
    when = next_attempt(attempts=attempts, first_attempt=FIXED_NOW, now=FIXED_NOW + after)
    assert when == FIXED_NOW + expected
    deadline = FIXED_NOW + timedelta(days=3)
    assert next_attempt(attempts=attempts, first_attempt=FIXED_NOW, now=deadline) is None


def test_an_unsubscribe_takes_effect_mid_send(runtime: Runtime) -> None:
    seed_items(runtime)
    subs = add_subscribers(runtime, 40)
    leaver_id, leaver = subs[30]
    recorder = Recorder()

    def leave(rcpt: str, count: int) -> None:
        if count == 3:
            set_status(runtime, leaver_id, SubscriberStatus.unsubscribed)

    recorder.on_data = leave
    with smtp_server(recorder) as port:
        use_smtp(runtime, port)
        report = _send(runtime, EngineConfig(concurrency=1, chunk_size=4))
    received = recorder.received()
    assert leaver not in received
    assert len(received) == 39 and set(received.values()) == {1}
    assert report.run.skipped == 1
    assert rows(runtime)[leaver_id].state == "skipped"
    assert "unsubscribed" in rows(runtime)[leaver_id].last_error


def test_a_dead_server_pauses_the_send_without_losing_anyone(runtime: Runtime) -> None:
    seed_items(runtime)
    add_subscribers(runtime, 60)
    use_smtp(runtime, free_port())  # nobody listens
    report = _send(runtime, EngineConfig(concurrency=2, chunk_size=10))
    assert report.run.paused.startswith("sending paused after 20 failures in a row")
    counted = states(runtime)
    assert set(counted) <= {"deferred", "pending"}  # nothing sending, nothing unknown
    assert counted["deferred"] >= 20 and sum(counted.values()) == 60
    # the next run, with the server back, sends everyone once (deferred rows when due)
    recorder = Recorder()
    runtime.fixed_now = FIXED_NOW + timedelta(minutes=5)  # type: ignore[attr-defined]
    with smtp_server(recorder) as port:
        use_smtp(runtime, port)
        assert _send(runtime).run.sent == 60
    assert len(recorder.received()) == 60


class _Messages:
    """A Messenger of small fixed messages; fails for one address, can stop the engine."""

    def __init__(self, broken: str = "", stop_after: int = 0) -> None:
        self.broken, self.stop_after, self.built = broken, stop_after, 0
        self.engine: Engine | None = None

    def build(self, recipient: Recipient) -> bytes:
        self.built += 1
        if self.engine is not None and self.built == self.stop_after:
            self.engine.stop()  # as SIGTERM would, while messages are queued and in flight
        if recipient.email == self.broken:
            raise ValueError("template exploded")
        return f"To: {recipient.email}\r\nSubject: hi\r\n\r\nhello\r\n".encode()


def _engine(rt: Runtime, port: int, messages: _Messages, config: EngineConfig) -> Engine:
    target = SmtpTarget("127.0.0.1", port)
    engine = Engine(
        store=LedgerStore(rt.engine), messenger=messages, transport=SmtpPool(target, 2),
        envelope_from="news@example.org", config=config, clock=rt.now,
    )  # fmt: skip
    messages.engine = engine
    return engine


def _queue(rt: Runtime, n: int) -> list[tuple[int, str]]:
    subs = add_subscribers(rt, n)
    digest_id = plain_digest(rt)
    with rt.session() as session:
        ledger.enqueue(session, digest_id=digest_id, subscriber_ids=[i for i, _ in subs])
    return subs


def test_one_message_that_cannot_be_built_is_skipped_not_fatal(runtime: Runtime) -> None:
    subs = _queue(runtime, 10)
    recorder = Recorder()
    with smtp_server(recorder) as port:
        stats = _engine(runtime, port, _Messages(broken=subs[3][1]), SMALL).run()
    assert (stats.sent, stats.deferred) == (9, 1)
    row = rows(runtime)[subs[3][0]]
    assert row.state == "deferred" and "template exploded" in row.last_error
    assert len(recorder.received()) == 9


class _Preparing(_Messages):
    """Messages whose chunk preparation fails (the store hiccups while loading digests)."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[int] = []

    def prepare(self, recipients: list[Recipient]) -> None:
        self.chunks.append(len(recipients))
        raise RuntimeError("could not load the chunk's digests")


def test_a_failed_chunk_preparation_still_sends_every_message(runtime: Runtime) -> None:
    _queue(runtime, 25)
    recorder = Recorder()
    messages = _Preparing()
    with smtp_server(recorder) as port:
        stats = _engine(runtime, port, messages, EngineConfig(2, chunk_size=10)).run()
    assert messages.chunks == [10, 10, 5]  # handed each claimed chunk before its messages
    assert stats.sent == 25 and len(recorder.received()) == 25
    assert set(states(runtime)) == {"sent"}


def test_stop_finishes_in_flight_and_releases_the_rest(runtime: Runtime) -> None:
    _queue(runtime, 60)
    recorder = Recorder()
    with smtp_server(recorder) as port:
        engine = _engine(runtime, port, _Messages(stop_after=5), EngineConfig(2, chunk_size=20))
        stats = engine.run()
    counted = states(runtime)
    assert set(counted) == {"sent", "pending"}  # nothing left sending, nothing unknown
    assert counted["sent"] == stats.sent == len(recorder.received()) >= 5
    assert stats.released == counted["pending"] - (60 - 40) >= 1  # queued ones were given back
    assert {d.claimed_by for d in rows(runtime).values() if d.state == "pending"} == {None}


class _CountingRenewals(LedgerStore):
    renewed: list[int]

    def renew(self, *, ids: Collection[int], lease_until: datetime) -> int:
        self.renewed = [*getattr(self, "renewed", []), len(ids)]
        return super().renew(ids=ids, lease_until=lease_until)


def test_a_slow_server_gets_the_lease_renewed(runtime: Runtime) -> None:
    _queue(runtime, 6)
    recorder = Recorder()
    recorder.delay = 0.15
    store = _CountingRenewals(runtime.engine)
    with smtp_server(recorder) as port:
        pool = SmtpPool(SmtpTarget("127.0.0.1", port), 1)
        engine = Engine(
            store=store, messenger=_Messages(), transport=pool,
            envelope_from="news@example.org", clock=runtime.now,
            config=EngineConfig(concurrency=1, chunk_size=3, lease=timedelta(seconds=0.4)),
        )  # fmt: skip
        assert engine.run().sent == 6
    assert store.renewed and max(store.renewed) >= 1


class _FailingOnce(LedgerStore):
    calls = 0

    def step(self, **kw: Any) -> Claim:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("database went away")
        return super().step(**kw)


def test_a_store_error_stops_the_run_and_settles_what_it_can(runtime: Runtime) -> None:
    _queue(runtime, 40)
    recorder = Recorder()
    with smtp_server(recorder) as port:
        engine = Engine(
            store=_FailingOnce(runtime.engine), messenger=_Messages(), clock=runtime.now,
            transport=SmtpPool(SmtpTarget("127.0.0.1", port), 2), envelope_from="n@example.org",
            config=EngineConfig(concurrency=2, chunk_size=5),
        )  # fmt: skip
        with pytest.raises(RuntimeError, match="database went away"):
            engine.run()
    counted = states(runtime)
    assert set(counted) <= {"sent", "pending"}  # recorded or released: nothing left sending
    assert counted["sent"] == len(recorder.received())


def test_digest_messages_are_marked_wire_ready(runtime: Runtime) -> None:
    seed_items(runtime)
    (sub_id, email), *_ = add_subscribers(runtime, 1)
    report = send_digests(runtime, regions=[REGION], week=WEEK, early=True, deliver_now=False)
    digest_id = report.digests[0].digest_id
    assert digest_id is not None
    messenger = digest_messenger(runtime)
    row = Claimed(1, digest_id, sub_id, 1, FIXED_NOW, "")
    built = [messenger.build(Recipient(row, email, "0123456789abcdef")) for _ in range(2)]
    assert all(isinstance(m, WireReady) and is_wire_ready(bytes(m)) for m in built)
