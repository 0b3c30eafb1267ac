"""Provider events: Mailgun's signed webhooks and Amazon SES notifications delivered by SNS.

``verify`` checks a request before anything is stored: Mailgun's HMAC-SHA256 of timestamp and
token with the webhook signing key (and a timestamp within 15 minutes), or the SNS message
signature against the certificate at SigningCertURL, whose host must be an SNS host and whose
topic one of SNS_TOPIC_ARNS. ``finding`` reads a verified, stored event back as a Finding.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from publisher.bounces.parse import Finding, Kind
from publisher.errors import InputError
from publisher.settings import Settings

PROVIDERS = ("mailgun", "ses")
MAILGUN_SKEW = timedelta(minutes=15)
_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip

CertFetcher = Callable[[str], bytes]


class WebhookRefused(InputError):
    """A webhook request that is not from the provider (bad signature, wrong topic, stale)."""


@dataclass(frozen=True, slots=True)
class Verified:
    """A verified event: its idempotency basis, or a subscription URL to confirm (SNS)."""

    event_id: str
    subscribe_url: str = ""


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise WebhookRefused("the body is not JSON") from e
    if not isinstance(data, dict):
        raise WebhookRefused("the body is not a JSON object")
    return data


def verify_mailgun(body: bytes, *, key: str, now: datetime) -> Verified:
    """Mailgun: HMAC-SHA256(signing key, timestamp + token) == signature, timestamp fresh."""
    if not key:
        raise WebhookRefused("PUBLISHER_MAILGUN_SIGNING_KEY is not set")
    data = _json(body)
    sig = data.get("signature")
    event = data.get("event-data")
    if not isinstance(sig, dict) or not isinstance(event, dict):
        raise WebhookRefused("not a Mailgun event")
    timestamp, token, signature = (str(sig.get(k, "")) for k in ("timestamp", "token", "signature"))
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise WebhookRefused("bad Mailgun signature")
    if not timestamp.isdigit() or abs(now.timestamp() - int(timestamp)) > MAILGUN_SKEW.seconds:
        raise WebhookRefused("stale Mailgun timestamp")
    return Verified(f"mailgun:{event.get('id') or token}")


def sns_string_to_sign(message: dict[str, Any]) -> bytes:
    """The canonical text SNS signs: the type's fields, present ones only, "Key\\nValue\\n"."""
    fields = _SNS_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise WebhookRefused("not an SNS message type this endpoint takes")
    parts = [f"{k}\n{message[k]}\n" for k in fields if message.get(k) is not None]
    return "".join(parts).encode("utf-8")


def _check_cert_url(url: str, host_pattern: str) -> None:
    parts = urlsplit(url)
    if (
        parts.scheme != "https"
        or not parts.hostname
        or not re.fullmatch(host_pattern, parts.hostname)
        or parts.port not in (None, 443)
        or not parts.path.endswith(".pem")
    ):
        raise WebhookRefused(f"SigningCertURL is not an SNS certificate: {url[:120]!r}")


