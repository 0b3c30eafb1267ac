"""Subscribers: addresses, signed links, the store on SQLite and PostgreSQL, CSV import, the CLI."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

from publisher.addresses import normalize_address, suppression_hash
from publisher.delivery.mailer import MemoryMailer
from publisher.errors import BadToken, InputError, SuppressedError
from publisher.models import (
    Consent,
    Delivery,
    Digest,
    Subscriber,
    SubscriberStatus,
    Subscription,
    Suppression,
)
from publisher.pipeline.subscribers import (
    export_subscriber,
    import_subscribers,
    queue_confirmations,
    send_confirmations,
)
from publisher.runtime import Runtime
from publisher.store import subscribers as store
from publisher.tokens import Tokens
from tests.conftest import FIXED_NOW
from tests.delivery_data import add_subscribers, set_status

ACTIVE, PENDING = SubscriberStatus.active, SubscriberStatus.pending


# --- addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("  Ann.Smith@Example.ORG ", "Ann.Smith@example.org"),
        ("x@bücher.de", "x@xn--bcher-kva.de"),
        ("o'brien+news@sub.example.org", "o'brien+news@sub.example.org"),
    ],
)
def test_addresses_are_normalised(given: str, stored: str) -> None:
    assert normalize_address(given) == stored


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("ann@example.org\r\nBcc: all@example.org", "line break"),
        ("ann@example.org\n", "line break"),
        ("ann\x00@example.org", "line break or NUL"),
        ("", "empty"),
        ("no-at-sign", "must have an @-sign"),
        ("ann@localhost", "not a valid email address"),
        ("ünï@example.org", "Internationalized characters before the @-sign"),
        ('"a b"@example.org', "Quoting"),
        ("Ann <ann@example.org>", "display name and angle brackets"),
        ("a" * 330 + "@example.org", "limit is 320"),
    ],
)
def test_bad_addresses_are_refused(given: str, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        normalize_address(given)


def test_suppression_hash_ignores_case_and_keeps_no_address() -> None:
    h = suppression_hash("Ann@Example.org")
    assert h == suppression_hash("ann@example.ORG")
    assert len(h) == 64 and int(h, 16) >= 0 and "ann" not in h


# --- tokens ------------------------------------------------------------------------------

KEY = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("purpose", ["confirm", "unsubscribe", "preferences"])
def test_token_round_trip_carries_only_the_key(purpose: str) -> None:
    tokens = Tokens(["k1"])
    token = tokens.make(purpose, KEY)
    assert tokens.read(purpose, token) == KEY
    payload = token.split(".")[0]
    assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) == KEY
    assert tokens.url("https://news.example.org", purpose, KEY).startswith(
        f"https://news.example.org/{purpose}/"
    )


def test_tokens_are_what_itsdangerous_makes() -> None:
    token = Tokens(["new", "old"]).make("unsubscribe", KEY)
    reference = URLSafeTimedSerializer(["old", "new"], salt="publisher.unsubscribe")
    assert reference.loads(token) == KEY


@settings(max_examples=200, deadline=None)
@given(
    digest_id=st.integers(min_value=0, max_value=2**62),
    language=st.text(max_size=20),
)
def test_edition_tokens_are_what_itsdangerous_makes(digest_id: int, language: str) -> None:
    """Signed by hand for speed (never compressed: zlib costs more than the rest): the
    serializer reads ours, and ours reads the serializer's, compressed or not."""
    tokens = Tokens(["new", "old"])
    reference = URLSafeSerializer(["old", "new"], salt="publisher.edition")
    assert reference.loads(tokens.edition(digest_id, language)) == [digest_id, language]
    if len(language) <= 16:
        assert tokens.read_edition(reference.dumps([digest_id, language])) == (
            digest_id,
            language,
        )


