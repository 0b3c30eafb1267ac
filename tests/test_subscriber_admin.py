"""The admins' subscriber queries and rules, on SQLite and PostgreSQL: search, a person's record,
the export (CSV injection neutralised), the suppression list, lifting a bounce, migration 0019."""

from __future__ import annotations

import csv
import importlib.util
import io
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session

from publisher import migrations
from publisher.errors import SuppressedError
from publisher.models import (
    BounceEvent,
    BounceReport,
    Delivery,
    Digest,
    SubscriberStatus,
    SuppressionReason,
)
from publisher.pipeline.subscriber_export import HEADER, csv_lines, export_csv, neutralise
from publisher.pipeline.subscribers import (
    SubscriberImportReport,
    clear_bounce,
    erase_subscriber,
    import_subscriber_rows,
    read_subscriber_rows,
)
from publisher.pipeline.subscription import confirm, signup
from publisher.runtime import Runtime
from publisher.store import subscriber_admin as admin
from publisher.store import subscribers as store
from publisher.store.subscriber_admin import ExportLine
from tests.conftest import FIXED_NOW

ACTIVE, PENDING = SubscriberStatus.active, SubscriberStatus.pending
ADDRESSES = [
    "maria.lopez@example.org", "Mario@example.org", "ana@example.org", "m_x@example.org",
    "m%y@example.org", "=cmd@example.org", "zoe@maria.example.net",
]  # fmt: skip


def _fill(rt: Runtime) -> dict[str, int]:
    ids = {}
    with rt.session() as session:
        for i, email in enumerate(ADDRESSES):
            status = PENDING if i % 3 == 2 else ACTIVE
            sub, _ = store.add_or_update(
                session, email=email, regions=["gt", "sv"][: 1 + i % 2], status=status,
                now=FIXED_NOW + timedelta(minutes=i),
            )  # fmt: skip
            assert sub.id is not None
            ids[email] = sub.id
    return ids


def test_search_prefix_contains_status_and_keyset(runtime: Runtime) -> None:
    ids = _fill(runtime)
    with runtime.session() as session:
        found = admin.search(session, text="MAR")
        assert [r.email for r in found] == ["Mario@example.org", "maria.lopez@example.org"]
        assert found[1].regions == ("gt",) and found[0].regions == ("gt", "sv")
        # LIKE's wildcards are plain characters in a search.
        assert [r.email for r in admin.search(session, text="m_")] == ["m_x@example.org"]
        assert [r.email for r in admin.search(session, text="m%")] == ["m%y@example.org"]
        contains = admin.search(session, text="maria", match="contains")
        assert [r.email for r in contains] == ["zoe@maria.example.net", "maria.lopez@example.org"]
        pending = admin.search(session, status=PENDING)
        assert {r.email for r in pending} == {ADDRESSES[2], ADDRESSES[5]}
        everyone = admin.search(session, limit=3)
        assert [r.id for r in everyone] == sorted(ids.values(), reverse=True)[:3]
        rest = admin.search(session, before_id=everyone[-1].id, limit=100)
        assert [r.id for r in everyone + rest] == sorted(ids.values(), reverse=True)
        assert admin.search(session, text="nobody") == []
        assert admin.search(session, text="\u202emaria") == []


def test_a_persons_record_deliveries_bounces_and_outbox(runtime: Runtime) -> None:
    ids = _fill(runtime)
    sid = ids["ana@example.org"]
    with runtime.session() as session:
        digest = Digest(
            region="gt", week="2026-W47", window_start=FIXED_NOW, window_end=FIXED_NOW,
            created=FIXED_NOW,
        )  # fmt: skip
        session.add(digest)
        session.flush()
        row = Delivery(digest_id=digest.id or 0, subscriber_id=sid, state="sent")
        session.add(row)
        report = BounceReport(key="k1", source="smtp", received=FIXED_NOW)
        session.add(report)
        session.flush()
        session.add(
            BounceEvent(
                report_id=report.id or 0, delivery_id=row.id or 0, subscriber_id=sid,
                kind="hard", status="5.1.1", diagnostic="no such user", at=FIXED_NOW,
            )
        )  # fmt: skip
    with runtime.session() as session:
        lines = admin.recent_deliveries(session, subscriber_id=sid)
        assert [(d.week, d.regions, d.state) for d in lines] == [("2026-W47", ("gt",), "sent")]
        assert [b.diagnostic for b in admin.bounce_events(session, subscriber_id=sid)] == [
            "no such user"
        ]
        assert admin.recent_deliveries(session, subscriber_id=ids["Mario@example.org"]) == []


