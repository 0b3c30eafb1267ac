"""The admin API: bearer auth (401, and 503 when no token is configured), items CRUD with
inference, subscribers (add, list, export, erase), digests (list, preview), stats."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from publisher.runtime import Runtime
from publisher.service.worker import Worker
from tests.conftest import FixedClockRuntime
from tests.web_support import AUTH, Capture, Web, make_web, seed, seeded_web, smtp_capture


@pytest.fixture
def web(runtime: Runtime) -> Iterator[Web]:
    """The app over the seeded demo store, on SQLite and PostgreSQL."""
    yield from seeded_web(runtime)


BAD_AUTH = (
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": "Basic dGVzdC10b2tlbg=="},
    {"Authorization": "Bearer "},
    {"Authorization": "test-token"},
    {"Authorization": "Bearer test-token-and-more"},
    {"Authorization": "Bearer t\xc3\xa9st".encode("latin-1")},
)


def test_api_needs_the_bearer_token(web: Web) -> None:
    calls = (
        ("get", "/api/items"),
        ("get", "/api/stats"),
        ("delete", "/api/items/1"),
        ("get", "/api/subscribers"),
        ("post", "/api/digests/send"),
    )
    for headers, (method, path) in itertools.product(BAD_AUTH, calls):
        r = web.client.request(method, path, headers=headers)
        assert r.status_code == 401, (method, path)
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json() == {"detail": "a valid bearer token is required"}


@pytest.fixture
def closed(runtime: Runtime) -> Iterator[Web]:
    yield from make_web(runtime, admin_token="")


def test_api_refuses_everything_when_no_token_is_configured(closed: Web) -> None:
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
        r = closed.client.get("/api/items", headers=headers)
        assert r.status_code == 503
    assert closed.client.get("/").status_code == 200  # the site itself still works


def test_items_crud(web: Web) -> None:
    c = web.client
    r = c.post(
        "/api/items",
        headers=AUTH,
        json={
            "title": "Guatemalan returnees get job training",
            "summary": "A programme in Quetzaltenango.",
            "link": "https://example.org/gt",
        },
    )
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["regions"] == ["gt"]
    assert item["link"] == "https://example.org/gt"
    item_id, guid = item["id"], item["guid"]
    assert c.get(f"/api/items/{item_id}", headers=AUTH).json() == item
    listed = c.get("/api/items", headers=AUTH, params={"region": "central-america", "limit": 5})
    assert listed.status_code == 200 and item_id in [i["id"] for i in listed.json()]

    r = c.patch(
        f"/api/items/{item_id}",
        headers=AUTH,
        json={"title": "Hondurans get job training", "guid": "ignored"},
    )
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["guid"] == guid
    assert changed["regions"] == ["hn"]  # inferred tags follow the new text
    r = c.patch(f"/api/items/{item_id}", headers=AUTH, json={"regions": ["CR", "pa"]})
    assert r.json()["regions"] == ["cr", "pa"]
    r = c.patch(f"/api/items/{item_id}", headers=AUTH, json={"summary": "Now about Mexico."})
    assert r.json()["regions"] == ["cr", "pa"]  # given tags stay given
    r = c.patch(f"/api/items/{item_id}", headers=AUTH, json={"link": None})
    assert r.json()["link"] is None

    assert c.delete(f"/api/items/{item_id}", headers=AUTH).status_code == 204
    assert c.get(f"/api/items/{item_id}", headers=AUTH).status_code == 404
    assert c.delete(f"/api/items/{item_id}", headers=AUTH).status_code == 404
    assert c.patch(f"/api/items/{item_id}", headers=AUTH, json={"title": "x"}).status_code == 404


def test_item_create_errors(web: Web) -> None:
    c = web.client
    body = {"title": "Costa Rica opens a centre", "summary": "In San José.", "guid": "cr-1"}
    assert c.post("/api/items", headers=AUTH, json=body).status_code == 201
    dup = c.post("/api/items", headers=AUTH, json=body)
    assert dup.status_code == 409
    for bad in (
        {"title": "x", "link": "javascript:alert(1)"},
        {"title": "   "},
        {"title": "x", "regions": ["atlantis"]},
        {"title": "x", "published": "yesterday"},
        {"summary": "no title"},
        {"title": "x" * 501},
    ):
        r = c.post("/api/items", headers=AUTH, json=bad)
        assert r.status_code == 422, bad
    r = c.post("/api/items", headers=AUTH, json={"title": "x", "summary": "y", "regions": ["GT"]})
    assert r.status_code == 201 and r.json()["regions"] == ["gt"]
    item_id = r.json()["id"]
    assert (
        c.patch(
            f"/api/items/{item_id}", headers=AUTH, json={"link": "ftp://example.org"}
        ).status_code
        == 422
    )
    assert (
        c.patch(f"/api/items/{item_id}", headers=AUTH, json={"regions": ["atlantis"]}).status_code
        == 422
    )
    assert c.get("/api/items", headers=AUTH, params={"region": "atlantis"}).status_code == 404


def test_subscribers_add_list_export_erase(web: Web) -> None:
    c = web.client
    r = c.post(
        "/api/subscribers",
        headers=AUTH,
        json={"email": "Zoe@Example.ORG", "regions": ["caribbean", "GT"]},
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending"
    assert r.json()["email"] == "Zoe@example.org"
    assert r.json()["regions"] == ["caribbean", "gt"]
    web.flush()
    assert [to for to, _ in web.outbox.sent] == ["Zoe@example.org"]
    again = c.post(
        "/api/subscribers",
        headers=AUTH,
        json={"email": "zoe@example.org", "regions": ["cr"], "status": "active"},
    )
    assert again.status_code == 200 and again.json()["status"] == "active"
    listed = c.get("/api/subscribers", headers=AUTH, params={"status": "active"}).json()
    assert [s["email"] for s in listed] == ["Zoe@example.org"]
    assert c.get("/api/subscribers", headers=AUTH, params={"region": "cr"}).json()[0][
        "regions"
    ] == [
        "caribbean",
        "cr",
        "gt",
    ]
    export = c.get("/api/subscribers/zoe@example.org", headers=AUTH)
    assert export.status_code == 200
    assert export.json()["subscriber"]["email"] == "Zoe@example.org"
    assert export.json()["consents"]
    assert c.delete("/api/subscribers/zoe@example.org", headers=AUTH).status_code == 204
    assert c.get("/api/subscribers/zoe@example.org", headers=AUTH).status_code == 404
    assert c.delete("/api/subscribers/zoe@example.org", headers=AUTH).status_code == 404
    erased = c.post(
        "/api/subscribers", headers=AUTH, json={"email": "zoe@example.org", "regions": ["cr"]}
    )
    assert erased.status_code == 409
    bad = c.post("/api/subscribers", headers=AUTH, json={"email": "nope", "regions": ["cr"]})
    assert bad.status_code == 422
    # the person's own signup may bring them back (double opt-in)
    assert (
        c.post("/subscribe", data={"email": "zoe@example.org", "regions": ["cr"]}).status_code
        == 200
    )


def test_digests_list_and_preview(web: Web) -> None:
    c = web.client
    assert c.get("/api/digests", headers=AUTH).json() == []
    r = c.get(
        "/api/digests/preview",
        headers=AUTH,
        params={"region": "central-america", "week": "2026-W48"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    text = c.get(
        "/api/digests/preview",
        headers=AUTH,
        params={"region": "central-america", "week": "2026-W48", "format": "text"},
    )
    assert text.headers["content-type"].startswith("text/plain")
    assert (
        c.get("/api/digests/preview", headers=AUTH, params={"region": "atlantis"}).status_code
        == 404
    )
    assert (
        c.get(
            "/api/digests/preview", headers=AUTH, params={"region": "caribbean", "week": "2026-W99"}
        ).status_code
        == 422
    )


def test_stats(web: Web) -> None:
    c = web.client
    c.post("/api/subscribers", headers=AUTH, json={"email": "a@example.org", "regions": ["cr"]})
    c.post(
        "/api/subscribers",
        headers=AUTH,
        json={"email": "b@example.org", "regions": ["cr", "gt"], "status": "active"},
    )
    stats = c.get("/api/stats", headers=AUTH).json()
    assert stats["items"] > 0
    assert stats["subscribers"] == {"pending": 1, "active": 1}
    assert stats["subscribers_per_region"] == {
        "cr": {"pending": 1, "active": 1},
        "gt": {"active": 1},
    }
    assert stats["deliveries_per_state"] == {}


def test_openapi_docs(web: Web) -> None:
    schema = web.client.get("/openapi.json").json()
    assert "/api/items" in schema["paths"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    assert not any(p.startswith(("/subscribe", "/feeds", "/regions")) for p in schema["paths"])
    docs = web.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


@pytest.fixture
def smtp() -> Iterator[tuple[str, Capture]]:
    yield from smtp_capture()


def test_send_now_dry_run_then_for_real(runtime: Runtime, smtp: tuple[str, Capture]) -> None:
    url, server = smtp
    runtime.settings = runtime.settings.model_copy(update={"smtp_url": url})
    seed(runtime)
    assert isinstance(runtime, FixedClockRuntime)
    runtime.fixed_now += timedelta(minutes=1)  # after the seed: windows are [start, cutoff)
    for env in make_web(runtime):
        c = env.client
        c.post(
            "/api/subscribers",
            headers=AUTH,
            json={"email": "reader@example.org", "regions": ["caribbean"], "status": "active"},
        )
        body = {"region": "caribbean", "week": "2026-W48", "dry_run": True}
        r = c.post("/api/digests/send", headers=AUTH, json=body)
        assert r.status_code == 422 and "--early" in r.json()["detail"]  # W48 is still running
        body["early"] = True
        r = c.post("/api/digests/send", headers=AUTH, json=body)
        assert r.status_code == 200, r.text
        assert (r.json()["editions"], r.json()["empty"], r.json()["digests"]) == (1, 0, [])
        assert server.messages == []
        r = c.post("/api/digests/send", headers=AUTH, json={**body, "dry_run": False})
        # Queued, not sent in the request: 202 and where to follow it.
        assert r.status_code == 202
        assert server.messages == []
        assert r.headers["location"] == r.json()["status_url"]
        assert r.headers["location"] == "/api/digests?week=2026-W48&region=caribbean"
        (queued,) = r.json()["digests"]
        assert queued["recipients"] == 1 and queued["deliveries"] == {"pending": 1}
        follow = c.get(r.headers["location"], headers=AUTH).json()
        assert follow[0]["deliveries"] == {"pending": 1}
        assert Worker(runtime).drain() is not None  # the deliverer sends
        ((_, rcpt, raw),) = server.messages
        assert rcpt == ["reader@example.org"]
        assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw
        listed = c.get(r.headers["location"], headers=AUTH).json()
        assert listed[0]["deliveries"] == {"sent": 1}
        archive = c.get("/archive/caribbean/2026-W48/email")
        assert archive.status_code == 200 and "reader@example.org" not in archive.text
        stats = c.get("/api/stats", headers=AUTH).json()
        assert stats["deliveries_per_state"] == {"sent": 1}
        for bad in ({"region": "atlantis"}, {"week": "2026-W60"}, {"week": "9999-W01"}):
            assert c.post("/api/digests/send", headers=AUTH, json=bad).status_code in (404, 422)


def test_send_of_a_given_week_reports_readers_whose_week_still_runs(runtime: Runtime) -> None:
    """At 03:00 UTC on Monday 2026-11-30 week 48 has ended in UTC but runs in Los Angeles:
    the API queues the UTC reader and says the other waits for their own zone's fire."""
    assert isinstance(runtime, FixedClockRuntime)
    seed(runtime)
    runtime.fixed_now = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    for env in make_web(runtime):
        c = env.client
        for email, zone in (("utc@example.org", "UTC"), ("la@example.org", "America/Los_Angeles")):
            r = c.post(
                "/api/subscribers", headers=AUTH,
                json={"email": email, "regions": ["caribbean"], "status": "active",
                      "timezone": zone},
            )  # fmt: skip
            assert r.status_code in (200, 201), r.text
        body = {"week": "2026-W48", "dry_run": True}
        r = c.post("/api/digests/send", headers=AUTH, json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert (out["editions"], out["waiting"], out["waiting_zones"]) == (
            1, 1, ["America/Los_Angeles"],
        )  # fmt: skip
