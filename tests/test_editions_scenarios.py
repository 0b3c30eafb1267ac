"""Issue 10's list, replayed as an editor and readers would, through the CLI on a moving clock.

Each scenario runs `publisher ...` in-process (the embedded Maildir SMTP server, SQLite and
PostgreSQL) with the Runtime's clock set by the test, and reads what arrived in var/mail/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from publisher.cli.main import main
from publisher.models import Digest
from publisher.pipeline.edition_tools import rebuild_week
from publisher.pipeline.editions import fire_editions
from publisher.pipeline.edits import delete_item
from publisher.runtime import Runtime
from publisher.settings import Settings
from tests.conftest import FixedClockRuntime
from tests.edition_support import add_item as add_edition_item
from tests.edition_support import add_reader as add_edition_reader
from tests.edition_support import editions_of
from tests.web_support import AUTH, make_web

MON_NOV_30 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # W49 has just started (UTC)
KEEP = {"regions", "alembic_version"}


@dataclass
class Cli:
    """`publisher` on a database, with a clock the test moves."""

    settings: Settings
    capsys: pytest.CaptureFixture[str]
    now: datetime

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        with pytest.raises(SystemExit) as exit_:
            main(list(args))
        captured = self.capsys.readouterr()
        return int(exit_.value.code or 0), captured.out, captured.err

    def ok(self, *args: str) -> str:
        code, out, err = self(*args)
        assert code == 0, f"publisher {' '.join(args)}: {err}"
        return out

    def at(self, moment: datetime) -> Cli:
        assert moment >= self.now, "the clock only moves forward"
        self.now = moment
        return self

    def mail(self) -> list[EmailMessage]:
        """Every message delivered so far, oldest first."""
        folder = self.settings.mail_dir / "new"
        if not folder.exists():
            return []
        files = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns)
        return [message_from_bytes(p.read_bytes(), policy=policy.default) for p in files]

    def mail_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.mail() if m["To"] == address]

    def snapshot(self) -> dict[str, list[tuple[object, ...]]]:
        rt = Runtime(self.settings)
        try:
            with rt.engine.connect() as conn:
                return {
                    t.name: sorted(map(tuple, conn.execute(sa.select(t))), key=repr)
                    for t in SQLModel.metadata.sorted_tables
                    if t.name not in KEEP
                }
        finally:
            rt.close()


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def html_of(message: EmailMessage) -> str:
    body = message.get_body(("html",))
    assert body is not None
    return str(body.get_content())


@pytest.fixture
def cli(
    database_url: str,
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    monkeypatch.chdir(tmp_path)
    settings = make_settings(database_url=database_url)
    for name, value in {
        "PUBLISHER_DATABASE_URL": settings.database_url, "PUBLISHER_VAR_DIR": str(settings.var_dir),
        "PUBLISHER_SECRET_KEY": settings.secret_key, "PUBLISHER_SMTP_URL": "",
        "PUBLISHER_BASE_URL": settings.base_url, "PUBLISHER_FEEDS_DIR": str(settings.feeds_dir),
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    driver = Cli(settings, capsys, MON_NOV_30)
    monkeypatch.setattr(Runtime, "now", lambda self: driver.now)
    driver.ok("db", "upgrade")
    return driver


def add_item(cli: Cli, title: str, published: datetime, *regions: str) -> None:
    flags = [x for r in regions for x in ("--region", r)]
    cli.ok("items", "add", "--title", title, "--summary", "Details follow.", "--published",
           published.isoformat(), *flags)  # fmt: skip


def add_reader(cli: Cli, email: str, *regions: str) -> None:
    flags = [x for r in regions for x in ("--region", r)]
    cli.ok("subscribers", "add", email, *flags, "--confirmed")


def digest_items(rt: Runtime, digest_id: int) -> list[int]:
    with rt.session() as session:
        digest = session.get(Digest, digest_id)
        assert digest is not None
        return [int(i) for i in json.loads(digest.item_ids or "[]")]


def count(haystack: str, needle: str) -> int:
    return len(re.findall(re.escape(needle), haystack))


def at(day: int, hour: int = 8, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def test_a_dry_run_of_a_future_week_stores_nothing_and_a_later_item_arrives(cli: Cli) -> None:
    """(a) The dry run that used to store W50 as skipped for good."""
    add_reader(cli, "ana@example.org", "sv")
    before = cli.snapshot()
    code, _, err = cli("digests", "send", "--region", "sv", "--week", "2026-W50", "--dry-run")
    assert cli.snapshot() == before
    assert code in (0, 1) and len(err.strip().splitlines()) <= 1
    add_item(cli, "San Salvador shelter reopens", at(8, 10), "sv")  # dated inside W50
    code, out, err = cli("digests", "preview", "--region", "sv", "--format", "text")
    assert code == 0 and "San Salvador shelter reopens" not in out  # embargoed until 8 December
    assert cli.snapshot() != before  # the item, stored
    cli.at(at(7)).ok("digests", "send", "--all")  # W49: still embargoed, no email
    assert cli.mail_to("ana@example.org") == []
    cli.at(at(14)).ok("digests", "send", "--region", "sv")  # W50
    (message,) = cli.mail_to("ana@example.org")
    assert count(text_of(message), "San Salvador shelter reopens") == 1


def test_the_running_week_needs_early_and_what_comes_later_goes_next_week(cli: Cli) -> None:
    """(b) A running week is refused without --early; with it, the week's fire sends nothing
    more to those readers and later items wait for next week's edition."""
    add_reader(cli, "ben@example.org", "gt")
    cli.at(at(1, 10))
    add_item(cli, "Guatemala item one", at(1, 9), "gt")
    cli.at(at(2))
    code, _, err = cli("digests", "send", "--all", "--week", "2026-W49")
    assert code == 1 and "--early" in err and len(err.strip().splitlines()) == 1
    assert cli.mail() == []
    out = cli.ok("digests", "send", "--all", "--early")
    (first,) = cli.mail_to("ben@example.org")
    assert "Guatemala item one" in text_of(first)
    cli.at(at(3))
    add_item(cli, "Guatemala item two", at(3, 7), "gt")
    cli.at(at(7)).ok("digests", "send", "--all")  # the W49 fire
    assert len(cli.mail_to("ben@example.org")) == 1
    out = cli.ok("digests", "status", "--week", "2026-W49")
    assert "sent" in out
    cli.at(at(14)).ok("digests", "send", "--all")  # W50
    first, second = cli.mail_to("ben@example.org")
    assert "Guatemala item two" in text_of(second)
    assert "Guatemala item one" not in text_of(second)