def test_export_pages_are_keyset_and_complete(runtime: Runtime) -> None:
    ids = _fill(runtime)
    with runtime.session() as session:
        chunks = list(export_csv(lambda after: admin.export_page(session, after_id=after, limit=2)))
    assert len(chunks) == 1 + 4  # header + ceil(7 / 2) pages
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    assert tuple(rows[0]) == HEADER
    assert [r[0] for r in rows[1:]] == [neutralise(e) for e in sorted(ids, key=lambda e: ids[e])]
    assert "'=cmd@example.org" in [r[0] for r in rows]
    by_email = {r[0]: r for r in rows[1:]}
    assert by_email["Mario@example.org"][1:4] == ["gt sv", "active", "en"]
    with runtime.session() as session:
        active = admin.export_page(session, status=ACTIVE)
    assert {line.status for line in active} == {"active"}


@given(st.text(max_size=30))
def test_no_exported_cell_starts_like_a_formula(text: str) -> None:
    line = ExportLine(
        id=1, email=text, regions=(text,), status=text, locale=text, created=FIXED_NOW,
        confirmed=None,
    )  # fmt: skip
    for row in csv.reader(io.StringIO(csv_lines([line]), newline="")):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
            if cell:
                assert cell in (neutralise(text), FIXED_NOW.isoformat())


