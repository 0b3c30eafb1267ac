"""The console's item pages over HTTP on SQLite and PostgreSQL: the list's filters and keyset pages,
add and edit (validation, region suggestions, embargo), withdraw and delete, the upload report,
the audit trail, and hostile input (forged ids and tokens, CRLF and bidi, javascript: links,
unknown regions, huge and malformed files)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import feedparser
import httpx
import pytest
from fastapi.testclient import TestClient

from publisher.pipeline import accounts
from publisher.pipeline.edits import delete_item
from publisher.store.audit import page as audit_page
from publisher.store.item_search import ItemFilter, lock_item, search_items
from publisher.store.items import ItemInsert, get_item, insert_items, item_row
from publisher.store.withdrawn import find_withdrawn
from publisher.web.app import create_app
from tests.conftest import FIXED_NOW, FixedClockRuntime

EDITOR = ("editor@example.org", "editor-password-1")
T0 = datetime(2026, 10, 1, tzinfo=UTC)
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Console:
    """A logged-in editor's client and the CSRF token of their session."""

    def __init__(self, client: TestClient, runtime: FixedClockRuntime) -> None:
        self.client = client
        self.runtime = runtime
        self.csrf = ""

    def login(self, email: str, password: str) -> None:
        form = self.client.get("/admin/login")
        token = TOKEN.search(form.text)
        assert token, form.text[:500]
        answer = self.client.post(
            "/admin/login",
            data={"email": email, "password": password, "csrf_token": token[1], "next": ""},
        )
        assert answer.status_code == 303, answer.text[:500]
        page = self.client.get("/admin/items/new")
        found = TOKEN.search(page.text)
        assert found
        self.csrf = found[1]

    def get(self, url: str) -> httpx.Response:
        return self.client.get(url)

    def post(self, url: str, data: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        body = {"csrf_token": self.csrf, **(data or {})}
        return self.client.post(url, data=body, **kw)


@pytest.fixture
def console(runtime: FixedClockRuntime) -> Iterator[Console]:
    with runtime.session() as session:
        accounts.add_user(
            session, email=EDITOR[0], role="editor", password=EDITOR[1], actor="test",
            now=runtime.now(),
        )  # fmt: skip
    app = create_app(runtime.settings, runtime=runtime)
    with TestClient(
        app, base_url=runtime.settings.base_url, follow_redirects=False,
        raise_server_exceptions=False,
    ) as client:  # fmt: skip
        c = Console(client, runtime)
        c.login(*EDITOR)
        yield c


def seed(rt: FixedClockRuntime, n: int) -> None:
    places = [("gt",), ("hn",), ("mx",), ("cl",)]
    rows = [
        ItemInsert(
            guid=f"s{i}", title=f"{'Guatemala' if i % 4 == 0 else 'Other'} story {i}",
            summary=f"Summary {i}", link=None, published=T0 + timedelta(hours=i // 2),
            regions=places[i % 4], source="test", regions_inferred=False,
            lang=("en", "es")[i % 2],
        )
        for i in range(n)
    ]  # fmt: skip
    with rt.session() as session:
        insert_items(session, items=rows, now=T0 - timedelta(days=1))


def listed_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'href="/admin/items/(\d+)/edit"', html)]


def walk(console: Console, query: str) -> list[int]:
    """Every id the list shows for ``query``, following "Older" links to the end."""
    ids: list[int] = []
    url = f"/admin/items?{query}"
    for _ in range(100):
        page = console.get(url)
        assert page.status_code == 200
        ids += listed_ids(page.text)
        older = re.search(r'<a href="(/admin/items\?[^"]+)" rel="next"', page.text)
        if older is None:
            return ids
        url = unescape(older[1])
    raise AssertionError("the pages never end")


def audit_actions(rt: FixedClockRuntime) -> list[tuple[str, str, str]]:
    with rt.session() as session:
        return [(a.actor, a.action, a.target) for a in audit_page(session, limit=100)]


