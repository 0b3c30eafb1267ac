"""The demo's email half: sample subscribers, this week's digests into the local Maildir, a preview.

Kept apart from the CLI so the whole job can be run (and tested) without a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from publisher.pipeline.digests import next_week, preview
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
    """Subscribe demo readers, send this week's digests of regions with items, write a preview."""
    regions = regions_with_items(rt)
    add_demo_subscribers(rt, regions)
    with rt.session() as session:
        weeks = {
            s: next_week(session, region=s, settings=rt.settings, now=rt.now()) for s in regions
        }
    by_week: dict[str, list[str]] = {}
    for slug, week in weeks.items():
        by_week.setdefault(week, []).append(slug)
    reports = [send_digests(rt, regions=slugs, week=week) for week, slugs in by_week.items()]
    preview_file = None
    if regions:
        slug = "central-america" if "central-america" in weeks else regions[0]
        with rt.session() as session:
            shown = preview(
                session, region=slug, week=weeks[slug], settings=rt.settings, tree=rt.tree
            )
        preview_file = rt.settings.var_dir / f"preview-{slug}-{weeks[slug]}.html"
        preview_file.parent.mkdir(parents=True, exist_ok=True)
        preview_file.write_text(shown.html, encoding="utf-8")
    maildir = None if rt.settings.smtp_url else rt.settings.mail_dir
    return DemoMail(regions, len(regions) * READERS_PER_REGION, reports, maildir, preview_file)
