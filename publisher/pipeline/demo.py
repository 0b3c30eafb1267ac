"""The demo's email half: sample readers, this week's editions into the local Maildir, a preview.

Kept apart from the CLI so the whole job can be run (and tested) without a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from publisher.digest.windows import current_week, zone
from publisher.pipeline.edition_tools import preview_edition
from publisher.pipeline.send import SendReport, send_digests
from publisher.pipeline.subscribers import add_subscriber
from publisher.runtime import Runtime
from publisher.store.items import count_by_region

READERS_PER_REGION = 2


@dataclass
class DemoMail:
    """What the demo sent and where to look at it."""

    regions: list[str]
    subscribers: int
    reports: list[SendReport]
    maildir: Path | None
    preview_file: Path | None
    week: str = ""  # the running week, sent early


def regions_with_items(rt: Runtime) -> list[str]:
    """Regions whose own subtree holds tagged items (not only items about a wider region)."""
    with rt.session() as session:
        tagged = count_by_region(session)
    return [
        r.slug
        for r in rt.tree
        if r.slug != "world" and any(tagged.get(s) for s in {r.slug} | rt.tree.descendants(r.slug))
    ]


def add_demo_subscribers(rt: Runtime, regions: list[str]) -> int:
    """Two confirmed example.org readers per region; re-running adds nobody new."""
    added = 0
    with rt.session() as session:
        for slug in regions:
            for n in range(1, READERS_PER_REGION + 1):
                _, created = add_subscriber(
                    session, email=f"reader{n}.{slug}@example.org", regions=[slug],
                    confirmed=True, locale="en", tree=rt.tree, now=rt.now(),
                )  # fmt: skip
                added += created
    return added


def send_demo_digests(rt: Runtime) -> DemoMail:
    """Subscribe demo readers and send this week's editions as an explicit early send (the week
    is still running: its scheduled fire then sends them nothing more); write a preview."""
    regions = regions_with_items(rt)
    add_demo_subscribers(rt, regions)
    now = rt.now()
    week = current_week(now, zone(rt.settings.timezone))
    # each reader's running week on their own clock (``week`` is TIMEZONE's, for the preview)
    reports = [send_digests(rt, regions=regions, week=None, early=True)] if regions else []
    preview_file = None
    if regions:
        slug = "central-america" if "central-america" in regions else regions[0]
        shown = preview_edition(rt, [slug], rt.settings.default_locale, now, week=week)
        preview_file = rt.settings.var_dir / f"preview-{slug}-{week}.html"
        preview_file.parent.mkdir(parents=True, exist_ok=True)
        preview_file.write_text(shown.html, encoding="utf-8")
    maildir = None if rt.settings.smtp_url else rt.settings.mail_dir
    return DemoMail(regions, len(regions) * READERS_PER_REGION, reports, maildir, preview_file,
                    week)  # fmt: skip