def test_wrong_purpose_forged_and_truncated_tokens_are_refused() -> None:
    tokens = Tokens(["k1"])
    token = tokens.make("unsubscribe", KEY)
    with pytest.raises(BadToken, match="confirm link is not valid"):
        tokens.read("confirm", token)
    with pytest.raises(BadToken):
        tokens.read("unsubscribe", token[:-1])
    with pytest.raises(BadToken):
        tokens.read("unsubscribe", token.split(".")[0])
    forged = Tokens(["someone-else"]).make("unsubscribe", KEY)
    with pytest.raises(BadToken):
        tokens.read("unsubscribe", forged)
    other = "fedcba9876543210fedcba9876543210"
    swapped = Tokens(["k1"]).make("unsubscribe", other).split(".")[0] + token[token.index(".") :]
    with pytest.raises(BadToken):
        tokens.read("unsubscribe", swapped)
    with pytest.raises(BadToken):
        tokens.read("unsubscribe", "")


@pytest.mark.parametrize(
    ("purpose", "ok_after", "expired_after"),
    [("confirm", 6, 8), ("unsubscribe", 89, 91), ("preferences", 89, 91)],
)
def test_tokens_expire(purpose: str, ok_after: int, expired_after: int) -> None:
    from datetime import UTC, datetime

    tokens = Tokens(["k1"])
    token = tokens.make(purpose, KEY)
    now = datetime.now(UTC)
    assert tokens.read(purpose, token, now=now + timedelta(days=ok_after)) == KEY
    with pytest.raises(BadToken, match="expired"):
        tokens.read(purpose, token, now=now + timedelta(days=expired_after))


def test_key_rotation_newest_signs_all_verify() -> None:
    old_token = Tokens(["old"]).make("confirm", KEY)
    rotated = Tokens(["new", "old"])
    assert rotated.read("confirm", old_token) == KEY
    new_token = rotated.make("confirm", KEY)
    assert Tokens(["new"]).read("confirm", new_token) == KEY
    with pytest.raises(BadToken):
        Tokens(["old"]).read("confirm", new_token)


def test_tokens_refuse_addresses_as_payload() -> None:
    with pytest.raises(ValueError, match="never an address"):
        Tokens(["k"]).make("confirm", "ann@example.org")


# --- store -------------------------------------------------------------------------------


def test_add_or_update_creates_then_merges_case_insensitively(runtime: Runtime) -> None:
    now = runtime.now()
    with runtime.session() as s:
        sub, created = store.add_or_update(s, email="Ann@Example.ORG", regions=["gt"], now=now)
        assert created and sub.email == "Ann@example.org" and sub.status == PENDING
        assert len(sub.key) == 32 and "@" not in sub.key
        again, created2 = store.add_or_update(
            s, email="ann@example.org", regions=["gt", "caribbean"], status=ACTIVE, now=now
        )
        assert (again.id, created2) == (sub.id, False)
        assert again.status == ACTIVE and again.confirmed == now
        assert store.regions_of(s, subscriber_id=sub.id or 0) == ["caribbean", "gt"]
        assert store.get_by_email(s, email="ANN@EXAMPLE.ORG") is again
        assert store.get_by_key(s, key=sub.key) is again
        assert store.get_by_email(s, email="not an address") is None


def test_addresses_differing_in_case_cannot_both_be_stored(runtime: Runtime) -> None:
    with runtime.session() as s:
        store.add_or_update(s, email="ann@example.org", regions=["gt"], now=runtime.now())
    with runtime.session() as s:
        s.add(Subscriber(email="ANN@example.org", key="f" * 32, created=runtime.now()))
        with pytest.raises(sa.exc.IntegrityError):
            s.flush()
        s.rollback()


