"""Time building one recipient's edition message, against an EmailMessage built per recipient.

    .venv/bin/python bench/bench_message.py [--size 25000] [--count 20000]

(a) ``MessageTemplate.for_recipient``: placeholders substituted in the tails of the bodies,
base64 of the tails, header slots filled, bytes joined; (b) ``DigestMail.build``, which adds
the two signed links (unsubscribe, preferences) and the Date header; (b') the same plus the
VERP envelope sender of the message's ledger row (what the engine adds per message when
BOUNCE_ADDRESS is set); (c) the baseline: an
``email.message.EmailMessage`` made per recipient with set_content/add_alternative and
serialised with the SMTP policy. The edition (a reader of Costa Rica and Guatemala: two
sections) is rendered once, as a send renders it (``EditionRenderer.render``, random markers),
from synthetic items until the whole message is about --size bytes.
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
from publisher.digest.editions import plan_edition, region_set
from publisher.email.message import MessageTemplate, list_id, message_id
from publisher.email.outgoing import DigestMail
from publisher.email.placeholders import Placeholders
from publisher.email.render import RenderedEmail, fill
from publisher.models import Digest, ItemPublic
from publisher.pipeline.edition_render import EditionRenderer, web_url
from publisher.regions.tree import RegionTree
from publisher.settings import Settings
from publisher.tokens import Tokens

FROM = "Regional News <news@example.org>"
BASE = "https://news.example.org"
WORDS = (
    "migration", "governance", "regional", "office", "partners", "border", "communities",
    "labour", "mobility", "data", "protection", "children", "families", "return",
    "reintegration", "training", "ministry", "report", "programme",
)  # fmt: skip


SETTINGS = Settings(_env_file=None, secret_key="bench", base_url=BASE)
TREE = RegionTree.load()
REGIONS = region_set(TREE, ["gt", "cr"])  # ("cr", "gt"): the tree's order
DIGEST_ID = 1


def edition_of_size(size: int) -> tuple[RenderedEmail, Placeholders]:
    """A rendered edition (frozen digest DIGEST_ID) whose message is about ``size`` bytes, and
    its markers."""
    monday = datetime(2026, 11, 23, tzinfo=UTC)
    cutoff = monday + timedelta(days=7, hours=8)
    marks = Placeholders.fresh()  # random per digest, as a fire makes them
    url = web_url(SETTINGS, Tokens(["bench"]), DIGEST_ID, "en")
    renderer = EditionRenderer(SETTINGS, TREE)  # each item's fragment is rendered once
    items: list[ItemPublic] = []
    rendered = None
    while rendered is None or len(rendered.html) + len(rendered.text) < size * 0.69:
        n = len(items)
        summary = " ".join(WORDS[(n + i) % len(WORDS)] for i in range(55)).capitalize() + "."
        published = monday + timedelta(hours=n)
        items.append(
            ItemPublic(
                id=n + 1, guid=f"g{n}", title=f"Item {n + 1}: {' '.join(WORDS[n % 9 : n % 9 + 7])}",
                summary=summary, link=None, published=published, updated=monday,
                regions=[REGIONS[n % 2]], visible_at=published,
            )
        )  # fmt: skip
        plan = plan_edition(TREE, REGIONS, items, week="2026-W48",
                            window_start=cutoff - timedelta(days=7), cutoff=cutoff)  # fmt: skip
        rendered = renderer.render(plan, "en", marks=marks, web_url=url)
    return rendered, marks


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

    rendered, marks = edition_of_size(args.size)
    first = TREE.get(REGIONS[0])
    lid = list_id(slug=first.slug, name=first.name_en, site_title="Regional News", from_addr=FROM)
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

    now = datetime(2026, 11, 30, 8, tzinfo=UTC)
    digest = Digest(
        id=DIGEST_ID, region=first.slug, regions=" ".join(REGIONS), week="2026-W48",
        status="assembled", window_start=now, window_end=now, item_ids="[]",
        subject=rendered.subject, html=rendered.html, text=rendered.text, created=now,
        placeholder_key=marks.key,
    )  # fmt: skip
    mail = DigestMail(
        digest, settings=SETTINGS, tokens=Tokens(["bench"]), region_name=first.name_en
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
        title=f"one {size:,}-byte edition message",
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
