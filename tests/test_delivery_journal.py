"""The sender's journal: records round-trip, damage is ignored, recovery settles rows by it on
SQLite and PostgreSQL, settled files are deleted, and outcomes reach the store while the server
still holds other messages."""

from __future__ import annotations

import subprocess
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.delivery import journal, recovery
from publisher.delivery.engine import EngineConfig, RunStats
from publisher.delivery.journal import Journal, Replay, journal_dir, open_journal
from publisher.delivery.outcome import Outcome, SendResult
from publisher.pipeline.send import digest_messenger, send_digests, send_engine
from publisher.runtime import Runtime
from publisher.service.metrics import metrics_for
from publisher.service.worker import TimedTransport
from publisher.store import deliveries as ledger
from tests.delivery_data import (
    REGION,
    WEEK,
    add_subscribers,
    plain_digest,
    rows,
    seed_items,
    status_of,
    use_smtp,
)
from tests.smtp_servers import Recorder, smtp_server

SENT = SendResult(Outcome.sent, 250, "2.0.0 queued")


@pytest.fixture
def dead_worker() -> str:
    """The id of a sender of this machine whose process has exited."""
    child = subprocess.Popen(["true"])
    child.wait()
    host = recovery.worker_identity().split(":")[0]
    return f"{host}:{child.pid}:dead0001"


def _read(j: Journal) -> Replay:
    return journal.read(j.folder)


# -- the file ---------------------------------------------------------------------------------
stages = st.sampled_from(["queued", "dot", "reply"])
results = st.builds(
    SendResult,
    st.sampled_from(list(Outcome)),
    st.integers(0, 599),
    st.text(max_size=60),  # any reply text: tabs, newlines, U+2028, U+202E, NUL
    st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(stages, results), min_size=1, max_size=30), st.integers(0, 40))
def test_a_row_goes_back_to_pending_only_when_its_final_dot_was_never_journaled(
    tmp_path_factory: pytest.TempPathFactory,
    messages: list[tuple[str, SendResult]],
    torn: int,
) -> None:
    """Whatever the crash point and reply text: no dot -> pending, dot -> unknown, reply -> it."""
    j = Journal(tmp_path_factory.mktemp("j"), "host:1:abc")
    for row_id, (stage, result) in enumerate(messages):
        if stage != "queued":
            j.end_of_data(row_id, 1)
        if stage == "reply":
            j.reply(row_id, 1, result)
    j.close(settled=False)
    path = next(j.folder.glob("*.journal"))
    with path.open("ab") as f:  # a record torn by the kill: never a whole line
        f.write(b"R\t0\t1\tsent\t250\t0\t" + b"x" * torn)
    replay = _read(j)
    for row_id, (stage, result) in enumerate(messages):
        settled = replay.settle(row_id, 1)
        if stage == "queued":
            assert settled is None
        elif stage == "dot":
            assert settled is not None and settled.outcome is Outcome.unknown
        else:
            assert settled is not None
            assert (settled.outcome, settled.code, settled.systemic) == (
                result.outcome, result.code, result.systemic,
            )  # fmt: skip
            assert settled.detail == " ".join(result.detail.split())[:300]
        assert replay.settle(row_id, 2) is None  # another attempt of the row: nothing known


def test_damaged_lines_are_ignored_and_a_foreign_boot_is_trusted_for_replies_only(
    tmp_path: Path,
) -> None:
    folder = journal.folder_of(tmp_path, "host:1:abc")
    folder.mkdir()
    good = f"J\t1\t{journal.boot_id()}\nD\t1\t1\nR\t1\t1\tsent\t250\t0\tok\nD\t2\t1\n"
    junk = "R\t3\t1\tdelivered\t250\t0\t\nD\tx\t1\nR\t4\t1\tsent\t250\t2\t\n\x00\x01garbage\nZ\n"
    (folder / "a.journal").write_bytes((good + junk).encode() + b"\xff\xfeD\t5")
    replay = journal.read(folder)
    assert replay.same_boot and replay.ignored == 6
    assert replay.settle(1, 1) == SendResult(Outcome.sent, 250, "ok")
    assert replay.settle(2, 1) == journal.UNANSWERED
    assert [replay.settle(i, 1) for i in (3, 4, 5)] == [None, None, None]
    (folder / "b.journal").write_bytes(b"J\t1\tanother-boot\nR\t6\t1\tfailed\t550\t0\tno\n")
    replay = journal.read(folder)
    assert not replay.same_boot
    assert replay.settle(1, 1) == SendResult(Outcome.sent, 250, "ok")
    assert replay.settle(6, 1) == SendResult(Outcome.failed, 550, "no")
    assert replay.settle(7, 1) == journal.UNTRUSTED  # its dot may be in the lost tail
    (folder / "b.journal").write_bytes(b"no header\n")
    assert not journal.read(folder).same_boot


