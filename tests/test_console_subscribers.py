"""The console's subscriber pages over HTTP, on a SQLite file and on PostgreSQL: search, a person's
record, add (double opt-in through the outbox), CSV import report, streamed export, erase, the
suppression list; editors are refused, forged ids and hostile inputs change nothing."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from publisher.addresses import suppression_hash
from publisher.models import AuditEntry, Delivery, Digest, OutboxMessage, SubscriberStatus
from publisher.pipeline import accounts
from publisher.pipeline.subscription import ConfirmationMailer
from publisher.store import subscribers as store
from publisher.web.app import create_app
from tests.conftest import FixedClockRuntime
from tests.web_support import Outbox

ADMIN = ("admin@example.org", "admin-password-1")
EDITOR = ("editor@example.org", "editor-password-1")
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
ACTIVE, PENDING = SubscriberStatus.active, SubscriberStatus.pending
BASE = "http://testserver"


class Console:
    """A TestClient on the app with captured confirmation emails, logged in as someone."""

    def __init__(self, rt: FixedClockRuntime) -> None:
        self.rt = rt
        self.outbox = Outbox()
        settings = rt.settings.model_copy(update={"base_url": BASE})
        self.mailer = ConfirmationMailer(rt, settings=settings, deliver=self.outbox.deliver)
        app = create_app(settings, runtime=rt, mailer=self.mailer)
        self.client = TestClient(
            app, base_url=BASE, follow_redirects=False, raise_server_exceptions=False
        )

    def log_in(self, email: str, password: str) -> None:
        self.client.cookies.clear()
        data = {
            "email": email, "password": password, "next": "",
            "csrf_token": token(self.client.get("/admin/login").text),
        }  # fmt: skip
        assert self.client.post("/admin/login", data=data).status_code == 303

    def csrf(self, path: str = "/admin/subscribers/new") -> str:
        return token(self.client.get(path).text)

    def post(self, path: str, data: dict[str, object] | None = None, **kwargs: object) -> object:
        return self.client.post(path, data={"csrf_token": self.csrf(), **(data or {})}, **kwargs)


def token(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


@pytest.fixture
def console(runtime: FixedClockRuntime) -> Iterator[Console]:
    with runtime.session() as session:
        for (email, password), role in ((ADMIN, "admin"), (EDITOR, "editor")):
            accounts.add_user(
                session, email=email, role=role, password=password, actor="test", now=runtime.now()
            )
    c = Console(runtime)
    with c.client:
        c.log_in(*ADMIN)
        yield c


def add(rt: FixedClockRuntime, email: str, regions: list[str], status: str = ACTIVE) -> int:
    with rt.session() as session:
        sub, _ = store.add_or_update(
            session, email=email, regions=regions, status=status, now=rt.now()
        )
        store.record_consent(
            session, subscriber_id=sub.id or 0, action="signup", now=rt.now(), ip="192.0.2.7",
            regions=regions, form_version="subscribe-2026-11",
        )  # fmt: skip
        assert sub.id is not None
        return sub.id


def audit_rows(rt: FixedClockRuntime) -> list[AuditEntry]:
    with Session(rt.engine) as session:
        return list(session.exec(select(AuditEntry).order_by(AuditEntry.id)))  # type: ignore[arg-type]


def test_editors_are_refused_and_strangers_sent_to_the_login(console: Console) -> None:
    sid = add(console.rt, "ann@example.org", ["gt"])
    stranger = TestClient(console.client.app, follow_redirects=False)
    assert stranger.get("/admin/subscribers").status_code == 303
    console.log_in(*EDITOR)
    for path in ("/admin/subscribers", f"/admin/subscribers/{sid}", "/admin/suppressions",
                 "/admin/subscribers/import", "/admin/subscribers/export"):  # fmt: skip
        assert console.client.get(path).status_code == 403, path
    with console.rt.session() as session:  # the editor's own CSRF token: only the role refuses
        live = accounts.current(
            session, token=console.client.cookies["publisher_console"], now=console.rt.now()
        )
    assert live is not None
    data = {"confirm": "ann@example.org", "csrf_token": live.csrf}
    r = console.client.post(f"/admin/subscribers/{sid}/erase", data=data)
    assert r.status_code == 403
    with console.rt.session() as session:
        assert store.get_subscriber(session, subscriber_id=sid) is not None


def test_search_filters_and_keyset_pages(console: Console) -> None:
    for i in range(55):
        add(console.rt, f"user{i:02d}@example.org", ["gt"], PENDING if i % 5 == 0 else ACTIVE)
    add(console.rt, "maria@example.org", ["sv"])
    first = console.client.get("/admin/subscribers")
    assert first.status_code == 200
    assert first.text.count('href="/admin/subscribers/') >= 50
    assert "maria@example.org" in first.text  # newest first
    older = re.search(r'href="(/admin/subscribers\?[^"]*before=\d+[^"]*)"', first.text)
    assert older, "no link to the next page"
    second = console.client.get(older.group(1).replace("&amp;", "&"))
    assert "user00@example.org" in second.text and "maria@example.org" not in second.text
    found = console.client.get("/admin/subscribers", params={"q": "MARIA"}).text
    assert "maria@example.org" in found and "user01@" not in found
    inside = console.client.get("/admin/subscribers", params={"q": "ria@", "match": "contains"})
    assert "maria@example.org" in inside.text
    short = console.client.get("/admin/subscribers", params={"q": "ar", "match": "contains"})
    assert "maria@example.org" not in short.text  # under 3 characters: "starts with"
    pending = console.client.get("/admin/subscribers", params={"status": "pending"}).text
    assert "user05@example.org" in pending and "user06@example.org" not in pending
    for forged in ("-1", "0", "99999999999999999999", "abc"):
        r = console.client.get("/admin/subscribers", params={"before": forged})
        assert r.status_code == 400, forged
    assert console.client.get("/admin/subscribers", params={"q": "a" * 400}).status_code == 400
    hostile = console.client.get("/admin/subscribers", params={"q": "%_\u202e<script>"})
    assert hostile.status_code == 200 and "<script>" not in hostile.text


def test_a_persons_record(console: Console) -> None:
    sid = add(console.rt, "ann@example.org", ["gt", "sv"])
    with console.rt.session() as session:
        now = console.rt.now()
        digest = Digest(region="gt", week="2026-W47", window_start=now, window_end=now, created=now)
        session.add(digest)
        session.flush()
        session.add(
            Delivery(digest_id=digest.id or 0, subscriber_id=sid, state="sent", sent_at=now)
        )
    page = console.client.get(f"/admin/subscribers/{sid}").text
    for expected in ("ann@example.org", "2026-W47", "192.0.2.7", "subscribe-2026-11", "sent",
                     "not suppressed", "America/"):  # fmt: skip
        assert expected in page, expected
    for forged in ("0", "-1", "999999", "99999999999999999999", "abc", "1.5"):
        assert console.client.get(f"/admin/subscribers/{forged}").status_code == 404, forged


def test_add_is_pending_and_the_confirmation_goes_through_the_outbox(console: Console) -> None:
    r = console.post(
        "/admin/subscribers/new",
        {"email": "New.Reader@Example.org", "regions": ["gt"], "locale": "es"},
    )
    assert r.status_code == 303  # type: ignore[attr-defined]
    with console.rt.session() as session:
        sub = store.get_by_email(session, email="new.reader@example.org")
        assert sub is not None and sub.status == PENDING and sub.locale == "es"
        assert r.headers["location"] == f"/admin/subscribers/{sub.id}"  # type: ignore[attr-defined]
        queued = session.exec(select(OutboxMessage)).all()
        assert [m.subscriber_id for m in queued] == [sub.id]
        consents = store.consents_of(session, subscriber_id=sub.id or 0)
        assert [(c.action, c.form_version) for c in consents] == [("operator-add", "console-1")]
    console.mailer.flush()
    assert [to for to, _ in console.outbox.sent] == ["New.Reader@example.org"]
    assert console.outbox.confirm_links()
    entry = audit_rows(console.rt)[-1]
    assert (entry.actor, entry.action, entry.target) == (ADMIN[0], "add", f"subscriber {sub.id}")
    assert "reader" not in (entry.target + entry.detail).lower()  # never the address itself
    # A known address is not changed; nothing new is sent.
    again = console.post(
        "/admin/subscribers/new", {"email": "new.reader@example.org", "regions": ["sv"]}
    )
    assert again.status_code == 303  # type: ignore[attr-defined]
    with console.rt.session() as session:
        assert store.regions_of(session, subscriber_id=sub.id or 0) == ["gt"]
        assert len(session.exec(select(OutboxMessage)).all()) == 1


@pytest.mark.parametrize(
    "email",
    ["ann@example.org\r\nBcc: all@example.org", "ann\u202e@example.org", "not-an-address", "",
     "a" * 330 + "@example.org"],
)  # fmt: skip
def test_add_refuses_bad_addresses(console: Console, email: str) -> None:
    r = console.post("/admin/subscribers/new", {"email": email, "regions": ["gt"]})
    assert r.status_code == 400  # type: ignore[attr-defined]
    with console.rt.session() as session:
        assert store.list_subscribers(session) == []


def test_add_never_brings_back_a_suppressed_address(console: Console) -> None:
    add(console.rt, "gone@example.org", ["gt"])
    with console.rt.session() as session:
        store.erase(session, email="gone@example.org", now=console.rt.now())
    r = console.post("/admin/subscribers/new", {"email": "GONE@example.org", "regions": ["gt"]})
    assert r.status_code == 400  # type: ignore[attr-defined]
    assert "suppression list" in r.text  # type: ignore[attr-defined]
    with console.rt.session() as session:
        assert store.get_by_email(session, email="gone@example.org") is None
    no_region = console.post("/admin/subscribers/new", {"email": "x@example.org"})
    assert no_region.status_code == 400  # type: ignore[attr-defined]


def _upload(console: Console, body: bytes, name: str = "list.csv") -> object:
    return console.post("/admin/subscribers/import", files={"file": (name, body, "text/csv")})


def test_import_reports_every_line(console: Console) -> None:
    add(console.rt, "gone@example.org", ["gt"])
    add(console.rt, "known@example.org", ["gt"])
    with console.rt.session() as session:
        store.erase(session, email="gone@example.org", now=console.rt.now())
    body = (
        "email,regions,status,locale\r\n"
        "one@example.org,gt,pending,es\r\n"  # 2: added, pending -> confirmation
        "two@example.org,gt sv,active,en\r\n"  # 3: added, active
        "not-an-address,gt,,\r\n"  # 4: bad address
        "three@example.org,atlantis,,\r\n"  # 5: unknown region
        "GONE@example.org,gt,active,\r\n"  # 6: erased: reported, never re-added
        "known@example.org,gt,,\r\n"  # 7: already present
        "one@example.org,gt,pending,es\r\n"  # 8: duplicate line
        '"evil@example.org\r\nBcc: x@example.org",gt,,\r\n'  # 9-10 (reported as 10): CRLF
        "bidi\u202e@example.org,gt,,\r\n"  # 11: bidi character
        "four@example.org,gt,maybe,\r\n"  # 12: bad status
    ).encode()
    r = _upload(console, body, name="list\u202e\r\n.csv")
    assert r.status_code == 200  # type: ignore[attr-defined]
    page = r.text  # type: ignore[attr-defined]
    for line in (4, 5, 6, 10, 11, 12):
        assert f"line {line}:" in page, line
    assert "was erased" in page and "\u202e\r\n.csv" not in page
    with console.rt.session() as session:
        assert store.get_by_email(session, email="gone@example.org") is None
        one, two = (
            store.get_by_email(session, email=e) for e in ("one@example.org", "two@example.org")
        )
        assert one is not None and one.status == PENDING
        assert two is not None and two.status == ACTIVE
        assert [m.subscriber_id for m in session.exec(select(OutboxMessage)).all()] == [one.id]
    entry = audit_rows(console.rt)[-1]
    assert entry.action == "import" and "added 2" in entry.detail and "skipped 6" in entry.detail


def test_import_refuses_oversized_and_non_csv_files(console: Console) -> None:
    big = b"email,regions\r\n" + b"x" * (10 * 1024 * 1024)
    r = _upload(console, big)  # reaches the page: a translated answer that says what to do
    assert r.status_code == 413  # type: ignore[attr-defined]
    assert "command line" in r.text  # type: ignore[attr-defined]
    huge = _upload(console, b"x" * (17 * 1024 * 1024))  # past the ceiling: refused unread
    assert huge.status_code == 413  # type: ignore[attr-defined]
    headless = _upload(console, b"address,where\r\nann@example.org,gt\r\n")
    assert headless.status_code == 400  # type: ignore[attr-defined]
    assert "email" in headless.text  # type: ignore[attr-defined]
    binary = _upload(console, b"email,regions\r\n\xff\xfe\x00bad@example.org,gt\r\n")
    assert binary.status_code == 200  # type: ignore[attr-defined]
    with console.rt.session() as session:
        assert store.list_subscribers(session) == []


def test_export_streams_the_import_columns_with_formulas_neutralised(console: Console) -> None:
    for email in ("=cmd@example.org", "+sum@example.org", "-x@example.org", "ann@example.org"):
        add(console.rt, email, ["gt"])
    add(console.rt, "wait@example.org", ["sv"], PENDING)
    assert console.client.get("/admin/subscribers/export").status_code == 200
    r = console.post("/admin/subscribers/export", {"status": ""}, headers={})
    assert r.status_code == 200  # type: ignore[attr-defined]
    assert r.headers["content-type"].startswith("text/csv")  # type: ignore[attr-defined]
    assert "attachment" in r.headers["content-disposition"]  # type: ignore[attr-defined]
    rows = list(csv.DictReader(io.StringIO(r.text)))  # type: ignore[attr-defined]
    emails = [row["email"] for row in rows]
    assert emails == ["'=cmd@example.org", "'+sum@example.org", "'-x@example.org",
                      "ann@example.org", "wait@example.org"]  # fmt: skip
    assert rows[-1]["status"] == "pending" and rows[-1]["regions"] == "sv"
    pending = console.post("/admin/subscribers/export", {"status": "pending"})
    assert [r["email"] for r in csv.DictReader(io.StringIO(pending.text))] == ["wait@example.org"]  # type: ignore[attr-defined]
    actions = [(e.action, e.detail) for e in audit_rows(console.rt)]
    assert actions[-2:] == [("export", "status=all"), ("export", "status=pending")]
    no_token = console.client.post("/admin/subscribers/export", data={"status": ""})
    assert no_token.status_code == 403


def test_erase_asks_for_the_address_then_erases_like_the_cli(console: Console) -> None:
    sid = add(console.rt, "Ann@example.org", ["gt"])
    with console.rt.session() as session:
        now = console.rt.now()
        digest = Digest(region="gt", week="2026-W47", window_start=now, window_end=now, created=now)
        session.add(digest)
        session.flush()
        session.add(Delivery(digest_id=digest.id or 0, subscriber_id=sid, state="sent"))
    assert "Ann@example.org" in console.client.get(f"/admin/subscribers/{sid}/erase").text
    wrong = console.post(f"/admin/subscribers/{sid}/erase", {"confirm": "bob@example.org"})
    assert wrong.status_code == 400  # type: ignore[attr-defined]
    with console.rt.session() as session:
        assert store.get_subscriber(session, subscriber_id=sid) is not None
    r = console.post(f"/admin/subscribers/{sid}/erase", {"confirm": " ann@EXAMPLE.org "})
    assert r.status_code == 303  # type: ignore[attr-defined]
    with console.rt.session() as session:
        assert store.get_subscriber(session, subscriber_id=sid) is None
        assert store.consents_of(session, subscriber_id=sid) == []
        assert store.suppression_reason(session, email="ann@example.org") == "erased"
        ledger = session.exec(select(Delivery)).all()
        assert [d.subscriber_id for d in ledger] == [-sid]
    entries = audit_rows(console.rt)
    assert (entries[-1].action, entries[-1].target) == ("erase", f"subscriber {sid}")
    assert all("ann" not in (e.target + e.detail).lower() for e in entries)
    assert console.client.get(f"/admin/subscribers/{sid}").status_code == 404
    again = console.post(f"/admin/subscribers/{sid}/erase", {"confirm": "ann@example.org"})
    assert again.status_code == 404  # type: ignore[attr-defined]


def test_suppression_list_lookup_and_lifting_a_bounce(console: Console) -> None:
    sid = add(console.rt, "bounced@example.org", ["gt"])
    with console.rt.session() as session:
        store.set_status(session, subscriber_id=sid, status="bounced", now=console.rt.now())
        store.suppress(
            session, email="bounced@example.org", reason="hard_bounce", now=console.rt.now()
        )
        store.suppress(session, email="spam@example.org", reason="complaint", now=console.rt.now())
    page = console.client.get("/admin/suppressions").text
    assert suppression_hash("spam@example.org")[:12] in page
    assert "spam@example.org" not in page  # the list holds hashes only
    found = console.client.get("/admin/suppressions", params={"address": "Bounced@example.org"})
    assert "hard bounce" in found.text and "/admin/suppressions/clear" in found.text
    complaint = console.client.get("/admin/suppressions", params={"address": "spam@example.org"})
    assert "/admin/suppressions/clear" not in complaint.text
    refused = console.post("/admin/suppressions/clear", {"address": "spam@example.org"})
    assert refused.status_code == 303  # type: ignore[attr-defined]
    lifted = console.post("/admin/suppressions/clear", {"address": "bounced@example.org"})
    assert lifted.status_code == 303  # type: ignore[attr-defined]
    with console.rt.session() as session:
        assert store.suppression_reason(session, email="spam@example.org") == "complaint"
        assert store.suppression_reason(session, email="bounced@example.org") == "unsubscribed"
    assert audit_rows(console.rt)[-1].target == f"subscriber {sid}"
    for forged in ("nonsense", "2026-11-27T12:00:00+00:00_" + "g" * 64, "x" * 119):
        assert (
            console.client.get("/admin/suppressions", params={"before": forged}).status_code == 200
        )


def test_suppression_pages_follow_time(console: Console) -> None:
    with console.rt.session() as session:
        for i in range(60):
            store.suppress(
                session, email=f"s{i}@example.org", reason="unsubscribed",
                now=console.rt.now() + timedelta(minutes=i),
            )  # fmt: skip
    first = console.client.get("/admin/suppressions").text
    assert suppression_hash("s59@example.org")[:12] in first
    assert suppression_hash("s0@example.org")[:12] not in first
    nxt = re.search(r'href="(/admin/suppressions\?[^"]*before=[^"]+)"', first)
    assert nxt
    second = console.client.get(nxt.group(1).replace("&amp;", "&")).text
    assert suppression_hash("s0@example.org")[:12] in second


def test_an_import_that_dies_half_way_leaves_nothing(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = store.bulk_add, []

    def dying(*args: object, **kwargs: object) -> list[int]:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the process dies here")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "bulk_add", dying)
    lines = "".join(f"p{i}@example.org,gt,pending,\r\n" for i in range(1500))  # two chunks
    r = _upload(console, ("email,regions,status,locale\r\n" + lines).encode())
    assert r.status_code == 500  # type: ignore[attr-defined]
    with console.rt.session() as session:
        assert store.list_subscribers(session) == []  # one transaction: all or nothing
        assert session.exec(select(OutboxMessage)).all() == []
    assert "import" not in [e.action for e in audit_rows(console.rt)]
