"""Time building one recipient's digest message, against an EmailMessage built per recipient.

    .venv/bin/python bench/bench_message.py [--size 25000] [--count 20000]

(a) ``MessageTemplate.for_recipient``: placeholders substituted in the tails of the bodies,
base64 of the tails, header slots filled, bytes joined; (b) ``DigestMail.build``, which adds
the two signed links (unsubscribe, preferences) and the Date header; (b') the same plus the
VERP envelope sender of the message's ledger row (what the engine adds per message when
BOUNCE_ADDRESS is set); (c) the baseline: an
``email.message.EmailMessage`` made per recipient with set_content/add_alternative and
serialised with the SMTP policy. The digest is rendered once from synthetic items until the
whole message is about --size bytes.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP

from rich.console import Console
from rich.table import Table

from publisher.bounces.verp import Verp
from publisher.digest.assembly import build_content
from publisher.email.message import MessageTemplate, list_id, message_id
from publisher.email.outgoing import DigestMail
from publisher.email.placeholders import LEGACY, Placeholders
from publisher.email.render import Branding, RenderedEmail, default_renderer, fill
from publisher.models import Digest, ItemPublic
from publisher.settings import Settings
from publisher.tokens import Tokens

FROM = "Regional News <news@example.org>"
BASE = "https://news.example.org"
WORDS = (
    "migration", "governance", "regional", "office", "partners", "border", "communities",
    "labour", "mobility", "data", "protection", "children", "families", "return",
    "reintegration", "training", "ministry", "report", "programme",
)  # fmt: skip


def digest_of_size(size: int, marks: Placeholders = LEGACY) -> RenderedEmail:
    """A rendered Central America digest whose message is about ``size`` bytes."""
    monday = datetime(2026, 11, 23, tzinfo=UTC)
    items: list[ItemPublic] = []
    rendered = None
    while rendered is None or len(rendered.html) + len(rendered.text) < size * 0.69:
        n = len(items)
        summary = " ".join(WORDS[(n + i) % len(WORDS)] for i in range(55)).capitalize() + "."
        items.append(
            ItemPublic(
                id=n + 1, guid=f"g{n}", title=f"Item {n + 1}: {' '.join(WORDS[n % 9 : n % 9 + 7])}",
                summary=summary, link=None, published=monday + timedelta(hours=n),
                updated=monday, regions=["gt", "cr"],
            )
        )  # fmt: skip
        content = build_content(
            items, region="central-america", week="2026-W48", base_url=BASE,
            name_of=lambda s: {"gt": "Guatemala", "cr": "Costa Rica"}.get(s, "Central America"),
        )  # fmt: skip
        rendered = default_renderer().digest(
            content, Branding("Regional News", BASE, "1 Example St"), marks
        )
    return rendered


def per_call(fn: Callable[[int], object], count: int) -> float:
    """Mean seconds per call of fn(i) over ``count`` calls (after a short warm-up)."""
    for i in range(min(200, count)):
        fn(i)
    start = time.perf_counter()
    for i in range(count):
        fn(i)
    return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=25_000, help="message size in bytes")
    parser.add_argument("--count", type=int, default=20_000, help="messages per measurement")
    args = parser.parse_args()

    marks = Placeholders.fresh()  # random per digest, as assembly makes them
    rendered = digest_of_size(args.size, marks)
    lid = list_id(
        slug="central-america", name="Central America", site_title="Regional News", from_addr=FROM
    )
    template = MessageTemplate(
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        from_addr=FROM,
        list_id=lid,
        marks=marks,
    )
    date = "Mon, 30 Nov 2026 08:00:00 +0000"

    def ours(i: int) -> bytes:
        return template.for_recipient(
            to=f"reader{i}@example.org",
            unsubscribe_url=f"{BASE}/unsubscribe/IjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmIg.aWn1.{i:027d}",
            preferences_url=f"{BASE}/preferences/IjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmIg.aWn1.{i:027d}",
            message_id=message_id(1, i, "example.org"),
            date=date,
        )

    settings = Settings(_env_file=None, secret_key="bench", base_url=BASE)
    now = datetime(2026, 11, 30, 8, tzinfo=UTC)
    digest = Digest(
        id=1, region="central-america", week="2026-W48", status="assembled", window_start=now,
        window_end=now, item_ids="[]", subject=rendered.subject, html=rendered.html,
        text=rendered.text, created=now, placeholder_key=marks.key,
    )  # fmt: skip
    mail = DigestMail(
        digest, settings=settings, tokens=Tokens(["bench"]), region_name="Central America"
    )

    def with_links(i: int) -> bytes:
        return mail.build(subscriber_id=i, key=f"{i:032x}", email=f"reader{i}@example.org", now=now)

    verp = Verp("bounces@example.org", ["bench"])

    def with_verp(i: int) -> tuple[bytes, str]:
        return with_links(i), verp.address(i)

    def baseline(i: int) -> bytes:
        to, unsubscribe = f"reader{i}@example.org", f"{BASE}/unsubscribe/{i}"
        values = marks.values(
            email=to, unsubscribe_url=unsubscribe, preferences_url=f"{BASE}/preferences/{i}"
        )
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = FROM, to, rendered.subject
        msg["Date"], msg["Message-ID"], msg["List-Id"] = date, message_id(1, i, "example.org"), lid
        msg["List-Unsubscribe"] = f"<{unsubscribe}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(fill(rendered.text, values, html=False), cte="base64")
        msg.add_alternative(fill(rendered.html, values, html=True), subtype="html", cte="base64")
        return msg.as_bytes(policy=SMTP)

    size = len(ours(0))
    table = Table(
        "builder",
        "µs / message",
        "messages / s (one core)",
        title=f"one {size:,}-byte digest message",
    )
    for label, fn, count in (
        ("MessageTemplate.for_recipient", ours, args.count),
        ("DigestMail.build (+ 2 signed links, Date)", with_links, args.count),
        ("  + VERP envelope sender (BOUNCE_ADDRESS set)", with_verp, args.count),
        ("DigestMail.build again (noise check)", with_links, args.count),
        ("EmailMessage per recipient (baseline)", baseline, max(200, args.count // 50)),
    ):
        seconds = per_call(fn, count)
        table.add_row(label, f"{seconds * 1e6:,.1f}", f"{1 / seconds:,.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
