"""The suppression list (issue 9, defect 3): nobody but the person can undo an unsubscribe.

An unsubscribed address stays unsubscribed through public signups, imports and the API; it gets
at most one confirmation a day and only that confirmation brings it back. A hard-bounced address
gets no mail at all. The web answers the same for every address.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.models import SubscriberStatus, SuppressionReason
from publisher.pipeline.subscribers import import_subscribers
from publisher.pipeline.subscription import leave
from publisher.store.deliveries import record
from publisher.store.subscribers import add_or_update, get_by_email, suppress, suppression_reason
from tests.conftest import FixedClockRuntime
from tests.web_support import AUTH, Web, seeded_web

FORM = {"regions": ["caribbean"]}
_COUNTER = itertools.count()


@pytest.fixture
def web(runtime: FixedClockRuntime) -> Iterator[Web]:
    yield from seeded_web(runtime)


def status(web: Web, email: str) -> str | None:
    with web.runtime.session() as session:
        sub = get_by_email(session, email=email)
        return None if sub is None else sub.status


def reason(web: Web, email: str) -> str | None:
    with web.runtime.session() as session:
        return suppression_reason(session, email=email)


def active_then_left(web: Web, email: str) -> None:
    with web.runtime.session() as session:
        sub, _ = add_or_update(
            session, email=email, regions=["caribbean"], status="active", now=web.runtime.now()
        )
        leave(session, subscriber=sub, ip="", now=web.runtime.now())


def bounced(web: Web, email: str, reason: str = SuppressionReason.hard_bounce) -> None:
    with web.runtime.session() as session:
        add_or_update(
            session, email=email, regions=["caribbean"], status="active", now=web.runtime.now()
        )
        suppress(session, email=email, reason=reason, now=web.runtime.now())


def signup(web: Web, email: str) -> tuple[int, str]:
    r = web.client.post("/subscribe", data={**FORM, "email": email})
    web.flush()
    return r.status_code, r.text


def test_signup_then_api_and_import_never_reactivate_an_unsubscribed_address(
    web: Web, tmp_path: Path
) -> None:
    active_then_left(web, "gone@example.org")
    assert reason(web, "gone@example.org") == "unsubscribed"

    assert signup(web, "gone@example.org")[0] == 200  # anyone may type the address in
    assert status(web, "gone@example.org") == "unsubscribed"

    api = web.client.post(
        "/api/subscribers",
        headers=AUTH,
        json={"email": "GONE@example.org", "regions": ["caribbean"], "status": "active"},
    )
    assert api.status_code == 409
    assert api.json()["detail"]["error"] == "suppressed"
    assert "unsubscribed" in api.json()["detail"]["detail"]

    csv = tmp_path / "list.csv"
    csv.write_text("email,regions,status\ngone@example.org,caribbean,active\nnew@example.org,gt,\n")
    with web.runtime.session() as session:
        report = import_subscribers(
            session, path=str(csv), tree=web.runtime.tree, now=web.runtime.now()
        )
    assert (report.added, report.suppressed) == (1, 1)
    assert [str(e) for e in report.errors] == [
        f"{csv}:2: gone@example.org is suppressed (unsubscribed); only the person's own "
        "confirmation can bring it back; not imported"
    ]
    assert status(web, "gone@example.org") == "unsubscribed"


def test_an_unsubscribed_address_gets_one_confirmation_a_day_and_only_it_brings_it_back(
    web: Web, runtime: FixedClockRuntime
) -> None:
    active_then_left(web, "back@example.org")
    signup(web, "back@example.org")
    signup(web, "back@example.org")  # the same day: no second email
    assert [to for to, _ in web.outbox.sent] == ["back@example.org"]

    runtime.fixed_now += timedelta(days=1, seconds=1)
    web.clock.advance(3600 * 25)  # the per-address rate limit too
    signup(web, "back@example.org")
    assert [to for to, _ in web.outbox.sent] == ["back@example.org"] * 2

    r = web.client.post(urlsplit(web.outbox.confirm_links()[-1]).path)
    assert r.status_code == 200 and "You are subscribed" in r.text
    assert status(web, "back@example.org") == "active"
    assert reason(web, "back@example.org") is None


def test_a_hard_bounced_address_gets_no_mail_at_all(web: Web) -> None:
    bounced(web, "bounced@example.org")
    assert signup(web, "bounced@example.org")[0] == 200
    assert web.outbox.sent == []
    assert reason(web, "bounced@example.org") == "hard_bounce"
    assert status(web, "bounced@example.org") == SubscriberStatus.active  # not moved anywhere


@pytest.mark.parametrize("why", ["soft_bounce", "complaint"])
def test_soft_bounced_or_complaining_addresses_get_no_mail_either(web: Web, why: str) -> None:
    """bounces.policy suppresses after repeated soft bounces: no confirmation, like hard ones;
    a later unsubscribe never weakens the reason."""
    email = f"{why}@example.org"
    bounced(web, email, why)
    assert signup(web, email)[0] == 200
    assert web.outbox.sent == []
    with web.runtime.session() as session:
        suppress(session, email=email, reason="unsubscribed", now=web.runtime.now())
    assert reason(web, email) == why


def test_the_answer_is_the_same_for_every_address(web: Web) -> None:
    active_then_left(web, "left@example.org")
    bounced(web, "bounced@example.org")
    with web.runtime.session() as session:
        add_or_update(
            session, email="on@example.org", regions=["gt"], status="active", now=web.runtime.now()
        )
    answers = {
        signup(web, a)
        for a in ("fresh@example.org", "on@example.org", "left@example.org", "bounced@example.org")
    }
    assert len(answers) == 1 and next(iter(answers))[0] == 200


def test_a_digest_hard_bounce_puts_the_address_on_the_list(web: Web) -> None:
    with web.runtime.session() as session:
        sub, _ = add_or_update(
            session, email="b2@example.org", regions=["gt"], status="active", now=web.runtime.now()
        )
        assert sub.id is not None
        record(session, worker_id="w", updates=[], now=web.runtime.now(), bounced=[sub.id])
    assert reason(web, "b2@example.org") == "hard_bounce"
    signup(web, "b2@example.org")
    assert web.outbox.sent == [] and status(web, "b2@example.org") == "bounced"


ACTIONS = (
    "signup",
    "leave",
    "import_active",
    "api_pending",
    "confirm_old",
    "confirm_new",
    "bounce",
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=10))
def test_only_the_persons_own_confirmation_undoes_a_leave(
    runtime: FixedClockRuntime, steps: list[str]
) -> None:
    """Whatever operators, strangers and old links do, a suppressed address is never activated
    except by a confirmation signed after it left, a bounced one never, and it gets no mail."""
    from publisher.errors import SuppressedError
    from publisher.pipeline.subscribers import add_subscriber
    from publisher.pipeline.subscription import confirm, signup
    from publisher.store import outbox as ob

    email = f"p{next(_COUNTER)}@example.org"
    t = runtime.now()
    left_at: datetime | None = None
    dead = False
    for step in steps:
        t += timedelta(minutes=1)
        with runtime.session() as s:
            sub = get_by_email(s, email=email)
            before = None if sub is None else sub.status
            mails = len(ob.messages_of(s, subscriber_id=sub.id)) if sub and sub.id else 0
            if step == "signup":
                signup(s, email=email, regions=["gt"], ip="", form_version="t", now=t)
            elif step == "leave" and sub is not None:
                leave(s, subscriber=sub, ip="", now=t)
                left_at = t
            elif step in ("import_active", "api_pending"):
                try:
                    add_subscriber(
                        s, email=email, regions=["gt"], confirmed=step == "import_active",
                        locale="en", tree=runtime.tree, now=t,
                    )  # fmt: skip
                except SuppressedError:
                    assert left_at is not None or dead
            elif step.startswith("confirm") and sub is not None:
                old = (left_at or t) - timedelta(days=1)
                signed = old if step == "confirm_old" else t + timedelta(seconds=1)
                confirm(s, subscriber=sub, ip="", now=t, known=runtime.tree, signed=signed)
                if step == "confirm_new" and not dead:
                    left_at = None
            elif step == "bounce" and sub is not None and sub.id is not None:
                record(s, worker_id="w", updates=[], now=t, bounced=[sub.id])
                suppress(s, email=email, reason=SuppressionReason.hard_bounce, now=t)
                dead = True
            after = get_by_email(s, email=email)
            now_mails = len(ob.messages_of(s, subscriber_id=after.id)) if after and after.id else 0
        became_active = after is not None and after.status == "active" and before != "active"
        if became_active:
            assert not dead, steps
            assert left_at is None, steps
        if dead:
            assert now_mails == mails, steps
