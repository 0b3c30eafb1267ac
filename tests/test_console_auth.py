"""Console accounts over HTTP: login, logout, sessions, roles, CSRF, rate limits, redirects.

Runs on a SQLite file and on PostgreSQL (the ``runtime`` fixture); the clock is the runtime's,
moved by the test (session expiry, rate-limit windows), never slept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from publisher.pipeline import accounts
from publisher.runtime import Runtime
from publisher.store import audit
from publisher.store.users import get_user_by_email, list_users
from publisher.web.admin.auth import safe_next
from publisher.web.app import create_app
from tests.conftest import FixedClockRuntime
from tests.console_support import cheap_hashes

ADMIN = ("admin@example.org", "admin-password-1")
EDITOR = ("editor@example.org", "editor-password-1")
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def add(rt: Runtime, email: str, role: str, password: str) -> None:
    with rt.session() as session:
        accounts.add_user(
            session, email=email, role=role, password=password, actor="test", now=rt.now()
        )


def client_for(rt: Runtime, base: str = "http://testserver", **settings: object) -> TestClient:
    app = create_app(rt.settings.model_copy(update={"base_url": base, **settings}), runtime=rt)
    return TestClient(app, base_url=base, follow_redirects=False, raise_server_exceptions=False)


@pytest.fixture
def rt(runtime: FixedClockRuntime, monkeypatch: pytest.MonkeyPatch) -> FixedClockRuntime:
    cheap_hashes(monkeypatch)
    add(runtime, *ADMIN[:1], "admin", ADMIN[1])
    add(runtime, *EDITOR[:1], "editor", EDITOR[1])
    return runtime


@pytest.fixture
def client(rt: FixedClockRuntime) -> Iterator[TestClient]:
    with client_for(rt) as c:
        yield c


def token(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def log_in(c: TestClient, email: str, password: str, next_url: str = "") -> httpx.Response:
    c.cookies.clear()  # a fresh browser: whoever was logged in is not any more
    page = c.get("/admin/login")
    data = {"email": email, "password": password, "next": next_url, "csrf_token": token(page.text)}
    return c.post("/admin/login", data=data)


def csrf_of(c: TestClient, path: str = "/admin/audit") -> str:
    return token(c.get(path).text)


def test_a_page_sends_to_the_login_and_back(client: TestClient) -> None:
    r = client.get("/admin/audit?actor=a%40b.org")
    assert r.status_code == 303
    assert r.headers["location"] == "/admin/login?next=/admin/audit%3Factor%3Da%2540b.org"
    r = log_in(client, ADMIN[0].upper(), ADMIN[1], next_url="/admin/audit?actor=a%40b.org")
    assert r.status_code == 303 and r.headers["location"] == "/admin/audit?actor=a%40b.org"
    page = client.get("/admin/audit")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "login" in page.text and ADMIN[0] in page.text


@pytest.mark.parametrize("base", ["http://testserver", "https://testserver"])
def test_session_cookie_flags(rt: FixedClockRuntime, base: str) -> None:
    with client_for(rt, base) as c:
        r = log_in(c, *ADMIN)
        [cookie] = [
            h for h in r.headers.get_list("set-cookie") if h.startswith("publisher_console=")
        ]
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/admin", "max-age=43200"} <= flags
    assert ("secure" in flags) is base.startswith("https")
    assert len(cookie.split(";")[0].split("=", 1)[1]) >= 40  # 32 random bytes


def test_logout_ends_the_session_on_the_server(client: TestClient) -> None:
    log_in(client, *ADMIN)
    stolen = client.cookies.get("publisher_console")
    r = client.post("/admin/logout", data={"csrf_token": csrf_of(client)})
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"
    assert "You are logged out." in client.get("/admin/login").text
    client.cookies.set("publisher_console", stolen or "", path="/admin")
    assert client.get("/admin/audit").status_code == 303  # the old cookie opens nothing


def test_session_expires_on_the_runtime_clock(rt: FixedClockRuntime, client: TestClient) -> None:
    log_in(client, *ADMIN)
    start = rt.fixed_now
    rt.fixed_now = start + timedelta(hours=11, minutes=59)
    assert client.get("/admin/audit").status_code == 200
    rt.fixed_now = start + timedelta(hours=12)
    assert client.get("/admin/audit").status_code == 303


def test_a_new_password_ends_every_session(rt: FixedClockRuntime, client: TestClient) -> None:
    log_in(client, *ADMIN)
    with rt.session() as session:
        accounts.set_password(
            session, email=ADMIN[0], password="another-password", actor="test", now=rt.now()
        )
    assert client.get("/admin/audit").status_code == 303
    assert log_in(client, *ADMIN).status_code == 400
    assert log_in(client, ADMIN[0], "another-password").status_code == 303


def _error(html: str) -> str:
    found = re.search(r'<p class="error"[^>]*>(.*?)</p>', html)
    assert found
    return found.group(1)


def test_unknown_account_and_wrong_password_answer_alike(client: TestClient) -> None:
    wrong = log_in(client, ADMIN[0], "not-the-password")
    unknown = log_in(client, "nobody@example.org", "not-the-password")
    assert wrong.status_code == unknown.status_code == 400
    assert _error(wrong.text) == _error(unknown.text)
    assert "publisher_console" not in client.cookies


def test_failures_are_limited_per_account(rt: FixedClockRuntime, client: TestClient) -> None:
    for _ in range(5):
        assert log_in(client, EDITOR[0], "wrong-password!").status_code == 400
    r = log_in(client, EDITOR[0], EDITOR[1])  # the right password, too late
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "Too many failed logins" in r.text
    for _ in range(5):  # an unknown account is limited the same way
        log_in(client, "ghost@example.org", "wrong-password!")
    assert log_in(client, "ghost@example.org", "x").status_code == 429
    assert log_in(client, ADMIN[0], ADMIN[1]).status_code == 303  # other accounts still work
    rt.fixed_now += timedelta(minutes=31)
    assert log_in(client, EDITOR[0], EDITOR[1]).status_code == 303


def test_failures_are_limited_per_address(rt: FixedClockRuntime, client: TestClient) -> None:
    for i in range(20):  # 20 accounts, one failure each: no account is near its limit
        assert log_in(client, f"guess{i}@example.org", "wrong-password!").status_code == 400
    assert log_in(client, *ADMIN).status_code == 429
    with client_for(rt) as other:  # the limit is kept in the database: another process agrees
        assert log_in(other, *ADMIN).status_code == 429


def test_editors_are_refused_admin_pages(rt: FixedClockRuntime, client: TestClient) -> None:
    log_in(client, *EDITOR)
    for path in ("/admin/users", "/admin/audit"):
        r = client.get(path)
        assert r.status_code == 403 and "Not for your account" in r.text
    r = client.get("/admin/audit?lang=es")
    assert r.status_code == 403 and "No disponible para tu cuenta" in r.text
    # With the editor's own valid token (the logout form's), the admin form is still refused.
    editor_token = token(client.get("/admin/users").text)
    with rt.session() as session:
        before = len(list_users(session))
    data = {"email": "x@example.org", "role": "admin", "password": "p" * 20}
    r = client.post("/admin/users", data={**data, "csrf_token": editor_token})
    assert r.status_code == 403 and "No disponible para tu cuenta" in r.text
    with rt.session() as session:
        assert len(list_users(session)) == before


@pytest.mark.parametrize("how", ["missing", "wrong", "other-session", "cross-origin"])
def test_a_post_without_its_csrf_token_is_refused(
    rt: FixedClockRuntime, client: TestClient, how: str
) -> None:
    log_in(client, *ADMIN)
    data = {"email": "new@example.org", "role": "editor", "password": "long-enough-pass"}
    headers = {}
    if how == "wrong":
        data["csrf_token"] = "x" * 43
    elif how == "other-session":
        with client_for(rt) as other:
            log_in(other, *ADMIN)  # the same account in another browser: another token
            data["csrf_token"] = csrf_of(other)
    elif how == "cross-origin":
        data["csrf_token"] = csrf_of(client)
        headers["origin"] = "https://evil.example"
    r = client.post("/admin/users", data=data, headers=headers)
    assert r.status_code == 403 and "This form has expired" in r.text
    with rt.session() as session:
        assert get_user_by_email(session, email="new@example.org") is None
    data["csrf_token"] = csrf_of(client)
    assert client.post("/admin/users", data=data).status_code == 303
    r = client.post("/admin/logout", headers={"x-csrf-token": csrf_of(client)})
    assert r.status_code == 303  # a script may send the token as a header


def test_the_login_form_needs_its_own_token(client: TestClient) -> None:
    r = client.post("/admin/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    assert r.status_code == 403
    client.get("/admin/login")  # sets the nonce cookie
    r = client.post(
        "/admin/login", data={"email": ADMIN[0], "password": ADMIN[1], "csrf_token": "0" * 64}
    )
    assert r.status_code == 403 and "publisher_console" not in client.cookies


NEXT_VALUES = [
    "https://evil.example/admin",
    "//evil.example/admin",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "/items/1",
    "/admin/../feeds/all.rss",
    "/admin\r\nSet-Cookie: x=1",
    "http:/admin",
]


def test_next_never_leaves_the_console(client: TestClient) -> None:
    for next_url in NEXT_VALUES:
        r = log_in(client, *ADMIN, next_url=next_url)
        assert r.status_code == 303 and r.headers["location"] == "/admin", next_url


@given(st.text(max_size=60))
def test_safe_next_is_always_a_local_console_path(value: str) -> None:
    got = safe_next(value)
    parts = urlsplit(got)
    assert not parts.scheme and not parts.netloc and not got.startswith("//")
    assert got == "/admin" or got.startswith(("/admin/", "/admin?", "/admin#"))
    assert got.isprintable() and "\\" not in got


def test_admins_add_and_remove_users_and_it_is_audited(
    rt: FixedClockRuntime, client: TestClient
) -> None:
    log_in(client, *ADMIN)
    bad = client.post(
        "/admin/users",
        data={
            "email": "a\r\nb@example.org",
            "role": "root",
            "password": "short",
            "csrf_token": csrf_of(client),
        },
    )
    assert bad.status_code == 400
    for text in ("does not look like an email", "Choose a role", "at least 12 characters"):
        assert text in bad.text
    r = client.post(
        "/admin/users",
        data={
            "email": "New@Example.org",
            "role": "editor",
            "password": "long-enough-pass",
            "csrf_token": csrf_of(client),
        },
    )
    assert r.status_code == 303
    page = client.get("/admin/users")
    assert "Added the account New@example.org." in page.text
    assert "Added the account" not in client.get("/admin/users").text  # shown once
    with rt.session() as session:
        new = get_user_by_email(session, email="new@example.org")
        me = get_user_by_email(session, email=ADMIN[0])
    assert new is not None and me is not None
    dup = client.post(
        "/admin/users",
        data={
            "email": "NEW@example.org",
            "role": "admin",
            "password": "long-enough-pass",
            "csrf_token": csrf_of(client),
        },
    )
    assert dup.status_code == 400 and "already has an account" in dup.text
    client.post(f"/admin/users/{me.id}/remove", data={"csrf_token": csrf_of(client)})
    assert "You cannot remove your own account." in client.get("/admin/users").text
    client.post(f"/admin/users/{new.id}/remove", data={"csrf_token": csrf_of(client)})
    with rt.session() as session:
        assert get_user_by_email(session, email="new@example.org") is None
        entries = audit.page(session, actor=ADMIN[0])
    assert [(e.action, e.target) for e in entries][:2] == [
        ("user-remove", "New@example.org"),
        ("user-add", "New@example.org"),
    ]


def test_audit_log_pages_by_keyset_and_filters(rt: FixedClockRuntime, client: TestClient) -> None:
    with rt.session() as session:
        for i in range(120):
            audit.record(
                session, actor=f"user{i % 3}@example.org", action="edit" if i % 2 else "add",
                target=f"item {i}", detail="\u202egnp.exe", at=rt.now() + timedelta(seconds=i),
            )  # fmt: skip
    log_in(client, *ADMIN)
    first = client.get("/admin/audit").text
    # 50 a page: this login, then items 119 down to 71.
    assert "item 119" in first and "item 71" in first and "item 70" not in first
    older = re.search(r'href="(/admin/audit\?before=\d+)"', first)
    assert older
    second = client.get(older.group(1)).text
    assert "item 70" in second and "item 21" in second and "item 119" not in second
    assert "<bdi>\u202egnp.exe</bdi>" in second  # bidi text kept, isolated, escaped
    mine = client.get("/admin/audit?actor=user1%40example.org&action=edit").text
    shown = re.findall(r"<td><bdi>item (\d+)</bdi>", mine)
    assert shown and all(int(n) % 3 == 1 and int(n) % 2 == 1 for n in shown)
    assert client.get("/admin/audit?before=0").status_code == 400
    assert client.get("/admin/audit?actor=" + "x" * 400).status_code == 400


def test_hostile_logins(client: TestClient) -> None:
    for email in ("admin@example.org' OR '1'='1", "admin@example.org\r\nBcc: x@evil", "%", "*"):
        r = log_in(client, email, ADMIN[1])
        assert r.status_code == 400, email
    page = client.get("/admin/login")
    huge = client.post(
        "/admin/login",
        data={"email": ADMIN[0], "password": "p" * 1_000_000, "csrf_token": token(page.text)},
    )
    assert huge.status_code == 413
    assert "publisher_console" not in client.cookies


def test_production_hashes_are_argon2id_at_rfc_9106_low_memory() -> None:
    hasher = accounts._hasher.__wrapped__()  # the real one, not the tests' cheap one
    assert (hasher.type.name, hasher.memory_cost, hasher.time_cost) == ("ID", 65536, 3)
