"""The subscription lifecycle over HTTP: signup without enumeration, double opt-in, consent,
honeypot, rate limits, preferences with CSRF, GET-safe unsubscribe and RFC 8058 one-click."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from publisher.models import Consent, Subscriber
from publisher.runtime import Runtime
from publisher.store.subscribers import add_or_update, get_by_email, regions_of
from tests.web_support import Web, seeded_web


@pytest.fixture
def web(runtime: Runtime) -> Iterator[Web]:
    """The app over the seeded demo store, on SQLite and PostgreSQL."""
    yield from seeded_web(runtime)


FORM = {"email": "ana@example.org", "regions": ["central-america", "caribbean"]}


def subscriber(web: Web, email: str) -> Subscriber | None:
    with web.runtime.session() as session:
        return get_by_email(session, email=email)


def follows(web: Web, email: str) -> list[str]:
    sub = subscriber(web, email)
    assert sub is not None and sub.id is not None
    with web.runtime.session() as session:
        return regions_of(session, subscriber_id=sub.id)


def consents(web: Web, email: str) -> list[Consent]:
    sub = subscriber(web, email)
    assert sub is not None
    with web.runtime.session() as session:
        return list(session.exec(select(Consent).where(Consent.subscriber_id == sub.id)))


def make_active(web: Web, email: str, regions: tuple[str, ...] = ("caribbean",)) -> Subscriber:
    with web.runtime.session() as session:
        sub, _ = add_or_update(
            session, email=email, regions=regions, status="active", now=web.runtime.now()
        )
    return sub


def token(web: Web, purpose: str, email: str) -> str:
    sub = subscriber(web, email)
    assert sub is not None
    return web.state.tokens.make(purpose, sub.key)


def confirm_via_email(web: Web) -> str:
    web.flush()
    links = web.outbox.confirm_links()
    assert links, "no confirmation email was sent"
    path = "/confirm/" + links[-1].rsplit("/confirm/", 1)[1]
    page = web.client.get(path)  # a page with a button; the button POSTs
    assert page.status_code == 200 and f'<form method="post" action="{path}">' in page.text
    r = web.client.post(path)
    assert r.status_code == 200, r.text
    return r.text


def test_signup_then_confirm_activates_and_keeps_consent(web: Web) -> None:
    r = web.client.post("/subscribe", data=FORM)
    assert r.status_code == 200
    assert "Check your inbox" in r.text
    sub = subscriber(web, "ana@example.org")
    assert sub is not None and sub.status == "pending"
    assert follows(web, "ana@example.org") == []  # regions wait for the confirmation
    web.flush()
    ((to, _),) = web.outbox.sent
    assert to == "ana@example.org"
    message = web.outbox.messages()[0]
    assert message["List-Unsubscribe"] is None
    assert "Central America" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = web.outbox.confirm_links()[0]
    assert link.startswith(web.runtime.settings.base_url + "/confirm/")
    assert "ana" not in link  # the token carries the opaque key, never the address
    page = confirm_via_email(web)
    assert "You are subscribed" in page
    assert subscriber(web, "ana@example.org").status == "active"  # type: ignore[union-attr]
    assert follows(web, "ana@example.org") == ["caribbean", "central-america"]
    actions = [(c.action, c.regions, c.form_version) for c in consents(web, "ana@example.org")]
    assert ("signup", "caribbean central-america", "subscribe-2026-11") in actions
    assert any(a == "confirm" for a, _, _ in actions)
    assert all(c.ip == "testclient" for c in consents(web, "ana@example.org"))
    # opening the link again changes nothing and still answers 200
    before = len(consents(web, "ana@example.org"))
    confirm_via_email(web)
    assert len(consents(web, "ana@example.org")) == before


def test_same_answer_for_new_pending_and_active_addresses(web: Web) -> None:
    web.client.post("/subscribe", data={**FORM, "email": "pending@example.org"})
    make_active(web, "active@example.org")
    web.flush()
    web.outbox.sent.clear()
    answers = [
        web.client.post("/subscribe", data={**FORM, "email": email})
        for email in ("new@example.org", "pending@example.org", "active@example.org")
    ]
    assert {r.status_code for r in answers} == {200}
    assert answers[0].text == answers[1].text == answers[2].text
    assert {k for k in answers[0].headers if k.lower() != "date"} == {
        k for k in answers[2].headers if k.lower() != "date"
    }
    assert "set-cookie" not in answers[0].headers
    web.flush()
    assert sorted(to for to, _ in web.outbox.sent) == [
        "active@example.org",
        "new@example.org",
        "pending@example.org",
    ]
    # the active subscriber's regions change only when they confirm
    assert follows(web, "active@example.org") == ["caribbean"]
    assert subscriber(web, "active@example.org").status == "active"  # type: ignore[union-attr]


def test_honeypot_answers_the_same_and_does_nothing(web: Web) -> None:
    normal = web.client.post("/subscribe", data={**FORM, "email": "real@example.org"})
    trapped = web.client.post(
        "/subscribe", data={**FORM, "email": "bot@example.org", "website": "http://spam.example"}
    )
    assert trapped.status_code == 200 and trapped.text == normal.text
    assert subscriber(web, "bot@example.org") is None
    web.flush()
    assert [to for to, _ in web.outbox.sent] == ["real@example.org"]


BAD_FORMS = (
    {"email": "not-an-address", "regions": ["caribbean"]},
    {"email": "x@example.org", "regions": []},
    {"email": "x@example.org", "regions": ["atlantis"]},
    {"email": "x@example.org\r\nBcc: y@example.org", "regions": ["caribbean"]},
)


def test_bad_forms_are_400_and_store_nothing(web: Web) -> None:
    for form in BAD_FORMS:
        r = web.client.post("/subscribe", data=form)
        assert r.status_code == 400, form
    assert subscriber(web, "x@example.org") is None


def test_rate_limit_per_address_answers_429_with_retry_after(web: Web) -> None:
    for _ in range(3):
        assert web.client.post("/subscribe", data=FORM).status_code == 200
    r = web.client.post("/subscribe", data=FORM)
    assert r.status_code == 429
    wait = int(r.headers["retry-after"])
    assert 0 < wait <= 2 * 3600
    other = web.client.post("/subscribe", data={**FORM, "email": "other@example.org"})
    assert other.status_code == 200
    web.clock.advance(wait)  # Retry-After is honest
    assert web.client.post("/subscribe", data=FORM).status_code == 200


def test_rate_limit_per_ip_answers_429_with_retry_after(web: Web) -> None:
    for i in range(20):
        r = web.client.post("/subscribe", data={**FORM, "email": f"p{i}@example.org"})
        assert r.status_code == 200
    r = web.client.post("/subscribe", data={**FORM, "email": "late@example.org"})
    assert r.status_code == 429
    wait = int(r.headers["retry-after"])
    assert 0 < wait <= 2 * 600
    assert subscriber(web, "late@example.org") is None
    web.clock.advance(wait)  # Retry-After is honest
    assert web.client.post("/subscribe", data=FORM).status_code == 200


def _bad_tokens(web: Web, purpose: str, email: str) -> list[str]:
    good = token(web, purpose, email)
    other = "unsubscribe" if purpose != "unsubscribe" else "confirm"
    forged = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB")
    return [
        good[:-4],
        good[: len(good) // 2],
        forged,
        token(web, other, email),
        "garbage",
        "a.b.c",
        "x" * 300,
    ]


@pytest.mark.parametrize("purpose", ["confirm", "preferences", "unsubscribe"])
def test_bad_tokens_get_a_generic_400_and_change_nothing(web: Web, purpose: str) -> None:
    web.client.post("/subscribe", data=FORM)
    make_active(web, "b@example.org")
    for email in ("ana@example.org", "b@example.org"):
        status = subscriber(web, email).status  # type: ignore[union-attr]
        for bad in _bad_tokens(web, purpose, email):
            for method in ("get", "post"):
                r = getattr(web.client, method)(f"/{purpose}/{bad}")
                assert r.status_code == 400, (purpose, bad, method)
                assert "This link or form is not valid" in r.text
        assert subscriber(web, email).status == status  # type: ignore[union-attr]


def test_expired_tokens(web: Web) -> None:
    web.client.post("/subscribe", data=FORM)
    confirm = token(web, "confirm", "ana@example.org")
    unsubscribe = token(web, "unsubscribe", "ana@example.org")
    now = datetime.now(UTC)
    web.state.token_now = lambda: now + timedelta(days=8)
    assert web.client.get(f"/confirm/{confirm}").status_code == 400
    assert subscriber(web, "ana@example.org").status == "pending"  # type: ignore[union-attr]
    # unsubscribe links live for at least 60 days
    web.state.token_now = lambda: now + timedelta(days=60)
    assert web.client.get(f"/unsubscribe/{unsubscribe}").status_code == 200
    web.state.token_now = lambda: now + timedelta(days=400)
    assert web.client.post(f"/unsubscribe/{unsubscribe}").status_code == 400
    assert subscriber(web, "ana@example.org").status == "pending"  # type: ignore[union-attr]


def test_get_confirm_never_confirms(web: Web) -> None:
    """Mail link scanners follow GETs: the page only offers the button."""
    web.client.post("/subscribe", data=FORM)
    t = token(web, "confirm", "ana@example.org")
    for _ in range(3):
        r = web.client.get(f"/confirm/{t}")
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        assert f'<form method="post" action="/confirm/{t}">' in r.text
    assert web.client.head(f"/confirm/{t}").status_code == 200
    assert subscriber(web, "ana@example.org").status == "pending"  # type: ignore[union-attr]
    assert [c.action for c in consents(web, "ana@example.org")] == ["signup"]
    assert web.client.post(f"/confirm/{t}").status_code == 200
    assert subscriber(web, "ana@example.org").status == "active"  # type: ignore[union-attr]


def test_get_unsubscribe_never_unsubscribes(web: Web) -> None:
    make_active(web, "c@example.org")
    t = token(web, "unsubscribe", "c@example.org")
    for _ in range(3):
        r = web.client.get(f"/unsubscribe/{t}")
        assert r.status_code == 200
        assert f'<form method="post" action="/unsubscribe/{t}">' in r.text
    assert subscriber(web, "c@example.org").status == "active"  # type: ignore[union-attr]


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart", "empty"])
def test_one_click_unsubscribe(web: Web, encoding: str) -> None:
    make_active(web, "d@example.org")
    t = token(web, "unsubscribe", "d@example.org")
    old_confirm = token(web, "confirm", "d@example.org")  # signed before they left
    web.runtime.fixed_now = datetime.now(UTC) + timedelta(seconds=5)  # type: ignore[attr-defined]
    web.client.cookies.clear()
    for _ in range(2):  # idempotent
        if encoding == "urlencoded":
            r = web.client.post(
                f"/unsubscribe/{t}",
                content=b"List-Unsubscribe=One-Click",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        elif encoding == "multipart":
            r = web.client.post(
                f"/unsubscribe/{t}", files={"List-Unsubscribe": (None, "One-Click")}
            )
        else:
            r = web.client.post(f"/unsubscribe/{t}")
        assert r.status_code == 200
        assert "location" not in r.headers and "set-cookie" not in r.headers
        assert r.headers["cache-control"] == "no-store"
        assert subscriber(web, "d@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    assert [c.action for c in consents(web, "d@example.org")].count("unsubscribe") == 1
    # an old confirmation link does not bring them back
    r = web.client.post(f"/confirm/{old_confirm}")
    assert r.status_code == 200 and "ended" in r.text
    assert subscriber(web, "d@example.org").status == "unsubscribed"  # type: ignore[union-attr]


def test_one_click_for_an_erased_subscriber_is_still_200(web: Web) -> None:
    make_active(web, "gone@example.org")
    t = token(web, "unsubscribe", "gone@example.org")
    assert (
        web.client.delete(
            "/api/subscribers/gone@example.org", headers={"Authorization": "Bearer test-token"}
        ).status_code
        == 204
    )
    assert (
        web.client.post(f"/unsubscribe/{t}", data={"List-Unsubscribe": "One-Click"}).status_code
        == 200
    )


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_preferences_change_regions_and_leave(web: Web) -> None:
    make_active(web, "e@example.org", ("caribbean",))
    t = token(web, "preferences", "e@example.org")
    page = web.client.get(f"/preferences/{t}")
    assert page.status_code == 200
    assert 'value="caribbean" checked' in page.text
    csrf = _csrf(page.text)
    r = web.client.post(
        f"/preferences/{t}",
        data={"csrf": csrf, "action": "save", "regions": ["central-america", "gt"]},
    )
    assert r.status_code == 200 and "Your choices are saved" in r.text
    assert follows(web, "e@example.org") == ["central-america", "gt"]
    r = web.client.post(f"/preferences/{t}", data={"csrf": csrf, "action": "leave"})
    assert r.status_code == 200 and "You have unsubscribed" in r.text
    assert subscriber(web, "e@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    # choosing regions again brings them back (they act through their own signed link)
    r = web.client.post(f"/preferences/{t}", data={"csrf": csrf, "regions": ["caribbean"]})
    assert subscriber(web, "e@example.org").status == "active"  # type: ignore[union-attr]
    actions = [c.action for c in consents(web, "e@example.org")]
    assert actions[-3:] == ["preferences", "unsubscribe", "resubscribe"]


def test_preferences_post_needs_a_csrf_token_bound_to_the_subscriber(web: Web) -> None:
    make_active(web, "f@example.org", ("caribbean",))
    make_active(web, "g@example.org", ("caribbean",))
    mine = token(web, "preferences", "f@example.org")
    theirs = token(web, "preferences", "g@example.org")
    their_csrf = _csrf(web.client.get(f"/preferences/{theirs}").text)
    my_csrf = _csrf(web.client.get(f"/preferences/{mine}").text)
    for data in (
        {"regions": ["gt"]},
        {"csrf": "forged", "regions": ["gt"]},
        {"csrf": their_csrf, "regions": ["gt"]},
        {"csrf": their_csrf, "action": "leave"},
    ):
        r = web.client.post(f"/preferences/{mine}", data=data)
        assert r.status_code == 400
    r = web.client.post(
        f"/preferences/{mine}",
        data={"csrf": my_csrf, "regions": ["gt"]},
        headers={"origin": "https://evil.example"},
    )
    assert r.status_code == 400
    assert follows(web, "f@example.org") == ["caribbean"]
    assert subscriber(web, "f@example.org").status == "active"  # type: ignore[union-attr]
    r = web.client.post(
        f"/preferences/{mine}",
        data={"csrf": my_csrf, "regions": ["gt"]},
        headers={"origin": "null"},  # what browsers send under Referrer-Policy: no-referrer
    )
    assert r.status_code == 200
    assert follows(web, "f@example.org") == ["gt"]
    r = web.client.post(
        f"/preferences/{mine}",
        data={"csrf": my_csrf, "regions": ["cr"]},
        headers={"origin": "https://news.example.org"},  # BASE_URL: the site's own origin
    )
    assert r.status_code == 200
    assert follows(web, "f@example.org") == ["cr"]
