"""The web side: public pages, feeds over HTTP, the subscription lifecycle and the admin API.

    app.py                 create_app(settings): the FastAPI app, error pages, lifespan
    deps.py                WebState on app.state.web; SessionDep, StateDep, RuntimeDep
    pages.py, browse.py    home, /regions/{slug}, /items/{id}; the region tree with counts
    archive.py             web copy of a sent digest, /archive/{slug}.atom
    archive_pages.py       /archive, /archive/{slug}, /archive/{slug}/{week} (items by visible_at)
    coverage.py            COVERAGE: the regions forms offer (grouped, collapsible) and accept
    feeds.py               /feeds/{name}: ETag, Last-Modified, 304, gzip, ahead of routing
    subscription.py        /subscribe, /confirm, /preferences, /unsubscribe (RFC 8058)
    api.py, api_admin.py   /api: items, subscribers, digests, stats (bearer ADMIN_TOKEN)
    security.py            security headers, body size limits
    ratelimit.py           the sliding-window limiter of the subscribe form
    templating.py          Jinja2 pages (autoescaped), URL and date filters
    ops.py                 /healthz and /metrics
    docs.py                /docs (Swagger UI) and /redoc with their bundles served by the app
    admin/                 the editors' console under /admin (sessions, roles, CSRF, pages)

Nothing here builds settings or an engine at import time: entry points call ``create_app``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from publisher.web.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from publisher.web.app import create_app

        return create_app
    raise AttributeError(name)
