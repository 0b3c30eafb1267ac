"""`publisher sources ...` as an operator runs it: a subprocess against a real feed server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from publisher.cli.main import app
from tests.feed_server import Answer, FeedServer, feed_server, rss
from tests.test_cli import run

ALLOW = {"PUBLISHER_SOURCES_ALLOW_PRIVATE": "1"}


@pytest.fixture
def migrated(tmp_path: Path) -> Path:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    return tmp_path


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as s:
        yield s


def test_add_list_poll_remove(migrated: Path, server: FeedServer) -> None:
    server.routes["/news"] = Answer(body=rss(("e1", "Floods in Peru", "Rain.")), etag='"a"')
    url = server.url("/news")
    added = run(migrated, "sources", "add", url, "--region", "PE", "--every", "2h", "--lang", "es")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == f"added source 1: {url} every 2h"
    again = run(migrated, "sources", "add", url)
    assert again.returncode == 1 and again.stderr.strip() == f"publisher: {url} is already a source"

    polled = run(migrated, "sources", "poll", env=ALLOW)
    assert polled.returncode == 0, polled.stderr
    assert polled.stdout.strip() == f"1\t{url}\t1 new, 0 updated"
    polled = run(migrated, "sources", "poll", "--id", "1", env=ALLOW)
    assert polled.stdout.strip() == f"1\t{url}\tnot modified"
    assert server.seen("/news")[1]["if-none-match"] == '"a"'

    listed = run(migrated, "sources", "list").stdout.splitlines()
    [line] = listed
    cells = line.split("\t")
    assert cells[:3] == ["1", "active", "2h"] and cells[4:7] == ["not modified", "pe", url]

    items = run(migrated, "items", "list")
    assert "Floods in Peru" in items.stdout

    assert run(migrated, "sources", "remove", "1").stdout.strip() == "removed source 1"
    gone = run(migrated, "sources", "remove", "1")
    assert gone.returncode == 1 and gone.stderr.strip() == "publisher: no source with id 1"
    assert run(migrated, "sources", "list").stdout == ""


def test_errors_exit_non_zero_with_a_reason(migrated: Path, server: FeedServer) -> None:
    server.routes["/news"] = Answer(body=rss(("e1", "Peru", "x")))
    run(migrated, "sources", "add", server.url("/news"))
    refused = run(migrated, "sources", "poll")  # SOURCES_ALLOW_PRIVATE is off
    assert refused.returncode == 1
    assert "loopback address; SOURCES_ALLOW_PRIVATE is off" in refused.stderr
    assert server.requests == []
    cli, env = (
        CliRunner(),
        {"PUBLISHER_DATABASE_URL": f"sqlite:///{migrated / 'var' / 'publisher.db'}"},
    )
    for args, reason in (
        (("javascript:alert(1)",), "URL must be an absolute http(s) URL"),
        (("https://x.org/f", "--every", "5y"), "not a duration"),
        (("https://x.org/f", "--every", "10s"), "between 1 minute and 7 days"),
        (("https://x.org/f", "--region", "atlantis"), "unknown region 'atlantis'"),
        (("https://x.org/f", "--lang", "e\u202es"), "not a language tag"),
        (("https://x.org/f\r\nX-Injected: 1",), "a control character"),
    ):
        bad = cli.invoke(app, ["sources", "add", *args], env=env)  # in-process: quicker
        assert bad.exit_code == 1 and reason in bad.stderr, (args, bad.stderr)
        assert len(bad.stderr.strip().splitlines()) == 1
    missing = cli.invoke(app, ["sources", "poll", "--id", "42"], env=env)
    assert missing.stderr.strip() == "publisher: no source with id 42"


def test_items_add_with_an_image(migrated: Path) -> None:
    img = "https://img.example.org/a.jpg"
    done = run(migrated, "items", "add", "--title", "Peru floods", "--image", img,
               "--image-alt", "River")  # fmt: skip
    assert done.returncode == 0, done.stderr
    bad = run(migrated, "items", "add", "--title", "x", "--image", "file:///etc/passwd")
    assert bad.returncode == 1 and "image_url must be an absolute http(s) URL" in bad.stderr


def test_items_import_url_is_guarded(migrated: Path, server: FeedServer) -> None:
    server.routes["/f"] = Answer(body=rss(("e1", "Floods in Peru", "Rain.")))
    server.routes["/hop"] = Answer(302, headers={"Location": server.url("/f")})
    db = {"PUBLISHER_DATABASE_URL": f"sqlite:///{migrated / 'var' / 'publisher.db'}"}
    cli = CliRunner()
    refused = cli.invoke(app, ["items", "import", server.url("/hop")], env=db)
    assert refused.exit_code == 1
    assert "127.0.0.1 is a loopback address; SOURCES_ALLOW_PRIVATE is off" in refused.stderr
    assert server.requests == []
    allowed = cli.invoke(app, ["items", "import", server.url("/hop")], env={**db, **ALLOW})
    assert allowed.exit_code == 0, allowed.stderr
    assert "added 1" in allowed.stdout