def test_the_list_filters_and_pages_by_keyset(console: Console) -> None:
    seed(console.runtime, 130)
    everything = walk(console, "")
    assert len(everything) == 130 == len(set(everything))
    assert everything == sorted(everything, reverse=True)  # newest first (ids follow time here)
    assert "offset" not in console.get("/admin/items").text
    guatemala = walk(console, "region=gt")
    assert len(guatemala) == 33 and set(guatemala) <= set(everything)
    central = walk(console, "region=central-america")
    assert set(guatemala) < set(central) and len(central) == 33 * 2 + 32
    assert walk(console, "q=GUATEMALA") == guatemala
    assert len(walk(console, "language=es")) == 65
    one_day = walk(console, "from=2026-10-02&to=2026-10-02")
    assert len(one_day) == 48
    assert walk(console, "status=embargoed") == []
    page = console.get("/admin/items?region=atlantis&from=2026-13-01&after=forged~x")
    assert page.status_code == 200
    assert "There is no region atlantis." in page.text
    assert "YYYY-MM-DD" in page.text


def test_suggest_without_javascript_then_save_with_an_embargo(console: Console) -> None:
    form = {
        "title": "Floods in Guatemala",
        "summary": "Rain in Petén.",
        "zone": "America/Guatemala",
    }
    shown = console.post("/admin/items/new", {**form, "action": "suggest"})
    assert shown.status_code == 200
    assert re.search(r'id="item-gt" name="regions" value="gt" checked', shown.text)
    assert get_item_count(console) == 0  # suggesting stores nothing
    saved = console.post(
        "/admin/items/new",
        {**form, "action": "save", "regions": ["gt"], "publish_at": "2026-12-24T09:00"},
    )
    assert saved.status_code == 303
    item_id = int(saved.headers["location"].split("/")[3])
    with console.runtime.session() as session:
        row = item_row(session, item_id=item_id)
        assert row is not None
        assert row.published == datetime(2026, 12, 24, 15, 0, tzinfo=UTC)  # 09:00 at UTC-6
        assert row.visible_at == row.published
    assert console.get(f"/items/{item_id}").status_code == 404
    listed = console.get("/admin/items?status=embargoed").text
    assert listed_ids(listed) == [item_id] and "Embargoed until 2026-12-24 15:00" in listed
    assert ("editor@example.org", "add", f"item {item_id}") in audit_actions(console.runtime)
    edit = console.get(f"/admin/items/{item_id}/edit").text
    assert 'value="2026-12-24T15:00"' in edit  # shown in the default zone (TIMEZONE: UTC)
    # The embargo lifts when the clock passes it.
    console.runtime.fixed_now = datetime(2026, 12, 25, tzinfo=UTC)
    assert console.get(f"/items/{item_id}").status_code == 200


def get_item_count(console: Console) -> int:
    return len(walk(console, ""))


def test_the_json_suggestions_answer_the_script(console: Console) -> None:
    answer = console.post(
        "/admin/items/suggest", {"title": "Migrants cross Honduras", "summary": ""}
    )
    assert answer.status_code == 200
    data = answer.json()
    assert data["regions"][0] == {"slug": "hn", "name": "Honduras"}
    assert data["default_only"] is False
    none = console.post("/admin/items/suggest", {"title": "Weather", "summary": ""}).json()
    assert none["default_only"] is True
    # Without the session's token the endpoint refuses like any console POST.
    refused = console.client.post("/admin/items/suggest", data={"title": "Honduras"})
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"link": "javascript:alert(1)"}, "link must be an absolute http(s) URL"),
        ({"image_url": "data:image/png;base64,AAAA"}, "image_url"),
        ({"regions": ["gt", "atlantis"]}, "There is no region atlantis."),
        ({"summary": "x" * 20_001}, "summary is 20,001 characters"),
        ({"title": "   "}, "title is empty"),
        ({"publish_at": "next tuesday"}, "Publish at must be a date and time."),
        ({"publish_at": "2026-12-24T09:00+05:00"}, "Publish at must be a date and time."),
        ({"lang": "english!!"}, "lang"),
        ({"link": "https://example.org/\u202egnp.exe"}, "link"),
    ],
)
def test_bad_input_is_shown_in_the_form_and_nothing_is_stored(
    console: Console, change: dict[str, object], reason: str
) -> None:
    seed(console.runtime, 1)
    before = audit_actions(console.runtime)
    form = {"title": "Floods in Guatemala", "summary": "Rain", "zone": "UTC", **change}
    added = console.post("/admin/items/new", {**form, "action": "save"})
    assert added.status_code == 422
    assert reason in unescape(added.text)
    assert 'value="Floods in Guatemala"' in added.text or "title" in change
    edited = console.post("/admin/items/1/edit", {**form, "action": "save"})
    assert edited.status_code == 422
    with console.runtime.session() as session:
        row = item_row(session, item_id=1)
        assert row is not None and row.title == "Guatemala story 0" and row.link is None
    assert len(walk(console, "")) == 1
    assert audit_actions(console.runtime) == before


