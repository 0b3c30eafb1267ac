"""POST /webhooks/{mailgun,ses}: signed provider events bounce or unsubscribe the right reader;
forged, stale, replayed or misdirected ones change nothing. Keys and certificates are made here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from sqlmodel import select

from publisher.bounces.webhooks import sns_string_to_sign
from publisher.models import BounceReport
from publisher.runtime import Runtime
from publisher.service.metrics import metrics_for
from publisher.web.app import create_app
from tests.bounce_support import Sent, send_digest, status, suppression_reason, with_verp
from tests.conftest import FIXED_NOW

MAILGUN_KEY = "mailgun-signing-key"
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-bounces"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem"


def _cert(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(FIXED_NOW - timedelta(days=1))
        .not_valid_after(FIXED_NOW + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM)


KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = _cert(KEY)


class Client:
    """The app on the test runtime, with a certificate fetcher that records what it was asked."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.fetched: list[str] = []
        app = create_app(rt.settings, runtime=rt)
        app.state.sns_cert_fetcher = self.fetch
        self.http = TestClient(app)

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        return PEM

    def post(self, provider: str, body: dict[str, Any] | bytes) -> int:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = self.http.post(
            f"/webhooks/{provider}", content=data, headers={"Content-Type": "application/json"}
        )
        return response.status_code

    def reports(self) -> list[BounceReport]:
        with self.rt.session() as session:
            return list(session.exec(select(BounceReport)))


@pytest.fixture
def sent(runtime: Runtime) -> Sent:
    with_verp(runtime, mailgun_signing_key=MAILGUN_KEY, sns_topic_arns=TOPIC)
    return send_digest(runtime, 3)


@pytest.fixture
def client(runtime: Runtime, sent: Sent) -> Iterator[Client]:
    c = Client(runtime)
    with c.http:
        yield c


def mailgun(
    event: dict[str, Any], *, token: str = "t" * 50, at: float | None = None
) -> dict[str, Any]:
    timestamp = str(int(at if at is not None else FIXED_NOW.timestamp()))
    signature = hmac.new(MAILGUN_KEY.encode(), (timestamp + token).encode(), hashlib.sha256)
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature.hexdigest()},
        "event-data": event,
    }


def mailgun_failed(
    sent: Sent, index: int, *, severity: str = "permanent", rcpt: str = ""
) -> dict[str, Any]:
    email = sent.readers[index][1]
    return {
        "id": f"ev-{index}-{severity}", "event": "failed", "severity": severity,
        "recipient": rcpt or email, "reason": "bounce",
        "envelope": {"sender": "bounce+abc@mg.example.org", "targets": email},
        "message": {"headers": {"message-id": sent.message_ids[email].strip("<>"), "to": email}},
        "delivery-status": {"code": 550, "description": "5.1.1 mailbox does not exist"},
    }  # fmt: skip


def sns(message: dict[str, Any], *, version: str = "1", key: rsa.RSAPrivateKey = KEY,
        **fields: str) -> dict[str, Any]:  # fmt: skip
    envelope: dict[str, Any] = {
        "Type": "Notification", "MessageId": f"m-{hash(json.dumps(message)) & 0xFFFF}",
        "TopicArn": TOPIC, "Message": json.dumps(message), "Timestamp": "2026-11-27T12:00:00.000Z",
        "SignatureVersion": version, "SigningCertURL": CERT_URL,
    }  # fmt: skip
    envelope.update(fields)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signed = KEY if key is None else key
    signature = signed.sign(sns_string_to_sign(envelope), padding.PKCS1v15(), algorithm)
    envelope["Signature"] = base64.b64encode(signature).decode()
    return envelope


def ses_complaint(sent: Sent, index: int) -> dict[str, Any]:
    email = sent.readers[index][1]
    return {
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": email}],
                      "complaintFeedbackType": "abuse", "feedbackId": "f-1"},
        "mail": {"source": sent.senders[email], "messageId": "ses-1",
                 "commonHeaders": {"messageId": "<something-else@example.org>"}},
    }  # fmt: skip


def ses_bounce(sent: Sent, index: int) -> dict[str, Any]:
    email = sent.readers[index][1]
    return {
        "notificationType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                   "bouncedRecipients": [{"emailAddress": email, "status": "5.1.1",
                                          "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
        "mail": {"source": "news@example.org", "messageId": "ses-2",
                 "commonHeaders": {"messageId": sent.message_ids[email]}},
    }  # fmt: skip


def test_mailgun_failed_event_bounces_the_reader_once(client: Client, sent: Sent) -> None:
    body = mailgun(mailgun_failed(sent, 0))
    assert client.post("mailgun", body) == 200
    assert client.post("mailgun", body) == 200  # the provider retried: stored once
    sub_id, email = sent.readers[0]
    assert status(client.rt, sub_id) == "bounced"
    assert suppression_reason(client.rt, email) == "hard_bounce"
    (stored,) = client.reports()
    assert (stored.state, stored.kind, stored.source) == ("applied", "hard", "webhook:mailgun")
    scraped = generate_latest(metrics_for(client.rt).registry).decode()
    assert 'publisher_bounce_reports_total{kind="hard",state="applied"} 1.0' in scraped


