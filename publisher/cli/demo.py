"""`publisher demo`: the whole job once on embedded defaults, ending in a summary table."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from publisher.cli.context import err, out, runtime
from publisher.pipeline.demo import send_demo_digests
from publisher.pipeline.feeds import build_store_feeds
from publisher.pipeline.intake import import_records, read_source
from publisher.store.items import count_by_region

DEMO_ITEMS = Path(__file__).resolve().parent.parent / "data" / "demo-items.txt"


def demo(
    ctx: typer.Context,
    items_file: Path = typer.Option(DEMO_ITEMS, "--items", help="Seed file to import."),
) -> None:
    """Migrate, import the sample items, build the feeds, send this week's digests locally."""
    rt = runtime(ctx)
    rt.settings = rt.settings.with_local_secret()
    if "coverage" not in rt.settings.model_fields_set:  # the sample newsroom covers the Americas
        rt.settings = rt.settings.model_copy(update={"coverage": "americas"})
    rt.migrate()
    with rt.session() as session:
        report = import_records(
            session,
            records=read_source(str(items_file), "seed"),
            tree=rt.tree,
            inferrer=rt.inferrer,
            now=rt.now(),
            clock=rt.now,
        )
    for e in report.errors:
        err.print(str(e), markup=False)
    out.print(
        f"imported {report.added} new items from {items_file} "
        f"({report.existing} already present, regions inferred for {report.inferred})"
    )
    with rt.session() as session:
        feeds = build_store_feeds(session, settings=rt.settings, tree=rt.tree, now=rt.now())
    with rt.session() as session:
        tagged = count_by_region(session)
    table = Table("region", "items", "feed files", title="Feeds")
    inherited_only = 0
    for slug, count in sorted(feeds.per_feed.items(), key=lambda kv: (kv[0] != "all", kv[0])):
        scope = {slug} | (rt.tree.descendants(slug) if slug != "all" else set(tagged))
        if not any(tagged.get(s) for s in scope):
            inherited_only += 1
            continue
        label = "every region" if slug == "all" else rt.tree.get(slug).name_en
        table.add_row(f"{slug} ({label})", str(count), f"{slug}.rss .atom .json")
    out.print(table)
    if inherited_only:
        out.print(
            f"and {inherited_only} more regions whose feeds hold only items about a region "
            "that contains them"
        )
    out.print(f"feeds written to {rt.settings.feeds_dir}/ (index.opml lists them)")
    mail = send_demo_digests(rt)
    if mail.week:
        out.print(
            f"sending this week's editions ({mail.week}) now as an explicit early send "
            "(`digests send --all --early`, each reader's running week on their clock): the week "
            "is still running, so "
            "its scheduled fire sends these readers nothing more and later items go into "
            "next week's edition"
        )
    sent = Table("edition (region set)", "week", "status", "recipients", "sent", title="Editions")
    for digest in (d for r in mail.reports for d in r.digests):
        sent.add_row(
            digest.region, digest.week, digest.status, str(digest.recipients),
            str(digest.counts.get("sent", 0)),
        )  # fmt: skip
    out.print(sent)
    out.print(
        f"{mail.subscribers} demo subscribers (example.org) follow {len(mail.regions)} regions"
    )
    if mail.maildir is not None:
        count = len(list((mail.maildir / "new").glob("*")))
        out.print(f"messages: {count} in the Maildir {mail.maildir}/new/ (embedded SMTP server)")
    if mail.preview_file is not None:
        out.print(f"preview: {mail.preview_file}")
