"""A fire's frozen digests: on PostgreSQL each row is written once, whole (its id reserved
first, since the web copy's link holds it); on SQLite it goes in empty and gets its bodies. On
both, a digest another process made first for the same region set and window is the one used."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from publisher.models import Digest, Edition
from publisher.pipeline import edition_writer
from publisher.pipeline.editions import fire_editions
from publisher.store import edition_digests as batches
from tests.conftest import FixedClockRuntime
from tests.edition_support import MONDAY, add_item, add_reader, ledger
from tests.test_editions import FRIDAY


@contextmanager
def statements(rt: FixedClockRuntime) -> Iterator[list[str]]:
    """The SQL statements sent while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    sa.event.listen(rt.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(rt.engine, "before_cursor_execute", record)


def test_each_digest_is_written_with_a_link_to_itself(runtime: FixedClockRuntime) -> None:
    add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    add_item(runtime, "Honduras road", ["hn"], published=FRIDAY, arrives=FRIDAY)
    for n, regions in enumerate([["gt"], ["hn"], ["gt", "hn"]]):
        add_reader(runtime, f"r{n}@example.org", regions)
    runtime.fixed_now = MONDAY
    with statements(runtime) as seen:
        report = fire_editions(runtime, now=MONDAY, zone=None, runner="test")
    assert report.queued == 3 and len(report.digest_ids) == 3
    updates = [s for s in seen if re.match(r"\s*UPDATE digests\b", s)]
    if runtime.engine.dialect.name == "postgresql":
        assert updates == []  # ids reserved: each row inserted whole, never rewritten
    else:
        assert len(updates) == 1  # one executemany of the bodies, once the ids are known
    with runtime.session() as session:
        digests = list(session.exec(select(Digest)))
    assert sorted(d.id for d in digests) == sorted(report.digest_ids)  # type: ignore[type-var]
    for digest in digests:
        assert digest.subject.startswith("Your news:") and digest.html and digest.text
        (token,) = set(re.findall(r"/editions/([A-Za-z0-9_.-]+)", digest.text))
        assert runtime.tokens.read_edition(token) == (digest.id, "en")


def test_a_digest_another_process_made_first_is_used(
    runtime: FixedClockRuntime, monkeypatch: Any
) -> None:
    """Between this fire's reading and its insert, another process commits the digest of the
    same region set and window: the fire keeps theirs (its reserved id, if any, stays unused)
    and queues its reader for it; nobody's edition names a digest that does not exist."""
    add_item(runtime, "Guatemala shelter", ["gt"], published=FRIDAY, arrives=FRIDAY)
    reader = add_reader(runtime, "r@example.org", ["gt"])
    runtime.fixed_now = MONDAY
    real_add = batches.add_digests
    theirs: list[int] = []

    def first_elsewhere(session: Any, rows: Any) -> Any:
        with runtime.session() as other:  # another process's transaction, committed first
            row = {k: v for k, v in rows[0].items() if k != "id"}
            row.update(placeholder_key="theirs0000000000000a", subject="Their subject",
                       html="<p>theirs</p>", text="theirs")  # fmt: skip
            other.execute(sa.insert(Digest), [row])
            theirs.append(int(other.exec(sa.select(Digest.id)).scalar_one()))
        return real_add(session, rows)

    monkeypatch.setattr(edition_writer.batches, "add_digests", first_elsewhere)
    report = fire_editions(runtime, now=MONDAY, zone=None, runner="test")
    assert report.digest_ids == theirs and report.queued == 1
    with runtime.session() as session:
        assert [d.subject for d in session.exec(select(Digest))] == ["Their subject"]
        (edition,) = session.exec(select(Edition).where(Edition.subscriber_id == reader))
    assert edition.digest_id == theirs[0]
    assert [(d.digest_id, d.subscriber_id) for d in ledger(runtime)] == [(theirs[0], reader)]


def _fire_sets(runtime: FixedClockRuntime, sets: list[list[str]]) -> list[int]:
    """One reader per region set, fired on MONDAY; the digest ids in order."""
    for slug in {s for regions in sets for s in regions}:
        add_item(runtime, f"News of {slug}", [slug], published=FRIDAY, arrives=FRIDAY)
    for n, regions in enumerate(sets):
        add_reader(runtime, f"r{n}@example.org", regions)
    runtime.fixed_now = MONDAY
    report = fire_editions(runtime, now=MONDAY, zone=None, runner="test")
    return sorted(report.digest_ids)


def test_digests_are_read_ahead_in_their_own_language_skipping_skipped_ones(
    runtime: FixedClockRuntime,
) -> None:
    ids = _fire_sets(runtime, [["gt"], ["hn"], ["sv"], ["gt", "hn"], ["gt", "sv"]])
    assert len(ids) == 5
    with runtime.session() as session:
        third = session.get(Digest, ids[2])
        assert third is not None
        skipped = {k: v for k, v in third.model_dump().items() if k != "id"}
        skipped.update(status="skipped", regions="zz", week="2026-W40")
        session.execute(sa.insert(Digest), [skipped])
        session.execute(sa.update(Digest).where(col(Digest.id) == ids[2]).values(status="skipped"))
    with runtime.session() as session:
        alone = batches.digests_to_send(session, [(ids[0], "es")])
        ahead = batches.digests_to_send(session, [(ids[0], "es")], ahead=3)
        last = batches.digests_to_send(session, [(ids[-1], "en")], ahead=3)
    assert list(alone) == [(ids[0], "es")]
    # asked for: in the language asked; read ahead: the next sendable ones in their own
    assert list(ahead) == [(ids[0], "es"), (ids[1], "en"), (ids[3], "en"), (ids[4], "en")]
    assert all(ahead[(d, loc)][0].id == d for d, loc in ahead)
    assert list(last) == [(ids[-1], "en")]  # nothing sendable after the last: none read


def test_a_sender_loads_the_next_chunks_digests_with_this_ones(
    runtime: FixedClockRuntime,
) -> None:
    """Chunks claimed one after another, each with the next digest: one read of digests in
    all, and each message is still its own digest's."""
    from datetime import UTC, datetime

    from publisher.delivery.ledger import Claimed, Recipient
    from publisher.pipeline.send import digest_messenger

    ids = _fire_sets(runtime, [["gt"], ["hn"], ["sv"], ["gt", "hn"]])
    messenger = digest_messenger(runtime)
    with statements(runtime) as seen:
        built = []
        for n, digest_id in enumerate(ids, start=1):
            claimed = Claimed(n, digest_id, n, 1, datetime(2026, 12, 1, tzinfo=UTC), f"<{n}@x>")
            recipient = Recipient(claimed, f"r{n}@example.org", f"{n:032x}")
            messenger.prepare([recipient])
            built.append(bytes(messenger.build(recipient)))
    assert len([s for s in seen if re.search(r"\bFROM digests\b", s)]) == 1
    assert messenger.loads == len(ids)
    for digest_id, message in zip(ids, built, strict=True):
        text = next(p for p in email.message_from_bytes(message).walk()
                    if p.get_content_type() == "text/plain")  # fmt: skip
        body = bytes(text.get_payload(decode=True)).decode()
        (token,) = set(re.findall(r"/editions/([A-Za-z0-9_.-]+)", body))
        assert runtime.tokens.read_edition(token) == (digest_id, "en")


def test_a_digest_read_ahead_that_cannot_be_built_does_not_fail_the_chunk(
    runtime: FixedClockRuntime,
) -> None:
    """The digest after this chunk's names a lost fragment: this chunk still loads in one
    go, and the broken one is left to fail alone when its own readers come."""
    from datetime import UTC, datetime

    from publisher.delivery.ledger import Claimed, Recipient
    from publisher.email.fragments import named
    from publisher.models import EditionFragment
    from publisher.pipeline.send import digest_messenger

    first, broken = _fire_sets(runtime, [["gt"], ["hn"]])
    with runtime.session() as session:
        a, b = session.get(Digest, first), session.get(Digest, broken)
        assert a is not None and b is not None
        gone = set(named(b.html, b.placeholder_key)) - set(named(a.html, a.placeholder_key))
        assert gone
        session.execute(sa.delete(EditionFragment).where(col(EditionFragment.sha).in_(gone)))
    messenger = digest_messenger(runtime)
    claimed = Claimed(1, first, 1, 1, datetime(2026, 12, 1, tzinfo=UTC), "<1@x>")
    recipient = Recipient(claimed, "r1@example.org", f"{1:032x}")
    messenger.prepare([recipient])  # no exception: the chunk's own digest is loaded
    assert messenger.loads == 1 and bytes(messenger.build(recipient))
    with pytest.raises(LookupError, match="not stored"):
        messenger.mail(broken)


def test_digest_rows_keep_every_character_and_instant(runtime: FixedClockRuntime) -> None:
    """Rows go to PostgreSQL as one JSON document: quotes, backslashes, braces, line and
    paragraph separators, bidi controls, emoji and CR/LF come back as they went in, and an
    aware time in another zone is stored as the same instant."""
    from datetime import timedelta, timezone

    body = 'a "q" \\ \\" {x},{y} \u2028\u2029 \u202e\u202c 🗞 \r\n</p> \'s [1,2] null'
    cutoff = MONDAY.astimezone(timezone(timedelta(hours=-6)))  # Central America
    row = {"region": "gt", "regions": "gt", "week": "2026-W48", "status": "assembled",
           "window_start": cutoff - timedelta(days=7), "window_end": cutoff, "item_ids": "[1]",
           "created": cutoff, "locale": "es", "placeholder_key": "0123456789abcdef0123",
           "subject": body[:300], "html": body, "text": body}  # fmt: skip
    with runtime.session() as session:
        ids = batches.reserve_digest_ids(session, 1)
        if ids is not None:
            row["id"] = ids[0]
        made = batches.add_digests(session, [row])
    ((key, stored),) = made.items()
    assert key == ("gt", "2026-W48", MONDAY - timedelta(days=7), MONDAY)
    assert stored.created == MONDAY and stored.locale == "es"
    with runtime.session() as session:
        digest = session.get(Digest, stored.id)
        assert digest is not None
        assert (digest.html, digest.text, digest.subject) == (body, body, body)
        assert digest.window_end == MONDAY


def test_a_send_builds_the_digests_its_fire_froze_without_reading_them_back(
    runtime: FixedClockRuntime,
) -> None:
    """The fire hands its frozen digests to the messenger of the same send: each message is
    byte for byte the one built from the stored row, no digest row is read for the digests'
    own language, and a reader of another language still gets the stored rendition."""
    from datetime import UTC, datetime

    from publisher.delivery.ledger import Claimed, Recipient
    from publisher.pipeline.send import digest_messenger

    sets = [["gt"], ["hn"], ["gt", "hn"]]
    for slug in ("gt", "hn"):
        add_item(runtime, f"News of {slug}", [slug], published=FRIDAY, arrives=FRIDAY)
    for n, regions in enumerate(sets):
        add_reader(runtime, f"r{n}@example.org", regions)
    add_reader(runtime, "es@example.org", ["gt"], locale="es")
    runtime.fixed_now = MONDAY
    report = fire_editions(runtime, now=MONDAY, zone=None, runner="test", keep_frozen=True)
    ids = sorted(report.digest_ids)
    assert sorted(report.frozen) == ids and len(ids) == 3
    assert fire_editions(runtime, now=MONDAY, zone=None, runner="test").frozen == {}

    def recipient(n: int, digest_id: int, locale: str = "en") -> Recipient:
        claimed = Claimed(n, digest_id, n, 1, datetime(2026, 12, 1, tzinfo=UTC), f"<{n}@x>",
                          locale)  # fmt: skip
        return Recipient(claimed, f"r{n}@example.org", f"{n:032x}")

    kept, stored = digest_messenger(runtime, frozen=report.frozen), digest_messenger(runtime)
    chunk = [recipient(n, d) for n, d in enumerate(ids, start=1)]
    with statements(runtime) as seen:
        kept.prepare(chunk[:1])  # the next ones come with the first, as read ahead
        assert kept.loads == len(ids)
        kept.prepare(chunk)
        from_fire = [bytes(kept.build(r)) for r in chunk]
    assert not [s for s in seen if re.search(r"\bFROM digests\b", s)]
    assert kept.loads == len(ids)
    stored.prepare(chunk)
    assert from_fire == [bytes(stored.build(r)) for r in chunk]
    spanish = recipient(9, ids[0], "es")
    with statements(runtime) as seen:
        kept.prepare([spanish])
    assert [s for s in seen if re.search(r"\bFROM digest_renditions\b", s)]
    message = email.message_from_bytes(bytes(kept.build(spanish)))
    assert message["Content-Language"] == "es"
