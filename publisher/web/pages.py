"""Public pages: home, a region, an item (embargoed: 404; withdrawn: 410), the digest Atom feed."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from publisher.errors import UnknownRegionError
from publisher.i18n import current_locale, gettext
from publisher.pipeline.digests import rendered_of, wholes
from publisher.store.items import get_item, list_items
from publisher.store.withdrawn import find_withdrawn
from publisher.web.archive import archive_atom, archived_digests
from publisher.web.browse import tree_rows
from publisher.web.coverage import covered, form_tree
from publisher.web.deps import SessionDep, StateDep
from publisher.web.templating import FeedLink, feed_links, render

router = APIRouter(include_in_schema=False)
LATEST = 20
REGION_ITEMS = 50


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep, state: StateDep) -> HTMLResponse:
    tree = state.runtime.tree
    now = state.runtime.now()
    counts = state.region_counts.get(session, now=now)
    default = state.settings.default_region
    checked = {default} & covered(tree, state.settings.coverage)
    return render(
        state.templates,
        request,
        "home.html",
        {
            "tree": tree_rows(tree, counts, include=set()),
            "items": list_items(session, limit=LATEST, visible_by=now),
            "form_tree": form_tree(tree, state.settings.coverage, checked=checked),
            "checked": checked,
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
    now = state.runtime.now()
    counts = state.region_counts.get(session, now=now)
    items = list_items(session, regions=tree.related(slug), limit=REGION_ITEMS, visible_by=now)
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
            "form_tree": form_tree(tree, state.settings.coverage, checked={slug}),
            "checked": {slug},
        },
    )


@router.get("/items/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, item_id: str, session: SessionDep, state: StateDep) -> Response:
    if not item_id.isdigit() or len(item_id) > 18:
        raise HTTPException(404, "no such item")
    item = get_item(session, item_id=int(item_id), visible_by=state.runtime.now())
    tree = state.runtime.tree
    if item is None:
        gone = find_withdrawn(session, item_id=int(item_id))
        if gone is None:
            raise HTTPException(404, "no such item")  # an embargoed item looks like no item
        regions = [s for s in gone.regions.split() if s in tree]
        context = {"page_title": gettext("Withdrawn"), "item": gone, "regions": regions}
        return render(state.templates, request, "withdrawn.html", context, status_code=410)
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
    digests = archived_digests(session, region=slug)
    made = wholes(session, [(d, rendered_of(d, None)) for d in digests])
    texts = {d.id: m.text for d, m in zip(digests, made, strict=True)}
    body = archive_atom(digests, texts=texts, region=tree.get(slug), settings=state.settings)
    return Response(body, media_type="application/atom+xml; charset=utf-8")
