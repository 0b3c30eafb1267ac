"""The command line as a user runs it: a subprocess, exit codes, one-line reasons on stderr."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest

from tests.conftest import SEED


def run(
    tmp: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "PUBLISHER_DATABASE_URL": f"sqlite:///{tmp / 'var' / 'publisher.db'}",
        "PUBLISHER_FEEDS_DIR": str(tmp / "feeds"),
        "PUBLISHER_VAR_DIR": str(tmp / "var"),
        "COLUMNS": "200",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "publisher", *args],
        cwd=tmp, env=full_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def migrated(tmp_path: Path) -> Path:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    return tmp_path


def test_commands_refuse_an_unmigrated_database(tmp_path: Path) -> None:
    r = run(tmp_path, "items", "list")
    assert r.returncode == 1
    [line] = r.stderr.strip().splitlines()
    assert re.fullmatch(
        r"publisher: the database schema is at nothing, not \w+: run `publisher db upgrade` first",
        line,
    )


def test_import_twice_then_build_feeds(migrated: Path) -> None:
    first = run(migrated, "items", "import", str(SEED))
    assert first.returncode == 0, first.stderr
    assert "added 10" in first.stdout
    second = run(migrated, "items", "import", str(SEED))
    assert "added 0, already present 10" in second.stdout
    built = run(migrated, "feeds", "build")
    assert built.returncode == 0, built.stderr
    rss = feedparser.parse((migrated / "feeds" / "central-america.rss").read_bytes())
    assert not rss.bozo and rss.version == "rss20"
    titles = [e.title for e in rss.entries]
    assert any("Costa Rica" in t for t in titles) and any("Americas" in t for t in titles)
    assert not any("Guyana" in t for t in titles)
    assert (migrated / "feeds" / "index.opml").exists()


def test_bad_records_are_reported_with_location_and_the_rest_imported(migrated: Path) -> None:
    f = migrated / "items.csv"
    f.write_text(
        "title,summary,regions\n"
        "Honduras opens centre,Text,\n"
        "Only two,columns\n"
        "Bad region,Text,atlantis\n"
        ",empty title,\n",
        encoding="utf-8",
    )
    r = run(migrated, "items", "import", str(f))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"{f}:3: row has 2 columns, the header has 3",
        f"{f}:4: unknown region 'atlantis'; `publisher regions list` shows the slugs",
        f"{f}:5: title is empty",
    ]
    assert "added 1" in r.stdout
    listed = run(migrated, "items", "list", "--region", "hn")
    assert "Honduras opens centre" in listed.stdout


def test_json_not_a_list_and_html_feed_fail_cleanly(migrated: Path) -> None:
    j = migrated / "items.json"
    j.write_text(json.dumps({"title": "x"}))
    h = migrated / "page.atom"
    h.write_text("<html><body>hello</body></html>")
    r = run(migrated, "items", "import", str(j), str(h), str(SEED))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"{j}: expected a JSON list of objects, found dict",
        f"{h}: serves HTML, not an RSS or Atom feed",
    ]
    assert "added 10" in r.stdout


def test_items_add_infers_regions_and_regions_infer_prints_slugs(migrated: Path) -> None:
    r = run(migrated, "items", "add", "--title", "Floods in Honduras", "--summary", "Aid arrives")
    assert r.returncode == 0, r.stderr
    assert "[hn]" in r.stdout
    r = run(migrated, "regions", "infer", "Migrants cross Centroamérica toward México")
    assert r.stdout.split() == ["central-america", "mx"]


def test_unknown_region_option_is_one_line(migrated: Path) -> None:
    r = run(migrated, "items", "list", "--region", "atlantis")
    assert r.returncode == 1
    assert r.stderr.strip() == (
        "publisher: unknown region 'atlantis'; `publisher regions list` shows the slugs"
    )


def test_regions_list_prints_the_tree(tmp_path: Path) -> None:
    r = run(tmp_path, "regions", "list")
    assert r.returncode == 0
    for needle in ("world", "americas", "central-america", "Guatemala", "Centroamérica"):
        assert needle in r.stdout
