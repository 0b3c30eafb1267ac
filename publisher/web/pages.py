"""Public pages: home, a region, an item, and the web copy of sent digests (with an Atom feed)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from publisher.errors import UnknownRegionError
from publisher.i18n import current_locale, gettext
from publisher.pipeline.digests import stored_rendition
from publisher.store.items import get_item, list_items
from publisher.web.archive import archive_atom, archived_digests, find_digest, web_copy
from publisher.web.browse import tree_rows, with_ancestors
from publisher.web.deps import SessionDep, StateDep
from publisher.web.security import ARCHIVE_CSP
from publisher.web.templating import FeedLink, feed_links, render

router = APIRouter(include_in_schema=False)
LATEST = 20
REGION_ITEMS = 50


def _form_regions(state: StateDep, counts: dict[str, int], extra: set[str]) -> list[object]:
    """Regions offered by the subscribe form: those with items, the default, and their parents."""
    tree = state.runtime.tree
    shown = with_ancestors(tree, {s for s, n in counts.items() if n > 0} | extra)
    return list(tree_rows(tree, counts, include=shown))


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep, state: StateDep) -> HTMLResponse:
    tree = state.runtime.tree
    counts = state.region_counts.get(session)
    default = state.settings.default_region
    rows = _form_regions(state, counts, {default} if default in tree else set())
    return render(
        state.templates,
        request,
        "home.html",
        {
            "tree": tree_rows(tree, counts, include=set()),
            "items": list_items(session, limit=LATEST),
            "form_regions": rows,
            "checked": {default},
        },
    )


@router.get("/regions/{slug}", response_class=HTMLResponse)
def region_page(request: Request, slug: str, session: SessionDep, state: StateDep) -> Response:
    tree = state.runtime.tree
    if slug not in tree:
        try:
            canonical = tree.normalize(slug)
        except UnknownRegionError:
            raise HTTPException(404, "no such region") from None
        return RedirectResponse(f"/regions/{canonical}", status_code=301)
    region = tree.get(slug)
    counts = state.region_counts.get(session)
    items = list_items(session, regions=tree.related(slug), limit=REGION_ITEMS)
    crumbs = [tree.get(s) for s in reversed(tree.ancestors(slug)) if tree.get(s).parent]
    children = [c for c in tree.children(slug) if counts.get(c.slug, 0) > 0]
    digests = archived_digests(session, region=slug)
    name = region.name(current_locale())
    feeds = feed_links(slug, name) + feed_links("all", gettext("All regions"))
    if digests:
        title = gettext("%(region)s weekly digests") % {"region": name}
        feeds.append(FeedLink("application/atom+xml", title, f"/archive/{slug}.atom", "Atom"))
    return render(
        state.templates,
        request,
        "region.html",
        {
            "page_title": name,
            "region": region,
            "crumbs": crumbs,
            "children": children,
            "counts": counts,
            "items": items,
            "digests": digests,
            "feeds": feeds,
            "form_regions": _form_regions(state, counts, {slug}),
            "checked": {slug},
        },
    )


@router.get("/items/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, item_id: str, session: SessionDep, state: StateDep) -> Response:
    if not item_id.isdigit() or len(item_id) > 18:
        raise HTTPException(404, "no such item")
    item = get_item(session, item_id=int(item_id))
    if item is None:
        raise HTTPException(404, "no such item")
    tree = state.runtime.tree
    feeds = [
        link
        for slug in item.regions[:1]
        if slug in tree
        for link in feed_links(slug, tree.get(slug).name(current_locale()))
    ]
    return render(
        state.templates,
        request,
        "item.html",
        {
            "page_title": item.title,
            "item": item,
            "paragraphs": [p for p in item.summary.split("\n") if p.strip()],
            "feeds": feeds + feed_links("all", gettext("All regions")),
        },
    )


@router.get("/archive/{slug}.atom")
def archive_feed(slug: str, session: SessionDep, state: StateDep) -> Response:
    tree = state.runtime.tree
    if slug not in tree:
        raise HTTPException(404, "no such region")
    body = archive_atom(
        archived_digests(session, region=slug),
        region=tree.get(slug),
        settings=state.settings,
    )
    return Response(body, media_type="application/atom+xml; charset=utf-8")


@router.get("/archive/{slug}/{week}", response_class=HTMLResponse)
def archive_page(slug: str, week: str, session: SessionDep, state: StateDep) -> Response:
    digest = find_digest(session, region=slug, week=week)
    if digest is None:
        raise HTTPException(404, "no digest for this region and week")
    # The copy in the reader's language when one was rendered for readers of it, else the first.
    shown = stored_rendition(session, digest, current_locale())
    return HTMLResponse(
        web_copy(digest, settings=state.settings, html=shown.html),
        headers={"content-security-policy": ARCHIVE_CSP, "content-language": shown.language},
    )
