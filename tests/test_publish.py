"""The one publishing path: `digests send` and the scheduler share publish_week and its record,
and confirmations go through the one Mailer interface (here its in-memory form).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from email.utils import parsedate_to_datetime

from publisher.delivery.mailer import MemoryMailer
from publisher.models import DigestRun, SubscriberStatus
from publisher.pipeline.publish import QUEUED, publish_week, resolve_region
from publisher.pipeline.subscribers import queue_confirmations, send_confirmations
from publisher.store.schedule import get_run
from tests.conftest import FixedClockRuntime
from tests.delivery_data import add_subscribers, set_status
from tests.service_support import add_items_in_week, ledger

REGION = "central-america"


def _run(rt: FixedClockRuntime, week: str) -> DigestRun | None:
    with rt.session() as session:
        return get_run(session, region=REGION, week=week)


def test_an_operator_send_records_the_run(runtime: FixedClockRuntime) -> None:
    """(The scheduler no longer reads digest_runs: it fires editions per zone, see
    test_schedule_jobs.test_an_operator_send_first_then_the_scheduled_fire_sends_nothing_more.)"""
    runtime.fixed_now = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)  # before Monday's fire
    add_items_in_week(runtime, "2026-W48", REGION)
    add_subscribers(runtime, 3)
    region = resolve_region(runtime, REGION.upper())
    assert region.slug == REGION and region.name_en == "Central America"

    done = publish_week(runtime, region, week="2026-W48", now=runtime.now(), runner="cli")

    assert (done.status, done.queued) == (QUEUED, 3)
    run = _run(runtime, "2026-W48")
    assert run is not None and run.finished is not None and run.queued == 3
    assert len(ledger(runtime)) == 3


def test_an_operator_send_again_queues_who_joined_since(runtime: FixedClockRuntime) -> None:
    runtime.fixed_now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    add_items_in_week(runtime, "2026-W48", REGION)
    add_subscribers(runtime, 2)
    region = resolve_region(runtime, REGION)
    publish_week(runtime, region, week="2026-W48", now=runtime.now(), runner="cli")
    add_subscribers(runtime, 2, prefix="late")

    again = publish_week(runtime, region, week="2026-W48", now=runtime.now(), runner="cli")

    assert (again.status, again.queued) == (QUEUED, 2)
    assert len(ledger(runtime)) == 4
    run = _run(runtime, "2026-W48")
    assert run is not None and run.queued == 2  # the record stays the first run's


def test_a_dry_run_records_nothing(runtime: FixedClockRuntime) -> None:
    add_items_in_week(runtime, "2026-W48", REGION)
    add_subscribers(runtime, 2)
    region = resolve_region(runtime, REGION)
    done = publish_week(
        runtime, region, week="2026-W48", now=runtime.now(), runner="cli", dry_run=True
    )
    assert done.queued == 2
    assert _run(runtime, "2026-W48") is None and ledger(runtime) == []


def test_confirmations_go_through_the_mailer_signed_by_the_runtime(
    runtime: FixedClockRuntime,
) -> None:
    subs = add_subscribers(runtime, 3)
    for sid, _ in subs[:2]:
        set_status(runtime, sid, SubscriberStatus.pending)  # the third stays active: no email
    mailer = MemoryMailer()

    with runtime.session() as session:
        queued = queue_confirmations(
            session, subscriber_ids=[s for s, _ in subs], now=runtime.now()
        )
    sent, failures = send_confirmations(runtime, mailer)

    assert queued == 2

    assert (sent, failures) == (2, [])
    assert [to for _, to, _ in mailer.sent] == [(email,) for _, email in subs[:2]]
    msg = message_from_bytes(mailer.sent[0][2], policy=default)
    assert parsedate_to_datetime(msg["Date"]) == runtime.now().replace(microsecond=0)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    token = re.search(r"/confirm/(\S+)", text)
    assert token and runtime.tokens.read("confirm", token.group(1), now=runtime.now())