def test_crlf_and_bidi_in_a_title_stay_inert(console: Console) -> None:
    title = "Headline\r\nBcc: victim@example.org \u202egnp.exe <script>alert(1)</script>"
    saved = console.post("/admin/items/new", {"title": title, "summary": "s", "action": "save"})
    assert saved.status_code == 303
    item_id = int(saved.headers["location"].split("/")[3])
    with console.runtime.session() as session:
        row = item_row(session, item_id=item_id)
        assert row is not None
        assert "\r" not in row.title and "\n" not in row.title and "<script>" not in row.title
    listed = console.get("/admin/items").text
    # The bidi override is isolated in <bdi>, so it cannot reorder the rest of the row.
    assert "<bdi>Headline Bcc: victim@example.org \u202egnp.exe" in listed
    assert "<script>alert" not in listed


def test_edit_changes_text_regions_image_and_is_audited(console: Console) -> None:
    seed(console.runtime, 2)
    answer = console.post(
        "/admin/items/1/edit",
        {
            "title": "Honduras roads reopen", "summary": "New text", "link": "https://example.org/a",
            "image_url": "https://example.org/a.jpg", "image_alt": "A road", "zone": "UTC",
            "publish_at": "2026-10-01T00:00", "regions": ["hn"], "action": "save",
        },
    )  # fmt: skip
    assert answer.status_code == 303
    with console.runtime.session() as session:
        item = get_item(session, item_id=1)
    assert item is not None
    assert (item.title, item.link, item.image_url, item.image_alt, item.regions) == (
        "Honduras roads reopen", "https://example.org/a", "https://example.org/a.jpg", "A road",
        ["hn"],
    )  # fmt: skip
    assert ("editor@example.org", "edit", "item 1") in audit_actions(console.runtime)
    # Nothing checked: regions are inferred from the new text, as the API does with [].
    console.post("/admin/items/1/edit", {"title": "Chile mining", "summary": "", "action": "save"})
    with console.runtime.session() as session:
        again = get_item(session, item_id=1)
    assert again is not None and again.regions == ["cl"]


def test_withdraw_a_public_item_and_delete_an_embargoed_one(console: Console) -> None:
    seed(console.runtime, 2)
    rt = console.runtime
    ask = console.get("/admin/items/1/withdraw")
    assert ask.status_code == 200 and "Withdraw the item" in ask.text
    gone = console.post("/admin/items/1/withdraw")
    assert gone.status_code == 303
    assert console.get("/items/1").status_code == 410
    with rt.session() as session:
        assert find_withdrawn(session, item_id=1) is not None
    assert walk(console, "status=withdrawn") == []  # withdrawn rows are listed without links
    assert "Guatemala story 0" in console.get("/admin/items?status=withdrawn").text
    # The feeds were rebuilt after the commit (as the API's delete does).
    feed = feedparser.parse((rt.settings.feeds_dir / "all.atom").read_bytes())
    titles = [e.title for e in feed.entries]
    assert "Other story 1" in titles and "Guatemala story 0" not in titles
    saved = console.post(
        "/admin/items/new",
        {"title": "Later", "summary": "s", "publish_at": "2027-01-01T00:00", "action": "save"},
    )
    later = int(saved.headers["location"].split("/")[3])
    assert "Delete the item" in console.get(f"/admin/items/{later}/withdraw").text
    assert console.post(f"/admin/items/{later}/withdraw").status_code == 303
    with rt.session() as session:
        assert (
            find_withdrawn(session, item_id=later) is None
            and item_row(session, item_id=later) is None
        )
    actions = audit_actions(rt)
    assert ("editor@example.org", "withdraw", "item 1") in actions
    assert ("editor@example.org", "delete", f"item {later}") in actions


