"""COVERAGE: forms offer the whole subtree, grouped and collapsible; regions outside it refused."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from publisher.errors import ConfigError
from publisher.regions.tree import RegionTree
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.store.subscribers import get_by_email, regions_of
from publisher.web.app import create_app
from publisher.web.coverage import covered, form_tree, refused
from tests.conftest import FixedClockRuntime
from tests.web_support import Web, make_web


@pytest.fixture
def sqlite_runtime(make_settings: Callable[..., Settings]) -> Iterator[Runtime]:
    """Forms and their checks do not depend on the backend: one SQLite file is enough."""
    rt = FixedClockRuntime(make_settings())
    rt.migrate()
    yield rt
    rt.close()


@pytest.fixture
def web(sqlite_runtime: Runtime) -> Iterator[Web]:
    """An empty store (no items at all) with COVERAGE=americas."""
    yield from make_web(sqlite_runtime, coverage="americas")


def offered(html: str) -> set[str]:
    return set(re.findall(r'name="regions" value="([a-z0-9-]+)"', html))


def test_the_form_offers_all_of_coverage_without_items(web: Web) -> None:
    tree = web.runtime.tree
    html = web.client.get("/").text
    assert offered(html) == covered(tree, "americas")
    assert {"hn", "sv", "co", "ve", "central-america"} <= offered(html)
    assert "fr" not in offered(html) and "world" not in offered(html)
    # grouped under each parent, collapsible without JavaScript
    assert "<summary>Regions in Central America</summary>" in html
    assert html.count("<details") == sum(1 for s in covered(tree, "americas") if tree.children(s))
    assert "<script" not in html


def test_groups_open_on_the_way_to_a_checked_region(web: Web) -> None:
    html = web.client.get("/regions/hn").text
    assert 'value="hn" checked' in html
    opened = re.findall(r"<details open>\s*<summary>Regions in ([^<]+)</summary>", html)
    assert opened == ["Americas", "Latin America and the Caribbean", "Central America"]


def test_form_tree_nests_every_region_once() -> None:
    tree = RegionTree.load()
    root = form_tree(tree, "world", checked={"gt"})
    seen: list[str] = []

    def walk(node: object) -> None:
        seen.append(node.slug)  # type: ignore[attr-defined]
        for child in node.children:  # type: ignore[attr-defined]
            walk(child)

    walk(root)
    assert len(seen) == len(set(seen)) == len(tree)
    assert refused(tree, "americas", ["HN", "gt", "central-america"]) is None
    assert refused(tree, "americas", ["gt", "fr"]) == "fr"
    assert refused(tree, "americas", ["world"]) == "world"
    assert refused(tree, "americas", ["atlantis"]) == "atlantis"


def test_subscribing_outside_coverage_is_refused_clearly(web: Web) -> None:
    form = {"email": "ana@example.org", "regions": ["hn", "fr"]}
    r = web.client.post("/subscribe", data=form)
    assert r.status_code == 400
    assert "Region not offered" in r.text and "“fr”" in r.text and "Americas" in r.text
    with web.runtime.session() as session:
        assert get_by_email(session, email="ana@example.org") is None
    r = web.client.post("/subscribe", data={**form, "regions": ["hn"]})
    assert r.status_code == 200 and "Check your inbox" in r.text
    web.flush()
    with web.runtime.session() as session:
        assert get_by_email(session, email="ana@example.org") is not None


def test_preferences_refuse_a_region_outside_coverage_and_change_nothing(web: Web) -> None:
    web.client.post("/subscribe", data={"email": "ana@example.org", "regions": ["hn"]})
    web.flush()
    (link,) = web.outbox.confirm_links()
    path = "/confirm/" + link.rsplit("/confirm/", 1)[1]
    assert web.client.post(path).status_code == 200
    with web.runtime.session() as session:
        sub = get_by_email(session, email="ana@example.org")
        assert sub is not None and sub.id is not None
        key, sub_id = sub.key, sub.id
    prefs = "/preferences/" + web.state.tokens.make("preferences", key)
    page = web.client.get(prefs).text
    assert {"hn", "sv", "co", "ve"} <= offered(page) and 'value="hn" checked' in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    data = {"csrf": csrf.group(1), "action": "save", "regions": ["sv", "de"]}
    r = web.client.post(prefs, data=data)
    assert r.status_code == 400 and "“de”" in r.text and "Nothing was changed" in r.text
    with web.runtime.session() as session:
        assert regions_of(session, subscriber_id=sub_id) == ["hn"]
    r = web.client.post(prefs, data={**data, "regions": ["sv", "HN"]})
    assert r.status_code == 200 and "Your choices are saved" in r.text
    with web.runtime.session() as session:
        assert regions_of(session, subscriber_id=sub_id) == ["hn", "sv"]


def test_a_bad_coverage_stops_the_app_with_one_clear_line(sqlite_runtime: Runtime) -> None:
    settings = sqlite_runtime.settings.model_copy(update={"coverage": "atlantis"})
    with pytest.raises(ConfigError, match="COVERAGE 'atlantis' is not a region"):
        create_app(settings, runtime=sqlite_runtime)


def test_world_is_the_default_coverage(sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    assert runtime.settings.coverage == "world"
    assert covered(runtime.tree, runtime.settings.coverage) == frozenset(
        r.slug for r in runtime.tree
    )


HOSTILE_REGIONS = [
    "hn\r\nX-Injected: 1", "\u202ehn", "<script>alert(1)</script>", "x" * 5_000, "x" * 100_000,
    "", " ", "../fr", "FR", "250", "world", "hn\x00",
]  # fmt: skip


def test_hostile_region_values_are_refused_escaped_and_store_nothing(web: Web) -> None:
    for value in HOSTILE_REGIONS:
        r = web.client.post("/subscribe", data={"email": "eve@example.org", "regions": [value]})
        assert r.status_code == (413 if len(value) > 60_000 else 400), value[:20]
        assert "<script>alert" not in r.text and "X-Injected" not in r.headers
        if "\u202e" in value:  # a bidi override stays inside its own isolate
            assert "<bdi>“\u202ehn”</bdi>" in r.text
        assert len(r.content) < 20_000  # the value is cut short in the answer
    with web.runtime.session() as session:
        assert get_by_email(session, email="eve@example.org") is None