def test_suppression_list_newest_first_by_keyset(runtime: Runtime) -> None:
    with runtime.session() as session:
        for i in range(5):
            reason = SuppressionReason.hard_bounce if i % 2 else SuppressionReason.unsubscribed
            store.suppress(
                session, email=f"s{i}@example.org", reason=reason,
                now=FIXED_NOW + timedelta(hours=i // 2),
            )  # fmt: skip
    with runtime.session() as session:
        first = admin.suppressions(session, limit=2)
        rest = admin.suppressions(session, before=(first[-1].created, first[-1].email_hash))
        everything = first + rest
        assert len(everything) == 5 and len({s.email_hash for s in everything}) == 5
        keys = [(s.created, s.email_hash) for s in everything]
        assert keys == sorted(keys, reverse=True)
        bounces = admin.suppressions(session, reason=SuppressionReason.hard_bounce)
        assert len(bounces) == 2


def test_only_a_bounce_can_be_lifted_and_the_person_must_confirm(runtime: Runtime) -> None:
    ids = _fill(runtime)
    address = "ana@example.org"
    later = FIXED_NOW + timedelta(days=1)
    with runtime.session() as session:
        store.set_status(session, subscriber_id=ids[address], status="bounced", now=FIXED_NOW)
        store.suppress(session, email=address, reason=SuppressionReason.hard_bounce, now=FIXED_NOW)
        store.suppress(
            session, email="mario@example.org", reason=SuppressionReason.complaint, now=FIXED_NOW
        )
        store.suppress(session, email="gone@example.org", reason="erased", now=FIXED_NOW)
    with runtime.session() as session:
        assert not clear_bounce(session, email="mario@example.org", now=later)
        assert not clear_bounce(session, email="gone@example.org", now=later)
        assert not clear_bounce(session, email="never@example.org", now=later)
        assert clear_bounce(session, email=address, now=later)
        assert not clear_bounce(session, email=address, now=later)  # once
    with runtime.session() as session:
        assert store.suppression_reason(session, email=address) == "unsubscribed"
        assert store.suppression_reason(session, email="mario@example.org") == "complaint"
        sub = store.get_by_email(session, email=address)
        assert sub is not None and sub.status == "unsubscribed"
        # Still nothing brings it back but the person: an operator add is refused...
        with pytest.raises(SuppressedError):
            store.add_or_update(session, email=address, regions=["gt"], status=ACTIVE, now=later)
    with runtime.session() as session:
        # ...while their own signup and confirmation do.
        assert (
            signup(session, email=address, regions=["gt"], ip="", form_version="t", now=later)
            is not None
        )
        sub = store.get_by_email(session, email=address)
        assert sub is not None
        assert confirm(session, subscriber=sub, ip="", now=later, known={"gt"}, signed=later)
    with runtime.session() as session:
        sub = store.get_by_email(session, email=address)
        assert sub is not None and sub.status == "active"
        assert store.suppression_reason(session, email=address) is None


def test_an_erased_address_that_bounced_stays_hash_only(runtime: Runtime) -> None:
    with runtime.session() as session:
        store.add_or_update(session, email="x@example.org", regions=["gt"], now=FIXED_NOW)
        store.suppress(session, email="x@example.org", reason="hard_bounce", now=FIXED_NOW)
        assert erase_subscriber(session, email="x@example.org", now=FIXED_NOW)
        assert clear_bounce(session, email="x@example.org", now=FIXED_NOW)
        assert store.suppression_reason(session, email="x@example.org") == "erased"
        assert store.get_by_email(session, email="x@example.org") is None


def _run_0019(rt: Runtime, step: str) -> None:
    """One direction of migration 0019 on the live schema (0019 joins two heads, so Alembic's
    relative steps are ambiguous there; the functions themselves are what is tested)."""
    path = Path(migrations.__file__).parent / "versions" / "0019_console_subscriber_search.py"
    spec = importlib.util.spec_from_file_location("migration_0019", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with rt.engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        getattr(module, step)()


def test_migration_0019_down_and_up(runtime: Runtime) -> None:
    _fill(runtime)
    _run_0019(runtime, "downgrade")
    names = {i["name"] for i in sa.inspect(runtime.engine).get_indexes("suppressions")}
    assert "ix_suppressions_created" not in names
    _run_0019(runtime, "upgrade")
    inspector = sa.inspect(runtime.engine)
    assert "ix_suppressions_created" in {i["name"] for i in inspector.get_indexes("suppressions")}
    if runtime.engine.dialect.name == "postgresql":
        with runtime.engine.connect() as conn:
            found = conn.execute(
                sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
                {"n": "ix_subscribers_email_pattern"},
            ).scalar_one()
        assert "text_pattern_ops" in found
        with runtime.engine.connect() as conn:
            trigram = conn.execute(
                sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
                {"n": "ix_subscribers_email_trigram"},
            ).scalar_one()
        assert "gin_trgm_ops" in trigram
    with runtime.session() as session:
        assert len(admin.search(session, text="mar")) == 2


def _import(rt: Runtime, body: str) -> tuple[SubscriberImportReport, int]:
    statements = []

    def count(*_args: object) -> None:
        statements.append(1)

    sa.event.listen(rt.engine, "before_cursor_execute", count)
    try:
        with rt.session() as session:
            rows = read_subscriber_rows(io.StringIO(body), source="up.csv", tree=rt.tree)
            report = import_subscriber_rows(session, rows=rows, source="up.csv", now=FIXED_NOW)
    finally:
        sa.event.remove(rt.engine, "before_cursor_execute", count)
    return report, len(statements)


def test_a_reimport_costs_a_few_statements_and_changes_only_what_is_new(runtime: Runtime) -> None:
    lines = [f"r{i}@example.org,gt,pending,en" for i in range(200)]
    body = "email,regions,status,locale\n" + "\n".join(lines) + "\n"
    report, _ = _import(runtime, body)
    assert report.added == 200
    again, statements = _import(runtime, body)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 200)
    assert statements < 15  # not one query per line
    changed = body.replace("r1@example.org,gt,pending", "r1@example.org,gt sv,pending")
    changed = changed.replace("r2@example.org,gt,pending", "r2@example.org,gt,active")
    changed += "r3@example.org,hn,pending,en\nr3@example.org,hn,pending,en\n"  # a duplicate line
    third, _ = _import(runtime, changed)
    assert (third.added, third.updated, third.unchanged) == (0, 3, 199)
    with runtime.session() as session:
        assert store.regions_of(session, subscriber_id=_id(session, "r1@example.org")) == [
            "gt", "sv",
        ]  # fmt: skip
        r2 = store.get_by_email(session, email="r2@example.org")
        assert r2 is not None and r2.status == "active"
        assert store.regions_of(session, subscriber_id=_id(session, "r3@example.org")) == [
            "gt", "hn",
        ]  # fmt: skip


def _id(session: Session, email: str) -> int:
    sub = store.get_by_email(session, email=email)
    assert sub is not None and sub.id is not None
    return sub.id