def test_mailgun_temporary_failure_and_complaint(client: Client, sent: Sent) -> None:
    assert client.post("mailgun", mailgun(mailgun_failed(sent, 0, severity="temporary"))) == 200
    complaint = dict(mailgun_failed(sent, 1), event="complained", id="ev-c")
    assert client.post("mailgun", mailgun(complaint, token="u" * 50)) == 200
    assert status(client.rt, sent.readers[0][0]) == "active"
    assert status(client.rt, sent.readers[1][0]) == "unsubscribed"
    assert suppression_reason(client.rt, sent.readers[1][1]) == "complaint"


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE_ONLY  # refusals happen before the store is touched; one backend is enough
@pytest.mark.parametrize(
    "tamper",
    ["signature", "stale", "future", "recipient", "not-json", "no-key"],
)
def test_mailgun_forgeries_change_nothing(client: Client, sent: Sent, tamper: str) -> None:
    body: dict[str, Any] | bytes = mailgun(mailgun_failed(sent, 0))
    assert isinstance(body, dict)
    if tamper == "signature":
        body["signature"]["signature"] = "0" * 64
    elif tamper == "stale":
        body = mailgun(mailgun_failed(sent, 0), at=FIXED_NOW.timestamp() - 16 * 60)
    elif tamper == "future":
        body = mailgun(mailgun_failed(sent, 0), at=FIXED_NOW.timestamp() + 16 * 60)
    elif tamper == "recipient":  # signed, but the address is not the reader of that message
        body = mailgun(mailgun_failed(sent, 0, rcpt=sent.readers[1][1]))
    elif tamper == "not-json":
        body = b"\xff\xfe{{{"
    elif tamper == "no-key":
        client.rt.settings = client.rt.settings.model_copy(update={"mailgun_signing_key": ""})
    code = client.post("mailgun", body)
    assert code == (200 if tamper == "recipient" else 403)
    assert all(status(client.rt, s) == "active" for s, _ in sent.readers)
    assert [r.state for r in client.reports()] == (["unmatched"] if tamper == "recipient" else [])


def test_ses_complaint_and_bounce_through_sns(client: Client, sent: Sent) -> None:
    assert client.post("ses", sns(ses_complaint(sent, 0))) == 200
    assert client.post("ses", sns(ses_bounce(sent, 1), version="2")) == 200
    assert status(client.rt, sent.readers[0][0]) == "unsubscribed"
    assert status(client.rt, sent.readers[1][0]) == "bounced"
    assert status(client.rt, sent.readers[2][0]) == "active"
    assert client.fetched == [CERT_URL, CERT_URL]
    assert sorted(r.state for r in client.reports()) == ["applied", "applied"]


@SQLITE_ONLY
@pytest.mark.parametrize(
    "tamper",
    ["host", "http", "port", "topic", "message", "other-key", "version", "bad-base64"],
)
def test_ses_forgeries_change_nothing(client: Client, sent: Sent, tamper: str) -> None:
    note = ses_complaint(sent, 0)
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    body = {
        "host": lambda: sns(note, SigningCertURL="https://evil.example.com/cert.pem"),
        "http": lambda: sns(note, SigningCertURL=CERT_URL.replace("https", "http")),
        "port": lambda: sns(note, SigningCertURL=CERT_URL.replace(".com/", ".com:8443/")),
        "topic": lambda: sns(note, TopicArn="arn:aws:sns:us-east-1:999:other"),
        "message": lambda: {**sns(note), "Message": json.dumps(ses_complaint(sent, 1))},
        "other-key": lambda: sns(note, key=other),
        "version": lambda: sns(note) | {"SignatureVersion": "3"},
        "bad-base64": lambda: sns(note) | {"Signature": "%%%not base64%%%"},
    }[tamper]()
    assert client.post("ses", body) == 403
    assert client.reports() == []
    assert all(status(client.rt, s) == "active" for s, _ in sent.readers)
    if tamper in ("host", "http", "port", "topic"):
        assert client.fetched == []  # refused before anything was fetched


@SQLITE_ONLY
def test_sns_subscription_confirmation_is_logged_not_stored(client: Client, sent: Sent) -> None:
    url = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
    body = sns({}, Type="SubscriptionConfirmation", Token="tok", SubscribeURL=url)
    assert client.post("ses", body) == 200
    assert client.reports() == []


@SQLITE_ONLY
def test_unknown_provider_and_oversized_body(client: Client, sent: Sent) -> None:
    assert client.post("sendgrid", {"x": 1}) == 404
    assert client.post("mailgun", b"{" + b" " * 200_000 + b"}") == 413
    assert client.reports() == []