def test_a_concurrent_signup_of_the_same_address_is_read_back(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    with runtime.session() as s:
        winner, _ = store.add_or_update(
            s, email="ann@example.org", regions=["gt"], now=runtime.now()
        )
    real = store.get_by_email
    calls = iter([None])  # the first look-up misses, as if the other insert had not committed yet
    monkeypatch.setattr(
        store, "get_by_email", lambda s, *, email: next(calls, None) or real(s, email=email)
    )
    with runtime.session() as s:
        sub, created = store.add_or_update(
            s, email="Ann@example.org", regions=["mx"], now=runtime.now()
        )
        assert (sub.id, created) == (winner.id, False)
        assert store.regions_of(s, subscriber_id=sub.id or 0) == ["gt", "mx"]


def test_status_changes_are_stamped(runtime: Runtime) -> None:
    now, later = runtime.now(), runtime.now() + timedelta(days=3)
    with runtime.session() as s:
        sub, _ = store.add_or_update(s, email="ann@example.org", regions=["gt"], now=now)
        sid = sub.id or 0
        store.set_status(s, subscriber_id=sid, status="active", now=now)
        assert (sub.confirmed, sub.left) == (now, None)
        store.set_status(s, subscriber_id=sid, status="unsubscribed", now=later)
        assert (sub.status, sub.confirmed, sub.left) == ("unsubscribed", now, later)
        # an import never brings back someone who left: it is refused and reported
        with pytest.raises(SuppressedError, match="suppressed"):
            store.add_or_update(
                s, email="ann@example.org", regions=["gt"], status=ACTIVE, now=later
            )
        assert sub.status == "unsubscribed"
        store.add_or_update(
            s, email="ann@example.org", regions=["gt"], status=PENDING, now=later, reconsent=True
        )
        assert (sub.status, sub.left) == ("pending", None)
        with pytest.raises(ValueError):
            store.set_status(s, subscriber_id=sid, status="deleted", now=later)


def _populate(rt: Runtime) -> dict[str, int]:
    now = rt.now()
    ids = {}
    with rt.session() as s:
        for name, regions, status in [
            ("a", ["central-america"], ACTIVE),
            ("b", ["central-america", "caribbean"], ACTIVE),
            ("c", ["central-america"], PENDING),
            ("d", ["gt"], ACTIVE),
            ("e", ["central-america"], ACTIVE),
            ("f", ["caribbean"], ACTIVE),
        ]:
            sub, _ = store.add_or_update(
                s, email=f"{name}@example.org", regions=regions, status=status, now=now
            )
            ids[name] = sub.id or 0
        store.set_status(s, subscriber_id=ids["e"], status="bounced", now=now)
    return ids


def test_recipient_ids_are_the_active_followers_of_exactly_the_region_in_keyset_pages(
    runtime: Runtime,
) -> None:
    ids = _populate(runtime)
    with runtime.session() as s:
        first = store.recipient_ids(s, region="central-america", limit=1)
        rest = store.recipient_ids(s, region="central-america", after_id=first[-1], limit=10)
        assert first + rest == [ids["a"], ids["b"]]
        assert store.recipient_ids(s, region="caribbean", limit=10) == [ids["b"], ids["f"]]
        assert store.recipient_ids(s, region="gt", limit=10) == [ids["d"]]
        assert store.recipient_ids(s, region="americas", limit=10) == []


def test_list_and_counts(runtime: Runtime) -> None:
    ids = _populate(runtime)
    with runtime.session() as s:
        listed = store.list_subscribers(s, region="central-america")
        assert [x.id for x in listed] == [ids[n] for n in "abce"]
        assert [x.id for x in store.list_subscribers(s, status="pending")] == [ids["c"]]
        page = store.list_subscribers(s, after_id=ids["b"], limit=2)
        assert [x.id for x in page] == [ids["c"], ids["d"]]
        assert store.counts(s) == {
            "central-america": {"active": 2, "pending": 1, "bounced": 1},
            "caribbean": {"active": 2},
            "gt": {"active": 1},
        }
        assert store.status_counts(s) == {"active": 4, "pending": 1, "bounced": 1}
        assert store.set_regions(s, subscriber_id=ids["b"], regions=["mx"]) == ["mx"]
        assert store.regions_of(s, subscriber_id=ids["b"]) == ["mx"]


def test_erase_keeps_only_a_hash_and_the_ledger_rows(runtime: Runtime) -> None:
    now = runtime.now()
    with runtime.session() as s:
        sub, _ = store.add_or_update(s, email="Ann@Example.org", regions=["gt", "mx"], now=now)
        sid = sub.id or 0
        store.record_consent(
            s, subscriber_id=sid, action="signup", now=now, ip="192.0.2.1", regions=["gt"]
        )
        digest = Digest(region="gt", week="2026-W48", window_start=now, window_end=now, created=now)
        s.add(digest)
        s.flush()
        s.add(Delivery(digest_id=digest.id or 0, subscriber_id=sid, state="sent"))
    with runtime.session() as s:
        assert store.erase(s, email="ann@example.org", now=now)
        assert not store.erase(s, email="ann@example.org", now=now)
    with runtime.session() as s:
        assert s.get(Subscriber, sid) is None
        for table in (Subscription, Consent):
            assert s.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0
        # the ledger row stays for the digest's counts, detached from any future subscriber
        assert s.execute(sa.select(Delivery.subscriber_id)).scalars().all() == [-sid]
        (row,) = s.execute(sa.select(Suppression)).scalars().all()
        assert row.email_hash == suppression_hash("ann@example.org") and row.reason == "erased"
        assert store.is_suppressed(s, email="ANN@example.org")
        with pytest.raises(SuppressedError, match="erased at the person's request"):
            store.add_or_update(s, email="ann@example.org", regions=["gt"], now=now)
        back, created = store.add_or_update(
            s, email="ann@example.org", regions=["gt"], now=now, reconsent=True
        )
        assert created and store.deliveries_of(s, subscriber_id=back.id or 0) == []
        # back as pending, but still suppressed until their own confirmation (no import activates)
        assert store.is_suppressed(s, email="ann@example.org")


def test_bulk_add_and_existence_checks(runtime: Runtime) -> None:
    now = runtime.now()
    rows = [store.NewSubscriber(f"r{i}@example.org", ("gt", "mx"), ACTIVE) for i in range(2500)]
    with runtime.session() as s:
        ids = store.bulk_add(s, rows=rows, now=now)
        assert len(ids) == 2500 and ids == sorted(ids)
        found = store.existing_by_email(s, emails=["R7@example.org", "nobody@example.org"])
        assert list(found) == ["r7@example.org"]
        got = store.recipient_ids(s, region="mx", after_id=ids[99], limit=5)
        assert got == ids[100:105]


# --- import pipeline ---------------------------------------------------------------------


def write_csv(path: Path, text: str, *, bom: bool = False) -> str:
    path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8")
    return str(path)


GOOD_AND_BAD = """email,regions,status,locale
ann@example.org,central-america,active,en
Bob@Example.ORG,caribbean GT,,es
not-an-address,americas,,
carl@example.org,atlantis,,
dana@example.org,americas,weird,
erin@example.org,,,
ANN@example.org,mx,,
fay@example.org,americas,pending,de-DE-x
"""


def test_import_keeps_good_rows_and_reports_bad_ones_by_line(
    runtime: Runtime, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "subs.csv", GOOD_AND_BAD, bom=True)
    with runtime.session() as s:
        report = import_subscribers(s, path=path, tree=runtime.tree, now=runtime.now())
    assert (report.added, report.updated, report.unchanged) == (2, 1, 0)
    assert [str(e) for e in report.errors] == [
        f"{path}:4: not a valid email address ('not-an-address'): "
        "An email address must have an @-sign.",
        f"{path}:5: unknown region 'atlantis'; `publisher regions list` shows the slugs",
        f"{path}:6: status must be active or pending, not 'weird'",
        f"{path}:7: no regions given; name at least one region slug",
        f"{path}:9: locale must look like en or es-CL, not 'de-DE-x'",
    ]
    with runtime.session() as s:
        ann = store.get_by_email(s, email="ann@example.org")
        bob = store.get_by_email(s, email="bob@example.org")
        assert ann and bob and ann.id and bob.id
        assert (ann.status, store.regions_of(s, subscriber_id=ann.id)) == (
            "active",
            ["central-america", "mx"],
        )
        assert (bob.email, bob.status, bob.locale) == ("Bob@example.org", "pending", "es")
        assert store.regions_of(s, subscriber_id=bob.id) == ["caribbean", "gt"]
        assert report.pending_ids == [bob.id]
        assert [c.action for c in store.consents_of(s, subscriber_id=ann.id)] == [
            "import",
            "import",
        ]
    with runtime.session() as s:
        again = import_subscribers(s, path=path, tree=runtime.tree, now=runtime.now())
    assert (again.added, again.updated, again.unchanged, again.pending_ids) == (0, 0, 3, [])


def test_import_does_not_bring_back_an_erased_address(runtime: Runtime, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", "email,regions\nann@example.org,gt\nbob@example.org,gt\n")
    with runtime.session() as s:
        import_subscribers(s, path=path, tree=runtime.tree, now=runtime.now())
        assert store.erase(s, email="ANN@example.org", now=runtime.now())
    with runtime.session() as s:
        report = import_subscribers(s, path=path, tree=runtime.tree, now=runtime.now())
        assert [str(e) for e in report.errors] == [
            f"{path}:2: ann@example.org was erased at the person's request; "
            "only the person's own confirmation can bring it back; not imported"
        ]
        assert (report.added, report.unchanged) == (0, 1)
        assert store.get_by_email(s, email="ann@example.org") is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("mail,regions\nann@example.org,gt\n", r":1: header lacks column\(s\) email"),
        ("", ":1: header lacks"),
    ],
)
def test_import_refuses_a_file_without_the_columns(
    runtime: Runtime, tmp_path: Path, text: str, reason: str
) -> None:
    path = write_csv(tmp_path / "s.csv", text)
    with runtime.session() as s, pytest.raises(InputError, match=reason):
        import_subscribers(s, path=path, tree=runtime.tree, now=runtime.now())