def test_settled_files_are_deleted_and_unsettled_ones_kept(tmp_path: Path) -> None:
    j = Journal(tmp_path, "host:1:abc", segment_bytes=1)
    j.end_of_data(1, 1)
    j.end_of_data(2, 1)
    j.rotate(held={2})  # full: a second file; the first still has row 2 in flight
    assert len(list(j.folder.glob("*.journal"))) == 2
    j.reply(2, 1, SENT)
    j.end_of_data(3, 1)
    j.rotate(held={3})  # row 2 recorded: the first file goes
    files = sorted(j.folder.glob("*.journal"))
    assert len(files) == 2 and b"D\t1\t1" not in b"".join(f.read_bytes() for f in files)
    j.close(settled=False)  # row 3 still sending: kept for recovery
    assert journal.read(j.folder).settle(3, 1) == journal.UNANSWERED
    again = Journal(tmp_path, "host:1:abc")
    again.close(settled=True)  # its own files go; the earlier run's stay
    assert len(list(j.folder.glob("*.journal"))) == 2


def test_an_unwritable_journal_directory_only_loses_the_journal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "journal").write_text("a file where the folder should be")
    assert open_journal(tmp_path / "journal", "host:1:abc") is None
    assert "a crash leaves its rows unknown" in caplog.text


def test_worker_ids_map_to_their_own_folders(tmp_path: Path) -> None:
    odd = ("mail-1.example.org:12:ab", ".:1:a", "../../etc:1:x", "a/b:2:c", "\u202eevil:3:d")
    for worker in odd:
        folder = journal.folder_of(tmp_path, worker)
        assert folder.parent == tmp_path and journal.worker_of(folder) == worker
    for worker in (".", ".."):
        assert journal.folder_of(tmp_path, worker).name.startswith("%2E")
    with pytest.raises(ValueError, match="worker id"):
        journal.folder_of(tmp_path, "")


# -- recovery by the journal, on both ledgers ------------------------------------------------
@pytest.fixture
def claimed(runtime: Runtime, dead_worker: str) -> tuple[list[int], list[int]]:
    """Seven rows the dead worker claimed (ids, subscriber ids), and three of a live one."""
    subs = [i for i, _ in add_subscribers(runtime, 10)]
    digest_id = plain_digest(runtime)
    now = runtime.now()
    with runtime.session() as s:
        ledger.enqueue(s, digest_id=digest_id, subscriber_ids=subs)
        claim = ledger.claim_batch(
            s, worker_id=dead_worker, limit=7, lease_until=now + timedelta(minutes=10), now=now
        )
        ledger.claim_batch(
            s, worker_id=recovery.worker_identity(), limit=3, after_id=claim.last_id,
            lease_until=now + timedelta(minutes=10), now=now,
        )  # fmt: skip
    return [r.row.id for r in claim.recipients], subs


def test_recovery_settles_each_row_by_its_journal(
    runtime: Runtime, dead_worker: str, claimed: tuple[list[int], list[int]]
) -> None:
    ids, subs = claimed
    root = journal_dir(runtime.settings.var_dir)
    j = Journal(root, dead_worker)
    replies = {
        ids[0]: SENT,
        ids[1]: SendResult(Outcome.failed, 550, "5.1.1 no such user"),
        ids[2]: SendResult(Outcome.deferred, 451, "4.3.0 try later"),
        ids[3]: SendResult(Outcome.unknown, 0, "connection lost after the final dot", True),
    }
    for row_id in ids[:5]:
        j.end_of_data(row_id, 1)
    for row_id, result in replies.items():
        j.reply(row_id, 1, result)
    j.end_of_data(ids[5], 2)  # another attempt's record says nothing about this one
    j.close(settled=False)  # the worker died here: its lock is gone, its files stay
    live = Journal(root, recovery.worker_identity())  # this process: alive, never touched
    with runtime.session() as s:
        assert recovery.recover(s, now=runtime.now(), journal_dir=root) == 2
    table = {row.id: row for row in rows(runtime).values()}
    assert [table[i].state for i in ids] == [
        "sent", "failed", "deferred", "unknown", "unknown", "pending", "pending"
    ]  # fmt: skip
    assert table[ids[2]].next_attempt is not None and "451" in table[ids[2]].last_error
    assert "no reply came" in table[ids[4]].last_error
    assert table[ids[5]].attempts == 0 and table[ids[5]].claimed_by is None
    assert status_of(runtime, subs[1]) == "bounced"
    assert sorted(r.state for r in table.values()).count("sending") == 3  # the live worker's
    assert not j.folder.exists() and live.folder.exists()
    live.close(settled=True)