def test_forged_ids_and_missing_tokens_change_nothing(console: Console) -> None:
    seed(console.runtime, 1)
    for url in ("/admin/items/999999/edit", "/admin/items/999999/withdraw"):
        assert console.get(url).status_code == 404
        assert console.post(url, {"title": "x", "action": "save"}).status_code == 404
    for bad in ("0", "-1", "abc", "99999999999999999999", "1%0d%0aX-Evil:%201"):
        assert console.get(f"/admin/items/{bad}/edit").status_code in (400, 404)
    no_token = console.client.post("/admin/items/1/withdraw")
    wrong = console.client.post("/admin/items/1/withdraw", data={"csrf_token": "forged"})
    assert no_token.status_code == wrong.status_code == 403
    with console.runtime.session() as session:
        assert item_row(session, item_id=1) is not None
    with console.runtime.session() as session:  # a deleted item's edit page is gone too
        delete_item(session, item_id=1, now=FIXED_NOW)
    assert console.get("/admin/items/1/edit").status_code == 404


def test_logged_out_visitors_are_sent_to_the_login(runtime: FixedClockRuntime) -> None:
    app = create_app(runtime.settings, runtime=runtime)
    with TestClient(app, base_url=runtime.settings.base_url, follow_redirects=False) as client:
        for url in ("/admin/items", "/admin/items/new", "/admin/items/upload"):
            answer = client.get(url)
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/admin/login?next=")


def test_upload_shows_the_report_line_by_line(console: Console) -> None:
    csv_text = (
        "title,summary,regions,link\n"
        "Floods in Guatemala,Rain,gt,https://example.org/1\n"
        "Bad region,text,atlantis,\n"
        "Floods in Guatemala,Rain,gt,https://example.org/1\n"
        "Evil link,text,,javascript:alert(1)\n"
        '"unterminated,quote\n'
    )
    answer = console.post(
        "/admin/items/upload", {"format": ""}, files={"file": ("items.csv", csv_text.encode())}
    )
    assert answer.status_code == 200
    text = unescape(answer.text)
    assert "Added 1, already present 1, skipped 3." in text
    rows = re.findall(r'<tr class="result-(\w+)">\s*<td[^>]*>(\d*)</td>', answer.text)
    assert rows == [("added", "2"), ("skipped", "3"), ("present", "4"), ("skipped", "5"),
                    ("skipped", "6")]  # fmt: skip
    assert "unknown region" in text.lower() and "javascript" in text and "repeats line 2" in text
    assert ("editor@example.org", "import", "items.csv") in audit_actions(console.runtime)
    again = console.post(
        "/admin/items/upload", {"format": "csv"}, files={"file": ("x.txt", csv_text.encode())}
    )
    assert "Added 0, already present 2, skipped 3." in unescape(again.text)


@pytest.mark.parametrize(
    ("name", "data", "fmt", "reason"),
    [
        ("items.json", b'{"title": "not a list"}', "", "expected a JSON list of objects"),
        ("items.json", b"[{", "", "not JSON"),
        ("items.txt", b"\xff\xfe\x00junk", "", "not UTF-8"),
        ("page.html", b"<html><body>hello</body></html>", "feed", "not an RSS or Atom feed"),
    ],
)
def test_unreadable_uploads_say_why(
    console: Console, name: str, data: bytes, fmt: str, reason: str
) -> None:
    answer = console.post("/admin/items/upload", {"format": fmt}, files={"file": (name, data)})
    assert answer.status_code == 422
    assert reason in unescape(answer.text)
    assert len(walk(console, "")) == 0