def test_a_late_import_with_an_old_date_reaches_everyone_once(cli: Cli) -> None:
    """(c) An item dated inside an assembled week, imported later, goes into the next edition,
    for readers who had that week and for one who joined since."""
    add_reader(cli, "ana@example.org", "gt")
    add_item(cli, "Item A", at(25, month=11), "gt")  # an old date, arriving now: visible now
    cli.at(MON_NOV_30.replace(hour=10)).ok("digests", "send", "--all")  # W48
    assert len(cli.mail_to("ana@example.org")) == 1
    cli.at(at(2))
    add_item(cli, "Item B", at(24, month=11), "gt")  # dated in W48, which went out already
    cli.at(at(3))
    add_reader(cli, "carl@example.org", "central-america")
    cli.at(at(7)).ok("digests", "send", "--all")
    cli.at(at(7, 9)).ok("digests", "send", "--all")  # again: nobody gets anything twice
    ana = [text_of(m) for m in cli.mail_to("ana@example.org")]
    carl = [text_of(m) for m in cli.mail_to("carl@example.org")]
    assert len(ana) == 2 and len(carl) == 1
    assert [count(t, "Item B") for t in ana] == [0, 1]
    assert [count(t, "Item A") for t in ana] == [1, 0]
    assert count(carl[0], "Item B") == 1  # his first edition: the week before its cutoff