def test_a_journal_still_locked_is_left_alone(
    runtime: Runtime, dead_worker: str, claimed: tuple[list[int], list[int]]
) -> None:
    """A writer whose pid looks gone (another pid namespace with the same host name) but who
    still holds its journal's lock is alive: nothing is released, the journal stays."""
    ids, _ = claimed
    root = journal_dir(runtime.settings.var_dir)
    j = Journal(root, dead_worker)
    j.end_of_data(ids[0], 1)
    assert journal.in_use(j.folder)
    with runtime.session() as s:
        assert recovery.recover(s, now=runtime.now(), journal_dir=root) == 0
    assert {row.state for row in rows(runtime).values() if row.id in ids} == {"sending"}
    j.close(settled=False)
    assert not journal.in_use(j.folder)


def test_a_symlinked_journal_folder_is_neither_read_nor_removed(
    runtime: Runtime, dead_worker: str, claimed: tuple[list[int], list[int]], tmp_path: Path
) -> None:
    root = journal_dir(runtime.settings.var_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.journal").write_bytes(f"J\t1\t{journal.boot_id()}\n".encode())
    root.mkdir(parents=True)
    journal.folder_of(root, dead_worker).symlink_to(elsewhere)
    with runtime.session() as s:
        dead = recovery.dead_local_workers(s, now=runtime.now())
        assert recovery.recover(s, now=runtime.now(), dead_workers=dead, journal_dir=root) == 7
    assert (elsewhere / "a.journal").exists()  # no rows released on its word, nothing deleted


def test_without_a_journal_the_dead_workers_rows_become_unknown(
    runtime: Runtime, dead_worker: str, claimed: tuple[list[int], list[int]]
) -> None:
    ids, _ = claimed
    root = journal_dir(runtime.settings.var_dir)
    with runtime.session() as s:
        dead = recovery.dead_local_workers(s, now=runtime.now())
        assert recovery.recover(s, now=runtime.now(), dead_workers=dead, journal_dir=root) == 7
    assert {row.state for row in rows(runtime).values() if row.id in ids} == {"unknown"}


# -- the flusher ------------------------------------------------------------------------------
class FirstSent:
    """A send's progress sink that notes when the store first has a ``sent`` row."""

    def __init__(self) -> None:
        self.recorded = threading.Event()

    def start(self, total: int) -> None:
        pass

    def update(self, stats: RunStats) -> None:  # called once outcomes are committed
        if stats.sent:
            self.recorded.set()


def test_outcomes_reach_the_store_while_the_server_holds_other_messages(
    runtime: Runtime,
) -> None:
    """The first reply is recorded although the run cannot claim again: the server stalls the
    second message, so before the flusher it waited for the next claim (or the lease renewal)."""
    seed_items(runtime, first=2)
    subs = add_subscribers(runtime, 12)
    recorder, stall, progress = Recorder(), threading.Event(), FirstSent()

    def hold(rcpt: str, count: int) -> None:
        if count == 2:
            stall.wait(timeout=60)  # blocks the server: no further reply until released

    recorder.on_data = hold
    config = EngineConfig(concurrency=2, chunk_size=6, flush_every=timedelta(seconds=0.05))
    kwargs = {
        "regions": [REGION],
        "week": WEEK,
        "early": True,
        "config": config,
        "progress": progress,
    }
    with smtp_server(recorder) as port:
        use_smtp(runtime, port)
        sender = threading.Thread(target=send_digests, args=(runtime,), kwargs=kwargs)
        sender.start()
        try:
            assert progress.recorded.wait(timeout=30), "no outcome recorded while one waited"
            sent = [i for i, _ in subs if rows(runtime)[i].state == "sent"]
            assert len(sent) == 1 and sum(recorder.received().values()) == 2
        finally:
            stall.set()
            sender.join(timeout=60)
    assert {row.state for row in rows(runtime).values()} == {"sent"}
    assert not list(journal_dir(runtime.settings.var_dir).glob("*/*"))


def test_the_one_engine_builder_journals_and_frees_the_journal_of_an_engine_never_run(
    runtime: Runtime,
) -> None:
    """A worker stopping between building the engine and running it leaves no journal or lock
    behind; the worker's timing wrapper still lets the pool journal each final dot itself."""
    with send_engine(
        runtime, digest_messenger(runtime), worker_id="here:1:abc",
        wrap_transport=lambda t: TimedTransport(t, metrics_for(runtime)),
    ) as (engine, _target):  # fmt: skip
        assert engine.journal is not None
        assert engine._dot_announced  # TimedTransport passes on announces_final_dot
        assert journal.in_use(
            journal.folder_of(journal_dir(runtime.settings.var_dir), "here:1:abc")
        )
    assert not list(journal_dir(runtime.settings.var_dir).glob("*/*"))
    engine.journal.close(settled=True)  # a second close (the run's, then the builder's) is a no-op
