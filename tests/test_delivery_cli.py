"""`publisher digests send` and `digests status` on the embedded Maildir server, in-process."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from publisher.cli.main import main
from publisher.digest.windows import current_week
from publisher.pipeline.edition_tools import WeekStatus
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.tokens import Tokens
from tests.delivery_data import REGION, WEEK, add_subscribers, seed_items


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    captured = capsys.readouterr()
    return int(exit_.value.code or 0), captured.out, captured.err


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Settings:
    monkeypatch.chdir(tmp_path)
    settings = make_settings()
    for name, value in {
        "PUBLISHER_DATABASE_URL": settings.database_url, "PUBLISHER_VAR_DIR": str(settings.var_dir),
        "PUBLISHER_SECRET_KEY": settings.secret_key, "PUBLISHER_SMTP_URL": "",
        "PUBLISHER_BASE_URL": settings.base_url,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    rt = Runtime(settings)  # the CLI runs on the real clock: the items arrive now
    rt.migrate()
    seed_items(rt)
    add_subscribers(rt, 5)
    rt.close()
    return settings


def test_send_delivers_into_the_maildir_once(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("digests", "send", "--region", REGION, "--week", WEEK)
    code, out, err = _run(capsys, *args, "--dry-run")
    assert code == 0, err
    assert "5 editions would be made (5 with items, 0 without: no email)" in out
    assert not (settings.mail_dir / "new").exists()
    code, out, err = _run(capsys, *args)
    assert code == 0, err
    assert f"{REGION} {WEEK}: 5 recipients (5 newly queued): sent 5" in out
    assert "this run: sent 5, deferred 0, failed 0, unknown 0, skipped 0" in out
    files = list((settings.mail_dir / "new").iterdir())
    assert len(files) == 5
    msg = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    code, out, _ = _run(capsys, *args)  # again: nothing twice
    assert "this run: sent 0" in out and len(list((settings.mail_dir / "new").iterdir())) == 5
    code, out, _ = _run(capsys, "digests", "send", "--all", "--week", WEEK)  # every reader
    assert "0 editions made (0 with items, 0 without: no email), 5 had theirs already" in out
    assert f"{REGION} {WEEK}: 5 recipients (0 newly queued): sent 5" in out
    assert len(out.strip().splitlines()) == 3
    code, out, _ = _run(capsys, "digests", "status", "--week", WEEK)
    assert code == 0
    line = next(line for line in out.splitlines() if WEEK in line)
    cells = [c.strip() for c in line.strip("│ ").split("│")]
    assert cells == [WEEK, "sent", "5", "0", "0", "0", "5", "0", "0", "0", "0"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((), "give --region SLUG (repeatable) or --all"),
        (("--region", REGION, "--all"), "give --region SLUG (repeatable) or --all"),
        (("--all", "--week", "2026-W60"), "2026 has ISO weeks 01 to 53"),
        (("--region", "atlantis"), "unknown region 'atlantis'"),
    ],
)
def test_send_refuses_bad_arguments(
    settings: Settings, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], reason: str
) -> None:
    code, _, err = _run(capsys, "digests", "send", *args)
    assert code == 1
    assert reason in err and len(err.strip().splitlines()) == 1


def test_send_on_one_machine_signs_with_var_secret_key(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No SECRET_KEY, SQLite: like serve, the send signs with var/secret_key (created once)."""
    monkeypatch.setenv("PUBLISHER_SECRET_KEY", "")
    code, _, err = _run(capsys, "digests", "send", "--region", REGION, "--week", WEEK)
    assert code == 0, err
    assert "PUBLISHER_SECRET_KEY" not in err
    key = (settings.var_dir / "secret_key").read_text().strip()
    assert len(key) >= 32
    message = message_from_bytes(
        next((settings.mail_dir / "new").iterdir()).read_bytes(), policy=policy.default
    )
    token = re.search(r"/unsubscribe/([^>\s]+)>", str(message["List-Unsubscribe"]))
    assert token is not None
    assert Tokens([key]).read("unsubscribe", token.group(1))  # serve would accept the link


def test_status_counts_editions_by_state_and_says_sent_when_none_is_open() -> None:
    def state(**counts: int) -> str:
        return WeekStatus(WEEK, dict(counts)).state

    assert state(pending=2, sent=3) == state(sending=1) == state(deferred=1, sent=4) == "sending"
    assert state(sent=4, failed=1) == state(sent=5) == state(sent=1, **{"no items": 3}) == "sent"
    assert state(**{"no items": 2}) == "no items"
    assert state(failed=1) == "done"


def test_a_running_week_is_refused_without_early(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    running = current_week(datetime.now(UTC), ZoneInfo("UTC"))
    code, _, err = _run(capsys, "digests", "send", "--all", "--week", running)
    assert code == 1 and "still running" in err and "--early" in err
    assert len(err.strip().splitlines()) == 1
    code, out, err = _run(capsys, "digests", "send", "--all", "--week", running, "--early")
    assert code == 0, err
    assert f"{running} (all readers, early): 5 editions made" in out


def test_the_send_line_says_who_waits_for_their_own_zone() -> None:
    from publisher.cli.send import _fire_line
    from publisher.pipeline.editions import FireReport

    report = FireReport(datetime(2026, 11, 30, 3, tzinfo=UTC), None, None, False, False)
    report.weeks, report.editions = {"2026-W48"}, 3
    assert "wait" not in _fire_line(report)
    report.waiting, report.waiting_zones = 2, {"America/Los_Angeles", "Pacific/Honolulu"}
    line = _fire_line(report)
    assert line.startswith("2026-W48 (all readers): 3 editions made")
    assert line.endswith(
        "; 2 readers wait for their own time zone's fire (the week has not begun or is still "
        "running there: America/Los_Angeles, Pacific/Honolulu)"
    )