def test_a_future_dated_item_waits_for_its_time_in_email_and_feeds(cli: Cli) -> None:
    """(d) Embargoed: not in the feeds or an edition before its time; in both after."""
    add_reader(cli, "dana@example.org", "hn")
    add_item(cli, "Honduras report due", at(10, 12), "hn")
    cli.ok("feeds", "build")
    feed = cli.settings.feeds_dir / "hn.rss"
    assert "Honduras report due" not in (feed.read_text() if feed.exists() else "")
    cli.at(at(7)).ok("digests", "send", "--all")
    assert cli.mail_to("dana@example.org") == []
    cli.at(at(10, 13)).ok("feeds", "build")
    assert "Honduras report due" in feed.read_text()
    cli.at(at(14)).ok("digests", "send", "--all")
    (message,) = cli.mail_to("dana@example.org")
    assert count(text_of(message), "Honduras report due") == 1


def test_one_email_per_week_and_every_item_once_across_nested_regions(cli: Cli) -> None:
    """(e) gt+sv+hn: one email, Central America and Americas items once; Central America + gt:
    the Guatemala items once."""
    add_reader(cli, "eva@example.org", "gt", "sv", "hn")
    add_reader(cli, "fer@example.org", "central-america", "gt")
    titles = {
        "Americas-wide appeal": "americas", "Central America corridor update": "central-america",
        "Guatemala shelter opens": "gt", "El Salvador returns rise": "sv",
        "Honduras floods response": "hn", "Colombia border note": "co",
    }  # fmt: skip
    for title, region in titles.items():
        add_item(cli, title, MON_NOV_30, region)
    cli.at(at(7)).ok("digests", "send", "--all")
    (eva,) = cli.mail_to("eva@example.org")
    (fer,) = cli.mail_to("fer@example.org")
    for title, region in titles.items():
        assert count(text_of(eva), title) == (0 if region == "co" else 1), title
        assert count(text_of(fer), title) == (0 if region == "co" else 1), title
    assert "Guatemala" in str(eva["Subject"]) and "Honduras" in str(eva["Subject"])


def test_rebuilding_an_older_week_loses_no_item(runtime: FixedClockRuntime) -> None:
    """A rebuild of a week the reader already has a later edition after: the week's items,
    queued but not sent yet, must still reach them (found by the property test)."""
    reader = add_edition_reader(runtime, "gia@example.org", ["gt"])
    shelter = add_edition_item(runtime, "Guatemala shelter", ["gt"], published=at(2, 9),
                               arrives=at(2, 9))  # fmt: skip
    fire_editions(runtime, now=at(7), zone=None, runner="scheduler-test")  # W49: the shelter
    fire_editions(runtime, now=at(14), zone=None, runner="scheduler-test")  # W50: nothing new
    runtime.fixed_now = at(14, 9)
    rebuild_week(runtime, week="2026-W49", now=at(14, 9), runner="test")
    got = [
        item
        for e in editions_of(runtime, reader)
        if e.digest_id is not None
        for item in digest_items(runtime, e.digest_id)
    ]
    assert got.count(shelter) == 1


def test_rebuilding_a_first_edition_late_keeps_its_window(runtime: FixedClockRuntime) -> None:
    """A reader's first edition, rebuilt more than a week after it was cut, still holds what
    became visible in its window (the re-fire must not start a fresh week before now)."""
    reader = add_edition_reader(runtime, "hugo@example.org", ["hn"])
    report = add_edition_item(runtime, "Honduras report", ["hn"], published=at(2, 9),
                              arrives=at(2, 9))  # fmt: skip
    fire_editions(runtime, now=at(7), zone=None, runner="scheduler-test")  # W49, not sent yet
    runtime.fixed_now = at(16, 9)
    rebuild_week(runtime, week="2026-W49", now=at(16, 9), runner="test")
    (edition,) = editions_of(runtime, reader)
    assert edition.digest_id is not None
    assert digest_items(runtime, edition.digest_id) == [report]