def test_export_holds_everything_stored_about_the_person(runtime: Runtime) -> None:
    now = runtime.now()
    with runtime.session() as s:
        sub, _ = store.add_or_update(
            s, email="ann@example.org", regions=["gt"], status=ACTIVE, now=now
        )
        store.record_consent(
            s, subscriber_id=sub.id or 0, action="signup", now=now, ip="192.0.2.1", regions=["gt"]
        )
        digest = Digest(region="gt", week="2026-W48", window_start=now, window_end=now, created=now)
        s.add(digest)
        s.flush()
        s.add(
            Delivery(
                digest_id=digest.id or 0,
                subscriber_id=sub.id or 0,
                state="sent",
                sent_at=now,
                message_id="<m@x>",
            )
        )
    with runtime.session() as s:
        data = export_subscriber(s, email="ANN@example.org")
        assert export_subscriber(s, email="zed@example.org") is None
    assert data is not None
    assert data["subscriber"]["email"] == "ann@example.org"
    assert data["subscriber"]["confirmed"] == FIXED_NOW.isoformat()
    assert data["regions"] == ["gt"]
    assert data["consents"] == [
        {
            "action": "signup",
            "at": FIXED_NOW.isoformat(),
            "ip": "192.0.2.1",
            "regions": ["gt"],
            "form_version": "",
        }
    ]
    assert (
        data["deliveries"][0]["state"] == "sent" and data["deliveries"][0]["message_id"] == "<m@x>"
    )
    json.dumps(data)


