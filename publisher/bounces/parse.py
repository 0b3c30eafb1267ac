"""What a report says: RFC 3464 DSNs, RFC 5965 ARF complaints, the usual non-standard bounces.

``read_report`` never raises: garbage, truncated MIME or an unknown format comes back as kind
``none`` with a reason, so one bad report can never stop a receiver. Auto-replies
(out-of-office, vacation; RFC 3834) come back as ``auto_reply`` and change nothing. Delivery
status codes decide hard against soft: 5.x.x is hard except a full mailbox, an oversized
message and policy refusals (5.2.2, 5.2.3, 5.3.4, 5.7.x), which are soft like every 4.x.x.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import Message
from typing import Literal

Kind = Literal["hard", "soft", "complaint", "auto_reply", "delayed", "none"]
APPLIED_KINDS = ("hard", "soft", "complaint")
MAX_TEXT = 2_000_000

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY = re.compile(r"(?:^|[\s:(;])([45]\d\d)[\s-]")
_ADDRESS = re.compile(r"<?([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>?")
_OUR_MSGID = re.compile(r"<digest-\d+\.subscriber-\d+@[A-Za-z0-9.-]+>")
_FAILED = re.compile(r"(?:failed|following address(?:es)?)[^\n]*\n\s*<?([^\s<>]+@[^\s<>:]+)")
_SOFT_5XX = ("5.2.2", "5.2.3", "5.3.4")
_HARD_PHRASES = re.compile(
    r"user unknown|unknown user|no such (?:user|recipient|mailbox)|does not exist|doesn'?t exist|"
    r"doesn'?t have an? [\w.-]+ account|recipient address rejected|invalid (?:recipient|mailbox)|"
    r"mailbox (?:unavailable|not found|disabled)|account (?:has been )?disabled|"
    r"address (?:rejected|not found)|no mailbox here|unrouteable address|permanent error",
    re.I,
)
_SOFT_PHRASES = re.compile(
    r"mailbox (?:is )?full|over ?quota|quota exceeded|temporar|try again later|"
    r"message delayed|insufficient storage",
    re.I,
)
_BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery (?:system|subsystem)", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered mail|delivery status notification|delivery (?:has )?failed|"
    r"failure notice|mail delivery failed|returned mail|delivery failure|non-?delivery|"
    r"could not be delivered",
    re.I,
)
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic)?[ -]?(?:reply|response|antwort)|auto:|out of (?:the )?office|"
    r"away from (?:the )?office|on vacation|vacation reply|abwesenheit|"
    r"respuesta autom[aá]tica|fuera de (?:la )?oficina|resposta autom[aá]tica|aus[eê]ncia|"
    r"r[ée]ponse automatique|absence)",
    re.I,
)


@dataclass(frozen=True, slots=True)
class Finding:
    """What one report says about the message it reports on."""

    kind: Kind
    reason: str = ""
    status: str = ""
    recipient: str = ""
    diagnostic: str = ""
    message_ids: tuple[str, ...] = ()
    text: str = field(default="", repr=False)  # every decoded part, to look for VERP tokens


def classify(status: str, action: str = "failed") -> Kind:
    """Hard or soft (or delayed, or nothing) from a DSN's Action and Status."""
    action = action.strip().lower()
    if action in ("delivered", "relayed", "expanded"):
        return "none"
    if action == "delayed":
        return "delayed"
    if status.startswith("5."):
        return "soft" if status in _SOFT_5XX or status.startswith("5.7.") else "hard"
    if status.startswith("4."):
        return "soft"
    return "none"


def _decode(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _all_text(msg: Message) -> str:
    chunks: list[str] = []
    size = 0
    for part in msg.walk():
        for name, value in part.items():
            chunks.append(f"{name}: {value}")
        if not part.is_multipart():
            chunks.append(_decode(part))
        size += len(chunks[-1]) if chunks else 0
        if size > MAX_TEXT:
            break
    return "\n".join(chunks)[:MAX_TEXT]


def _status_of(text: str) -> str:
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else ""


def _one_line(value: str | None, limit: int = 500) -> str:
    return " ".join(str(value or "").split())[:limit]


def _address(value: str | None) -> str:
    match = _ADDRESS.search(str(value or ""))
    return match[1].lower() if match else ""


def _original_ids(msg: Message, text: str) -> tuple[str, ...]:
    ids = set(_OUR_MSGID.findall(text))
    for part in msg.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            found = _OUR_MSGID.search(part.as_string() if part.is_multipart() else _decode(part))
            if found:
                ids.add(found[0])
    return tuple(sorted(ids))


def _dsn(msg: Message, text: str) -> Finding:
    ids = _original_ids(msg, text)
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:] or blocks:  # the first block is per-message fields
            if not isinstance(block, Message):
                continue
            diagnostic = _one_line(block.get("Diagnostic-Code"))
            status = _status_of(str(block.get("Status", ""))) or _status_of(diagnostic)
            kind = classify(status, str(block.get("Action", "failed")))
            if kind in ("hard", "soft", "delayed"):
                recipient = _address(block.get("Original-Recipient")) or _address(
                    block.get("Final-Recipient")
                )
                return Finding(kind, "dsn", status, recipient, diagnostic, ids, text)
        return Finding("none", "a DSN that reports no failure", message_ids=ids, text=text)
    return Finding("none", "a multipart/report without delivery-status part", text=text)


