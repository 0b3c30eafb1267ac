"""kill -9 of a sending process at several points, then a resume: nobody ever gets two copies,
every recipient ends sent or unknown, none missing, and the sender's journal leaves at most one
message per SMTP connection unknown (its final dot went out unanswered)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from publisher.cli.main import main
from publisher.delivery.engine import EngineConfig
from publisher.delivery.journal import journal_dir
from publisher.pipeline.send import recover_dead, send_digests
from publisher.runtime import Runtime
from publisher.settings import Settings
from tests.conftest import FixedClockRuntime
from tests.delivery_data import REGION, WEEK, add_subscribers, rows, seed_items, states, use_smtp
from tests.smtp_servers import Recorder, smtp_server

CHILD = Path(__file__).with_name("delivery_child.py")
CHUNK = 10
SUBSCRIBERS = 120
# (database, hook, n): kill inside the n-th message's DATA before the reply ("data"), or when
# the next MAIL arrives after the n-th message was answered ("mail")
POINTS = [
    ("sqlite", "data", 1),
    ("sqlite", "mail", 60),
    ("sqlite", "data", SUBSCRIBERS - 1),
    ("postgres", "data", 33),
]


@pytest.fixture
def crash_runtime(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> Iterator[Runtime]:
    backend = request.node.callspec.params["point"][0]
    url = None if backend == "sqlite" else request.getfixturevalue("pg_url")
    rt = FixedClockRuntime(make_settings(**({"database_url": url} if url else {})))
    rt.migrate()
    seed_items(rt)
    yield rt
    rt.close()


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env.update(
        PUBLISHER_DATABASE_URL=settings.database_url,
        PUBLISHER_SMTP_URL=settings.smtp_url,
        PUBLISHER_SECRET_KEY=settings.secret_key,
        PUBLISHER_VAR_DIR=str(settings.var_dir),
        PUBLISHER_BASE_URL=settings.base_url,
        **extra,
    )
    return env


def _killer(recorder: Recorder, hook: str, n: int) -> list[subprocess.Popen[bytes]]:
    """Arm the server to SIGKILL the (future) child at the chosen point; returns its slot."""
    child: list[subprocess.Popen[bytes]] = []

    def kill(count: int) -> None:
        if child and count >= n and child[0].poll() is None:
            os.kill(child[0].pid, signal.SIGKILL)

    if hook == "data":
        recorder.on_data = lambda rcpt, count: kill(count)
    else:
        recorder.on_mail = lambda count: kill(count)
    return child


def _check(rt: Runtime, recorder: Recorder, emails: dict[int, str], bound: int) -> dict[str, int]:
    received = recorder.received()
    assert not received or max(received.values()) == 1, "someone got two copies"
    ledger = rows(rt)
    assert set(ledger) == set(emails), "a recipient is missing from the ledger"
    by_state: dict[str, int] = {}
    for sub_id, row in ledger.items():
        by_state[row.state] = by_state.get(row.state, 0) + 1
        if row.state == "sent":
            assert received[emails[sub_id]] == 1
    assert set(by_state) <= {"sent", "unknown"}
    assert by_state.get("unknown", 0) <= bound, "more unknown rows than could be in flight"
    return by_state


@pytest.mark.parametrize("point", POINTS, ids=[f"{d}-{h}-{n}" for d, h, n in POINTS])
def test_kill_9_then_resume_sends_nobody_twice(
    crash_runtime: Runtime, point: tuple[str, str, int]
) -> None:
    _, hook, n = point
    rt = crash_runtime
    emails = dict(add_subscribers(rt, SUBSCRIBERS))
    send_digests(
        rt, regions=[REGION], week=WEEK, early=True, dry_run=True
    )  # assemble (freeze) up front
    recorder = Recorder()
    child = _killer(recorder, hook, n)
    with smtp_server(recorder) as port:
        use_smtp(rt, port)
        env = _env(rt.settings, CHILD_CHUNK=str(CHUNK), CHILD_CONCURRENCY="2")
        child.append(subprocess.Popen([sys.executable, str(CHILD), REGION, WEEK], env=env))
        assert child[0].wait(timeout=60) == -signal.SIGKILL
        before = recorder.received()
        assert sum(before.values()) >= n
        # the restart: a fresh process on the real clock, same database and server
        resumed = Runtime(rt.settings)
        report = send_digests(
            resumed, regions=[REGION], week=WEEK, early=True, config=EngineConfig(chunk_size=CHUNK)
        )
        resumed.close()
    by_state = _check(rt, recorder, emails, bound=2)  # one per connection (the journal's rule)
    assert report.recovered == by_state.get("unknown", 0)
    if hook == "data":
        assert by_state.get("unknown", 0) >= 1  # the message being answered when the kill came
    assert by_state["sent"] + by_state.get("unknown", 0) == SUBSCRIBERS


def _cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    *args: str,
) -> str:
    """Run the CLI in this process (a resume need not pay a second interpreter start)."""
    for name, value in env.items():
        if name.startswith("PUBLISHER_"):
            monkeypatch.setenv(name, value)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    captured = capsys.readouterr()
    assert exit_.value.code == 0, captured.err
    return captured.out


def test_kill_9_of_the_cli_then_resend_unknown(
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    rt = FixedClockRuntime(make_settings())
    rt.migrate()
    seed_items(rt)
    emails = dict(add_subscribers(rt, 250))
    recorder = Recorder(pipelining=True)
    child = _killer(recorder, "data", 120)
    args = ["digests", "send", "--region", REGION, "--week", WEEK]
    with smtp_server(recorder) as port:
        use_smtp(rt, port)
        env = _env(rt.settings, PUBLISHER_SMTP_CONCURRENCY="3")
        child.append(subprocess.Popen([sys.executable, "-m", "publisher", *args], env=env))
        assert child[0].wait(timeout=60) == -signal.SIGKILL
        recorder.on_data = None
        resumed = _cli(monkeypatch, capsys, env, *args)
        by_state = _check(rt, recorder, emails, bound=3)  # SMTP_CONCURRENCY
        unknown = by_state.get("unknown", 0)
        assert unknown >= 1
        assert f"{unknown} messages were in flight when a sender stopped" in resumed
        # the operator decides to resend the unknown ones: exactly those go out again
        before = recorder.received()
        resent = _cli(monkeypatch, capsys, env, *args, "--resend-unknown")
        assert f"{unknown} unknown messages requeued" in resent
    after = recorder.received()
    assert sum(after.values()) - sum(before.values()) == unknown
    assert all(after[e] >= 1 for e in emails.values())
    assert {row.state for row in rows(rt).values()} == {"sent"}
    rt.close()


def test_sigterm_finishes_in_flight_and_puts_the_rest_back(
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    rt = FixedClockRuntime(make_settings())
    rt.migrate()
    seed_items(rt)
    emails = dict(add_subscribers(rt, 300))
    recorder = Recorder()
    child: list[subprocess.Popen[str]] = []

    def term(rcpt: str, count: int) -> None:
        if count == 40:
            child[0].send_signal(signal.SIGTERM)

    recorder.on_data = term
    args = ["digests", "send", "--region", REGION, "--week", WEEK]
    with smtp_server(recorder) as port:
        use_smtp(rt, port)
        env = _env(rt.settings, PUBLISHER_SMTP_CONCURRENCY="2")
        command = [sys.executable, "-m", "publisher", *args]
        child.append(subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True))
        _, err = child[0].communicate(timeout=60)
        assert child[0].returncode == 1
        assert "stopped on request" in err and "run the same command again" in err
        states = {row.state for row in rows(rt).values()}
        assert states == {"sent", "pending"}  # nothing sending, nothing unknown
        recorder.on_data = None
        _cli(monkeypatch, capsys, env, *args)
    assert recorder.received() == dict.fromkeys(emails.values(), 1)


def _kill_repeatedly(
    rt: Runtime, emails: dict[int, str], *, kills: int, seed: int, concurrency: int
) -> list[int]:
    """Run senders in child processes, SIGKILL each at a moment chosen by a seeded RNG from the
    messages the server has seen (inside a DATA before its reply, or at the next MAIL), settle
    after each kill, then resume to the end; returns the new ``unknown`` rows after each kill."""
    rng = random.Random(seed)
    total = len(emails)
    moments = sorted(rng.sample(range(1, total * 9 // 10), kills))  # the tail may all be in flight
    recorder = Recorder(pipelining=True)
    unknown_after: list[int] = []
    with smtp_server(recorder) as port:
        use_smtp(rt, port)
        env = _env(rt.settings, CHILD_CHUNK="200", CHILD_CONCURRENCY=str(concurrency))
        for moment in moments:
            seen = sum(recorder.received().values())
            child = _killer(recorder, rng.choice(["data", "mail"]), max(moment, seen + 1))
            child.append(subprocess.Popen([sys.executable, str(CHILD), REGION, WEEK], env=env))
            assert child[0].wait(timeout=120) == -signal.SIGKILL
            recorder.on_data = recorder.on_mail = None
            before = states(rt).get("unknown", 0)
            settler = Runtime(rt.settings)  # what the next sender does first, on the real clock
            recover_dead(settler)
            settler.close()
            after = states(rt)
            assert "sending" not in after, "a killed sender's row was left unsettled"
            unknown_after.append(after.get("unknown", 0) - before)
            assert unknown_after[-1] <= concurrency, f"unknown after each kill: {unknown_after}"
            assert received_once(recorder)
        resumed = Runtime(rt.settings)
        send_digests(
            resumed, regions=[REGION], week=WEEK, early=True, config=EngineConfig(concurrency)
        )
        resumed.close()
    received = recorder.received()
    assert received_once(recorder), "someone got two copies"
    ledger = rows(rt)
    assert set(ledger) == set(emails)
    for sub_id, row in ledger.items():
        assert row.state in ("sent", "unknown"), row.state
        if row.state == "sent":
            assert received[emails[sub_id]] == 1
    # an unknown row's message went out unanswered; nobody else is without their copy
    missing = [e for i, e in emails.items() if not received[e] and ledger[i].state != "unknown"]
    assert not missing
    assert not list(journal_dir(rt.settings.var_dir).glob("*/*.journal")), "journals left behind"
    assert all(n <= concurrency for n in unknown_after), unknown_after
    print(f"\nunknown rows after each of {kills} kills: {unknown_after}")
    return unknown_after


def received_once(recorder: Recorder) -> bool:
    received = recorder.received()
    return not received or max(received.values()) == 1


@pytest.mark.slow
def test_ten_kills_of_a_ten_thousand_send_leave_at_most_one_unknown_per_connection(
    make_settings: Callable[..., Settings],
) -> None:
    rt = FixedClockRuntime(make_settings())
    rt.migrate()
    seed_items(rt, first=2)  # a 10 KB digest: the server's parsing is most of the test's time
    emails = dict(add_subscribers(rt, 10_000))
    send_digests(
        rt, regions=[REGION], week=WEEK, early=True, dry_run=True
    )  # assemble (freeze) up front
    unknown = _kill_repeatedly(rt, emails, kills=10, seed=9, concurrency=4)
    assert sum(unknown) >= 1  # the kills inside a DATA left the message being answered unknown
    rt.close()


@pytest.mark.parametrize("seed", [1, 2])
def test_kills_at_random_moments_on_both_ledgers(
    database_url: str, make_settings: Callable[..., Settings], seed: int
) -> None:
    rt = FixedClockRuntime(make_settings(database_url=database_url))
    rt.migrate()
    seed_items(rt, first=2)
    emails = dict(add_subscribers(rt, 400))
    send_digests(rt, regions=[REGION], week=WEEK, early=True, dry_run=True)
    _kill_repeatedly(rt, emails, kills=3, seed=seed, concurrency=3)
    rt.close()