# --- confirmations -----------------------------------------------------------------------


def test_confirmations_go_through_the_mailer_signed_by_the_runtime(runtime: Runtime) -> None:
    subs = add_subscribers(runtime, 3)
    for sid, _ in subs[:2]:
        set_status(runtime, sid, PENDING)  # the third stays active: no email
    mailer = MemoryMailer()

    with runtime.session() as session:
        queued = queue_confirmations(
            session, subscriber_ids=[s for s, _ in subs], now=runtime.now()
        )
    sent, failures = send_confirmations(runtime, mailer)

    assert queued == 2
    assert (sent, failures) == (2, [])
    assert [to for _, to, _ in mailer.sent] == [(address,) for _, address in subs[:2]]
    msg = email.message_from_bytes(mailer.sent[0][2], policy=email.policy.default)
    assert parsedate_to_datetime(msg["Date"]) == runtime.now().replace(microsecond=0)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    token = re.search(r"/confirm/(\S+)", text)
    assert token and runtime.tokens.read("confirm", token.group(1), now=runtime.now())


# --- the command line --------------------------------------------------------------------


def cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PUBLISHER_DATABASE_URL": f"sqlite:///{tmp / 'var' / 'publisher.db'}",
        "PUBLISHER_VAR_DIR": str(tmp / "var"),
        "PUBLISHER_FEEDS_DIR": str(tmp / "feeds"),
        "PUBLISHER_SMTP_URL": "",
        "PUBLISHER_SECRET_KEY": "",
        "PUBLISHER_BASE_URL": "https://news.example.org",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "publisher", *args],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def mailbox(tmp: Path) -> list[email.message.EmailMessage]:
    folder = tmp / "var" / "mail" / "new"
    files = sorted(folder.iterdir()) if folder.exists() else []
    return [
        email.message_from_bytes(f.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for f in files
    ]


def test_cli_add_import_list_export_erase(tmp_path: Path) -> None:
    assert cli(tmp_path, "db", "upgrade").returncode == 0
    added = cli(
        tmp_path,
        "subscribers",
        "add",
        "Ann@Example.org",
        "--region",
        "central-america",
        "--region",
        "GT",
    )
    assert added.returncode == 0, added.stderr
    assert "added subscriber 1 Ann@example.org (pending) [central-america gt]" in added.stdout
    assert "confirmation emails sent: 1" in added.stdout
    (confirm,) = mailbox(tmp_path)
    assert confirm["To"] == "Ann@example.org"
    assert confirm["Subject"] == "Confirm your subscription to Regional News"
    text = confirm.get_body(("plain",)).get_content()
    assert "Central America" in text and "Guatemala" in text
    link = next(w for w in text.split() if w.startswith("https://news.example.org/confirm/"))
    secret = (tmp_path / "var" / "secret_key").read_text().strip()
    token = link.rsplit("/", 1)[1]
    key = Tokens([secret]).read("confirm", token)
    assert len(key) == 32

    csv_path = write_csv(tmp_path / "s.csv", GOOD_AND_BAD)
    imported = cli(tmp_path, "subscribers", "import", csv_path, "--no-send")
    assert imported.returncode == 1
    assert "added 1, updated 2, already present 0, skipped 5" in imported.stdout
    assert imported.stderr.splitlines()[0].startswith(f"{csv_path}:4: not a valid email address")
    assert len(mailbox(tmp_path)) == 1

    listed = cli(tmp_path, "subscribers", "list", "--region", "central-america")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["1\tAnn@example.org\tactive\tcentral-america gt mx"]
    assert cli(tmp_path, "subscribers", "list", "--status", "nope").returncode != 0

    exported = cli(tmp_path, "subscribers", "export", "ann@example.org")
    assert exported.returncode == 0, exported.stderr
    assert [c["action"] for c in json.loads(exported.stdout)["consents"]] == [
        "operator-add",
        "import",
        "import",
    ]

    erased = cli(tmp_path, "subscribers", "erase", "ANN@example.org")
    assert erased.returncode == 0 and "erased" in erased.stdout
    again = cli(tmp_path, "subscribers", "erase", "ann@example.org")
    assert (again.returncode, again.stderr) == (
        1,
        "publisher: no such subscriber: ann@example.org\n",
    )
    blocked = cli(tmp_path, "subscribers", "add", "ann@example.org", "--region", "gt")
    assert blocked.returncode == 1 and "erased at the person's request" in blocked.stderr
    bad = cli(tmp_path, "subscribers", "add", "ann@@example.org", "--region", "gt")
    assert bad.returncode == 1 and bad.stderr.startswith("publisher: not a valid email address")