def test_a_plain_send_after_an_early_one_sends_nothing_more_that_week(
    runtime: FixedClockRuntime,
) -> None:
    """After an early send of the running week, a plain send the same week (default label: the
    week just ended, older than the early one) must not mail the reader again: what arrives
    later goes into next week's edition."""
    reader = add_edition_reader(runtime, "ines@example.org", ["gt"])
    add_edition_item(runtime, "First", ["gt"], published=at(2, 9), arrives=at(2, 9))
    fire_editions(runtime, now=at(2, 10), zone=None, early=True, runner="test")  # W49, early
    add_edition_item(runtime, "Second", ["gt"], published=at(3, 9), arrives=at(3, 9))
    fire_editions(runtime, now=at(3, 10), zone=None, runner="test")  # a plain send, Thursday
    assert [e.week for e in editions_of(runtime, reader)] == ["2026-W49"]
    fire_editions(runtime, now=at(14), zone=None, runner="scheduler-test")  # W50 has "Second"
    assert [e.week for e in editions_of(runtime, reader)] == ["2026-W49", "2026-W50"]


def test_an_item_that_arrives_at_a_cutoff_goes_to_the_next_window_of_every_reader(
    runtime: FixedClockRuntime,
) -> None:
    """Two fires with the same cutoff (two schedulers, a retry, a coarse clock), an item stamped
    at that very moment between them: windows are [start, cutoff), so neither reader's edition
    cut there holds it (the frozen digest the second reader shares is right, not stale) and
    both readers' next edition, which starts at that cutoff, does."""
    first = add_edition_reader(runtime, "jo@example.org", ["gt"])
    add_edition_item(runtime, "Before", ["gt"], published=at(2, 9), arrives=at(2, 9))
    fire_editions(runtime, now=at(7), zone=None, runner="scheduler-a")
    runtime.fixed_now = at(7)
    second = add_edition_reader(runtime, "kim@example.org", ["gt"])
    arriving = add_edition_item(runtime, "At the cutoff", ["gt"], published=at(7), arrives=at(7))
    fire_editions(runtime, now=at(7), zone=None, runner="scheduler-b")
    (one,) = editions_of(runtime, first)
    (two,) = editions_of(runtime, second)
    assert one.digest_id is not None and two.digest_id == one.digest_id
    assert arriving not in digest_items(runtime, one.digest_id)
    fire_editions(runtime, now=at(14), zone=None, runner="scheduler-a")
    for reader in (first, second):
        later = editions_of(runtime, reader)[-1]
        assert later.week == "2026-W50" and later.digest_id is not None
        assert digest_items(runtime, later.digest_id) == [arriving]


def test_view_in_browser_opens_the_web_copy_and_the_archive_is_a_page(cli: Cli) -> None:
    """(g) The link in a sent edition opens its web copy, with no reader data; the region's
    archive week is a page of the site, with no "sent to" line; a deleted item is withdrawn."""
    add_reader(cli, "lia@example.org", "gt")
    add_item(cli, "Guatemala shelter opens", MON_NOV_30, "gt")
    add_item(cli, "Guatemala item later withdrawn", MON_NOV_30, "gt")
    cli.at(at(7)).ok("digests", "send", "--all")
    (message,) = cli.mail_to("lia@example.org")
    html = html_of(message)
    found = re.search(r'href="([^"]+)"[^>]*>\s*View in your browser', html)
    assert found is not None
    url = found.group(1)
    assert url.startswith(f"{cli.settings.base_url}/editions/")
    personal = re.findall(r"/(?:unsubscribe|preferences)/([A-Za-z0-9_.\-]+)", html)
    assert personal
    rt = FixedClockRuntime(cli.settings)
    rt.fixed_now = cli.now
    session_of_web = make_web(rt)
    web = next(session_of_web)
    page = web.client.get(url.removeprefix(cli.settings.base_url))
    assert page.status_code == 200
    assert "Guatemala shelter opens" in page.text
    assert "lia@example.org" not in page.text
    assert not any(token in page.text for token in personal)
    items = {i["title"]: i["id"] for i in web.client.get("/api/items", headers=AUTH).json()}
    with rt.session() as session:
        assert delete_item(session, item_id=items["Guatemala item later withdrawn"], now=rt.now())
    week = web.client.get("/archive/gt/2026-W49")
    assert week.status_code == 200
    assert "sent to" not in week.text.lower()
    assert "Guatemala shelter opens" in week.text
    assert "withdrawn" in week.text.lower()
    assert web.client.get(url.removeprefix(cli.settings.base_url)).status_code == 200
    session_of_web.close()
    rt.close()
