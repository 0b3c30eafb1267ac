"""A preview reads only the items of the chosen regions' related regions, and still shows
exactly what the whole window's plan would (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from publisher.digest.editions import first_window_start, plan_edition
from publisher.pipeline.edition_tools import preview_edition
from publisher.store.items import visible_between
from tests.conftest import FixedClockRuntime
from tests.edition_support import MONDAY, add_item

FRIDAY = MONDAY - timedelta(days=3)


def test_the_preview_reads_the_related_regions_only_and_plans_the_same(
    runtime: FixedClockRuntime,
) -> None:
    for title, regions in [("Guatemala", ["gt"]), ("Americas", ["americas"]),
                           ("Central America", ["central-america"]), ("Mexico", ["mx"]),
                           ("Chile", ["cl"]), ("Guatemala and Chile", ["gt", "cl"])]:  # fmt: skip
        add_item(runtime, title, regions, published=FRIDAY, arrives=FRIDAY)
    start = first_window_start(MONDAY)
    related = runtime.tree.related("gt") | runtime.tree.related("mx")
    with runtime.session() as session:
        everything = visible_between(session, after=start, until=MONDAY)
        scoped = visible_between(session, after=start, until=MONDAY, regions=related)
    assert sorted(i.title for i in scoped) == [
        "Americas",
        "Central America",
        "Guatemala",
        "Guatemala and Chile",
        "Mexico",
    ]
    whole = plan_edition(runtime.tree, ("gt", "mx"), everything, week="2026-W48",
                         window_start=start, cutoff=MONDAY)  # fmt: skip
    shown = preview_edition(runtime, ["gt", "mx"], "en", MONDAY, week="2026-W48")
    assert shown.item_ids == whole.item_ids and len(whole.item_ids) == 5