def test_a_10_mb_upload_is_refused_with_the_limit_named(console: Console) -> None:
    big = b"title,summary\n" + b"A title,a summary\n" * (10 * 1024 * 1024 // 18)
    answer = console.post("/admin/items/upload", {}, files={"file": ("big.csv", big)})
    assert answer.status_code == 413
    assert "larger than 5 MB" in answer.text
    assert len(walk(console, "")) == 0
    # Far beyond the page's ceiling the server stops reading at once.
    huge = console.post("/admin/items/upload", {}, files={"file": ("h.csv", b"x" * 17_000_000)})
    assert huge.status_code == 413


def test_a_feed_address_goes_through_the_guarded_fetcher(console: Console) -> None:
    for url, reason in (
        ("file:///etc/passwd", "must be an absolute http(s) URL"),
        ("http://127.0.0.1:9/feed.xml", "loopback"),
        ("http://10.0.0.1/feed.xml", "private"),
    ):
        answer = console.post("/admin/items/upload", {"url": url})
        assert answer.status_code == 422, url
        assert reason in unescape(answer.text), url


def test_pages_speak_the_editors_language(console: Console) -> None:
    page = console.get("/admin/items?lang=es")
    assert page.status_code == 200
    spanish = console.get("/admin/items/new?lang=es").text
    assert "Sugerir regiones" in spanish and "Publicar el" in spanish
    portuguese = console.get("/admin/items/upload?lang=pt").text
    assert "Enviar notícias" in portuguese


def test_the_suggestions_answer_is_json_and_not_cached(console: Console) -> None:
    answer = console.post("/admin/items/suggest", {"title": "Cuba", "summary": ""})
    assert answer.headers["cache-control"] == "no-store"
    assert json.loads(answer.text)["regions"][0]["slug"] == "cu"


def test_a_double_submit_adds_one_item(console: Console) -> None:
    form = {"title": "Drought in Honduras", "summary": "Dry", "action": "save"}
    first = console.post("/admin/items/new", form)
    second = console.post("/admin/items/new", form)
    assert first.status_code == 303 and second.status_code == 409
    item_id = first.headers["location"].split("/")[3]
    assert f"(item {item_id})" in second.text
    assert len(walk(console, "")) == 1


def test_an_upload_name_with_crlf_and_bidi_is_inert(console: Console) -> None:
    name = "evil\r\nX-Injected: 1\u202e.csv"
    answer = console.post(
        "/admin/items/upload", {"format": "csv"},
        files={"file": (name, b"title,summary\nA title,a summary\n")},
    )  # fmt: skip
    assert answer.status_code == 200
    assert "x-injected" not in {k.lower() for k in answer.headers}
    targets = [t for _, action, t in audit_actions(console.runtime) if action == "import"]
    assert len(targets) == 1 and all(c.isprintable() for c in targets[0])


def test_a_form_over_the_body_limit_stores_nothing(console: Console) -> None:
    answer = console.post("/admin/items/new", {"title": "Big", "summary": "x" * 70_000})
    assert answer.status_code == 413
    assert len(walk(console, "")) == 0


def test_two_editors_withdrawing_at_once_leave_one_tombstone(
    console: Console, database_url: str
) -> None:
    """On PostgreSQL the second withdrawal waits for the row lock, then finds the item gone
    (a 404, not a 500 or a second tombstone)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the row lock is PostgreSQL's")
    seed(console.runtime, 1)
    answers: list[int] = []
    with console.runtime.session() as first:
        assert lock_item(first, item_id=1) is not None
        delete_item(first, item_id=1, now=FIXED_NOW)
        second = threading.Thread(
            target=lambda: answers.append(console.post("/admin/items/1/withdraw").status_code)
        )
        second.start()
    second.join(timeout=60)
    assert answers == [404]
    with console.runtime.session() as session:
        assert find_withdrawn(session, item_id=1) is not None
        assert (
            len(search_items(session, wanted=ItemFilter(status="withdrawn"), now=FIXED_NOW).rows)
            == 1
        )