def verify_sns(
    body: bytes, *, settings: Settings, fetch_cert: CertFetcher, now: datetime
) -> Verified:
    """SNS: topic allowed, certificate from an SNS host, RSA signature over the canonical text."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    topics = {t.strip() for t in settings.sns_topic_arns.split(",") if t.strip()}
    if not topics:
        raise WebhookRefused("PUBLISHER_SNS_TOPIC_ARNS is not set")
    message = _json(body)
    if str(message.get("TopicArn", "")) not in topics:
        raise WebhookRefused("SNS topic not allowed")
    url = str(message.get("SigningCertURL", ""))
    _check_cert_url(url, settings.sns_cert_hosts)
    version = str(message.get("SignatureVersion", ""))
    algorithm: hashes.HashAlgorithm
    if version == "1":
        algorithm = hashes.SHA1()  # noqa: S303 - SNS signature version 1 is SHA1withRSA
    elif version == "2":
        algorithm = hashes.SHA256()
    else:
        raise WebhookRefused("unknown SNS signature version")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        cert = x509.load_pem_x509_certificate(fetch_cert(url))
    except (ValueError, OSError) as e:
        raise WebhookRefused(f"SNS signature or certificate unreadable: {e}") from e
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise WebhookRefused("SNS certificate out of its validity period")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookRefused("SNS certificate key is not RSA")
    try:
        key.verify(signature, sns_string_to_sign(message), padding.PKCS1v15(), algorithm)
    except InvalidSignature as e:
        raise WebhookRefused("bad SNS signature") from e
    subscribe = (
        str(message.get("SubscribeURL", "")) if message.get("Type") != "Notification" else ""
    )
    return Verified(f"sns:{message.get('MessageId', '')}", subscribe_url=subscribe)


def _our_ids(*values: object) -> tuple[str, ...]:
    found: set[str] = set()
    for value in values:
        for m in re.finditer(r"<?(digest-\d+\.subscriber-\d+@[A-Za-z0-9.-]+)>?", str(value or "")):
            found.add(f"<{m[1]}>")
    return tuple(sorted(found))


def _mailgun(data: dict[str, Any]) -> Finding:
    event = data.get("event-data") or {}
    name = str(event.get("event", "")).lower()
    status = event.get("delivery-status") or {}
    headers = (event.get("message") or {}).get("headers") or {}
    envelope = event.get("envelope") or {}
    text = json.dumps({"envelope": envelope, "headers": headers})
    ids = _our_ids(headers.get("message-id"))
    recipient = str(event.get("recipient", "")).lower()
    kind: Kind
    if name == "complained":
        kind = "complaint"
    elif name == "failed":
        kind = "hard" if str(event.get("severity", "")).lower() == "permanent" else "soft"
    else:
        return Finding("none", f"mailgun {name or 'event'}: not a bounce or complaint")
    code = str(status.get("code", ""))
    diagnostic = " ".join(str(status.get("description") or status.get("message") or "").split())
    return Finding(kind, f"mailgun {name}", code, recipient, diagnostic[:500], ids, text)


def _ses(envelope: dict[str, Any]) -> Finding:
    try:
        note = json.loads(str(envelope.get("Message", "")))
    except ValueError:
        return Finding("none", "SES notification whose Message is not JSON")
    if not isinstance(note, dict):
        return Finding("none", "SES notification whose Message is not an object")
    mail = note.get("mail") or {}
    common = mail.get("commonHeaders") or {}
    text = json.dumps({"source": mail.get("source"), "headers": mail.get("headers")})
    ids = _our_ids(common.get("messageId"), json.dumps(mail.get("headers") or []))
    ntype = str(note.get("notificationType") or note.get("eventType") or "")
    kind: Kind
    if ntype == "Bounce":
        bounce = note.get("bounce") or {}
        people = bounce.get("bouncedRecipients") or [{}]
        first = people[0] if isinstance(people[0], dict) else {}
        kind = "hard" if bounce.get("bounceType") == "Permanent" else "soft"
        status = str(first.get("status", ""))
        diagnostic = " ".join(str(first.get("diagnosticCode", "")).split())[:500]
        recipient = str(first.get("emailAddress", "")).lower()
        return Finding(kind, f"ses bounce {bounce.get('bounceType')}", status, recipient,
                       diagnostic, ids, text)  # fmt: skip
    if ntype == "Complaint":
        complaint = note.get("complaint") or {}
        if complaint.get("complaintFeedbackType") == "not-spam":
            return Finding("none", "ses complaint: not-spam")
        people = complaint.get("complainedRecipients") or [{}]
        first = people[0] if isinstance(people[0], dict) else {}
        recipient = str(first.get("emailAddress", "")).lower()
        return Finding("complaint", "ses complaint", "", recipient, "", ids, text)
    return Finding("none", f"ses {ntype or 'notification'}: not a bounce or complaint")


def finding(provider: str, body: bytes) -> Finding:
    """What a stored (already verified) provider event says; never raises."""
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            return Finding("none", "not a JSON object")
        return _mailgun(data) if provider == "mailgun" else _ses(data)
    except Exception as e:  # stored data from outside: report it, never stop an applier
        return Finding("none", f"unreadable {provider} event: {type(e).__name__}")


class CertCache:
    """Fetches SNS signing certificates over HTTPS (no redirects, 64 KB cap), keeping a few."""

    def __init__(self, size: int = 16, timeout: float = 10.0) -> None:
        self._certs: dict[str, bytes] = {}
        self.size = size
        self.timeout = timeout

    def __call__(self, url: str) -> bytes:
        found = self._certs.get(url)
        if found is not None:
            return found
        import httpx

        with httpx.stream("GET", url, timeout=self.timeout, follow_redirects=False) as response:
            if response.status_code != 200:
                raise OSError(f"certificate fetch answered {response.status_code}")
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > 65536:
                    raise OSError("certificate larger than 64 KB")
        if len(self._certs) >= self.size:
            self._certs.pop(next(iter(self._certs)))
        self._certs[url] = data
        return data
