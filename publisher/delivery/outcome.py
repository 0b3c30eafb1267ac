"""What an SMTP reply means for a recipient: sent, deferred, failed or unknown.

The ledger states follow these outcomes one to one; ``systemic`` marks failures of the server or
the link (connection lost, 421, a refused sender), which count toward pausing a send and never
make a subscriber bounced.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

Reply = tuple[int, bytes]


class Outcome(StrEnum):
    """The fate of one message for one recipient, as far as the client can tell."""

    sent = "sent"
    deferred = "deferred"
    failed = "failed"
    unknown = "unknown"


@dataclass(frozen=True, slots=True)
class SendResult:
    """One recipient's outcome; ``systemic``: the server or link failed, not the address."""

    outcome: Outcome
    code: int = 0
    detail: str = ""
    systemic: bool = False

    @property
    def bounce(self) -> bool:
        """Whether the address itself was refused for good (the subscriber becomes bounced)."""
        return self.outcome is Outcome.failed and not self.systemic

    def describe(self) -> str:
        return f"{self.code} {self.detail}".strip() if self.code else self.detail


def describe_reply(code: int, message: bytes | str) -> str:
    """A server's reply text on one line, short enough for ``last_error``."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return " ".join(text.split())[:400] or str(code)


def classify(code: int, message: bytes | str, *, systemic: bool = False) -> SendResult:
    """Map one SMTP reply to an outcome (2xx sent, 4xx deferred, anything else failed)."""
    detail = describe_reply(code, message)
    if 200 <= code < 300:
        return SendResult(Outcome.sent, code, detail)
    if 400 <= code < 500:
        return SendResult(Outcome.deferred, code, detail, systemic=systemic or code == 421)
    return SendResult(Outcome.failed, code, detail, systemic=systemic)


NO_DATA = SendResult(Outcome.deferred, 0, "the server did not open DATA")