def _arf(msg: Message, text: str) -> Finding:
    ids = _original_ids(msg, text)
    for part in msg.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        blocks = part.get_payload()
        fields = blocks[0] if isinstance(blocks, list) and blocks else None
        body = str(fields) if isinstance(fields, Message) else _decode(part)
        feedback = re.search(r"^Feedback-Type:\s*([\w-]+)", body, re.I | re.M)
        kind = (feedback[1].lower() if feedback else "").strip()
        rcpt = re.search(r"^Original-Rcpt-To:\s*(.+)$", body, re.I | re.M)
        recipient = _address(rcpt[1]) if rcpt else ""
        if kind in ("abuse", "fraud", "virus", "other", ""):
            return Finding("complaint", f"arf {kind or 'abuse'}", "", recipient, "", ids, text)
        return Finding("none", f"arf {kind}: not a complaint", message_ids=ids, text=text)
    return Finding("none", "a feedback report without its machine-readable part", text=text)


def is_auto_reply(msg: Message) -> bool:
    """RFC 3834 and the usual vendor headers and subjects of out-of-office replies."""
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto and not auto.startswith("no"):
        return True
    precedence = str(msg.get("Precedence", "")).strip().lower()
    if precedence in ("auto_reply", "auto-reply", "bulk", "junk", "list"):
        return True
    vendor = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "X-Autogenerated")
    if any(msg.get(h) is not None for h in vendor):
        return True
    return bool(_AUTO_SUBJECT.search(str(msg.get("Subject", ""))))


def _plain_bounce(msg: Message, text: str) -> Finding:
    ids = _original_ids(msg, text)
    body = text[:20_000]
    status = _status_of(body)
    reply = _REPLY.search(body)
    if status:
        kind = classify(status)
    elif reply:
        kind = "hard" if reply[1].startswith("5") else "soft"
        status = f"{reply[1][0]}.0.0"
    else:
        kind = "none"
    if _SOFT_PHRASES.search(body) and kind == "hard" and not status.startswith("5.1."):
        kind = "soft"
    if kind == "none":
        if _HARD_PHRASES.search(body):
            kind, status = "hard", "5.0.0"
        elif _SOFT_PHRASES.search(body):
            kind, status = "soft", "4.0.0"
        else:
            return Finding("none", "a bounce without a reason it could read", text=text)
    failed = re.search(
        r"(?:failed|following address(?:es)?)[^\n]*\n\s*<?([^\s<>]+@[^\s<>:]+)", body
    )
    recipient = _address(failed[1]) if failed else ""
    diagnostic = _one_line(reply.string[reply.start() : reply.start() + 300]) if reply else ""
    return Finding(kind, "plain-text bounce", status, recipient, diagnostic, ids, text)


def read_report(raw: bytes) -> Finding:
    """What ``raw`` (one email message as received) reports; never raises."""
    try:
        msg = message_from_bytes(raw, policy=email_policy.compat32)
        text = _all_text(msg)
        ctype = msg.get_content_type()
        report_type = str(msg.get_param("report-type", "") or "").lower()
        if ctype == "multipart/report" and report_type == "delivery-status":
            return _dsn(msg, text)
        if ctype == "multipart/report" and report_type == "feedback-report":
            return _arf(msg, text)
        sender = str(msg.get("From", ""))
        subject = str(msg.get("Subject", ""))
        if _BOUNCE_SENDER.search(sender) or _BOUNCE_SUBJECT.search(subject):
            return _plain_bounce(msg, text)
        if is_auto_reply(msg):
            return Finding("auto_reply", "an automatic reply", text=text)
        return Finding("none", "not a bounce, complaint or auto-reply", text=text)
    except Exception as e:  # a report is data from anyone: nothing in it may stop a receiver
        return Finding("none", f"unreadable: {type(e).__name__}: {_one_line(str(e), 200)}")
