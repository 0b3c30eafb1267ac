"""The web app: ``create_app(settings)`` builds pages, feeds, the subscription flow and /api.

Nothing is created at import time. The app owns one ``WebState`` (runtime, templates, tokens,
limits, feed cache) on ``app.state.web``; handlers get it through the dependencies in ``deps``.
GET /feeds/* is answered ahead of routing by ``feeds.FeedsEndpoint`` (readers poll; the 304
path must be cheap). Long-running parts (the scheduler and delivery workers of `publisher
serve`) are passed as ``services`` and run in threads for the app's lifetime (``lifespan``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from publisher.db import is_postgres
from publisher.i18n import N_, gettext, use_locale
from publisher.pipeline.feeds import build_store_feeds
from publisher.pipeline.subscription import FORM_VERSION, ConfirmationMailer
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.web import api, archive_pages, docs, ops, pages, subscription, webhooks
from publisher.web.admin import ROUTERS as ADMIN_ROUTERS
from publisher.web.admin import auth as admin_auth
from publisher.web.admin import render as admin_render
from publisher.web.admin.login import login_limits
from publisher.web.browse import RegionCounts
from publisher.web.coverage import coverage_root
from publisher.web.deps import BackgroundService, WebState
from publisher.web.feeds import FeedCache, FeedRebuilder, FeedsEndpoint
from publisher.web.guards import HostPolicy, refuse_host, without_body
from publisher.web.locale import LocaleMiddleware, request_locale
from publisher.web.ratelimit import Limiter, SharedWindow, SlidingWindow
from publisher.web.security import (
    BodyLimit,
    BodyTooLarge,
    SecurityHeaders,
    caused_by_limit,
    header_dict,
    security_headers,
)
from publisher.web.templating import make_templates, render

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
MESSAGES = {
    400: (
        N_("This link or form is not valid"),
        N_(
            "It may have expired, been cut short in your email "
            "program, or been meant for something else. Ask for a new one from the home page."
        ),
    ),
    404: (N_("Page not found"), N_("There is nothing at this address.")),
    405: (N_("Not allowed"), N_("This address does not answer that kind of request.")),
    413: (N_("Request too large"), N_("The form you sent is larger than this site accepts.")),
    429: (N_("Too many requests"), N_("Please wait a little and try again.")),
    500: (N_("Something went wrong"), N_("The error has been logged. Please try again later.")),
}


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api")


def _error(request: Request, status: int, headers: dict[str, str] | None = None) -> Response:
    title, message = MESSAGES.get(status, MESSAGES[500 if status >= 500 else 400])
    if _wants_json(request):
        return JSONResponse({"detail": title}, status_code=status, headers=headers)
    state: WebState = request.app.state.web
    locale = (
        request.scope.get("state", {}).get("locale") or request_locale(request, state.settings)[0]
    )
    with use_locale(locale):
        context = {"page_title": gettext(title), "title": title, "message": message}
        return render(
            state.templates, request, "error.html", context, status_code=status, headers=headers
        )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if caused_by_limit(exc):
        return _error(request, 413)
    if _wants_json(request):
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return _error(request, exc.status_code, dict(exc.headers) if exc.headers else None)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if _wants_json(request):
        return await request_validation_exception_handler(request, exc)
    return _error(request, 400)


async def _server_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, BodyTooLarge):
        return _error(request, 413)
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    # This answer is made outside the middleware stack, so it brings its own headers.
    return _error(request, 500, header_dict())


class PublisherApp(FastAPI):
    """FastAPI with the Host checked and replaced (``guards``), the feed files answered ahead of
    routing (``feeds.FeedsEndpoint``) and HEAD answered as GET without a body."""

    feeds: FeedsEndpoint | None = None
    hosts: HostPolicy | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.hosts is not None:
                if not self.hosts.admits(scope):
                    await refuse_host(send, security_headers())
                    return
                scope = self.hosts.rewrite(scope)
            if self.feeds is not None and await self.feeds(scope, send):
                return
            if scope["method"] == "HEAD":
                scope = {**scope, "method": "GET"}
                send = without_body(send)
        await super().__call__(scope, receive, send)


def build_feeds(rt: Runtime, settings: Settings) -> None:
    """Rebuild feeds/ from the store (only changed files are rewritten)."""
    with rt.session() as session:
        build_store_feeds(session, settings=settings, tree=rt.tree, now=rt.now())


def _run_services(services: list[BackgroundService]) -> Callable[[], None]:
    """Start each service in a thread; return the function that stops and joins them."""
    stop = threading.Event()
    threads = [
        threading.Thread(target=service, args=(stop,), name=f"service-{i}", daemon=True)
        for i, service in enumerate(services)
    ]
    for thread in threads:
        thread.start()

    def shutdown() -> None:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    return shutdown


def _limiters(rt: Runtime) -> tuple[Limiter, Limiter]:
    """The subscribe limits (per IP, per address): in the database on PostgreSQL, where several
    web processes must count together; in memory on SQLite (one machine, one web process)."""
    if is_postgres(rt.engine):
        return (
            SharedWindow(rt.engine, scope="ip", limit=10, window=600),
            SharedWindow(rt.engine, scope="address", limit=3, window=3600),
        )
    return SlidingWindow(limit=10, window=600), SlidingWindow(limit=3, window=3600)


def create_app(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    mailer: ConfirmationMailer | None = None,
    ip_limit: Limiter | None = None,
    address_limit: Limiter | None = None,
    services: list[BackgroundService] | None = None,
    deliver_outbox: bool = False,
) -> FastAPI:
    """The whole web app for ``settings`` (and an existing runtime, e.g. a test's).

    ``deliver_outbox``: run the outbox deliverer in this process (`serve`, not `--web-only`).
    """
    owns_runtime = runtime is None
    rt = runtime if runtime is not None else Runtime(settings)
    default_ip_limit, default_address_limit = _limiters(rt)
    coverage_root(rt.tree, settings.coverage)  # a bad COVERAGE stops the start, in one line
    state = WebState(
        runtime=rt,
        settings=settings,
        templates=make_templates(settings, rt.tree),
        tokens=rt.tokens,
        feed_cache=FeedCache(settings.feeds_dir, known_slugs=rt.tree),
        region_counts=RegionCounts(rt.tree),
        ip_limit=default_ip_limit if ip_limit is None else ip_limit,
        address_limit=default_address_limit if address_limit is None else address_limit,
        mailer=mailer or ConfirmationMailer(rt, settings=settings),
        rebuild_feeds=FeedRebuilder(lambda: build_feeds(rt, settings)),
        token_now=rt.now,
        services=list(services or []),
    )
    if deliver_outbox:  # this process sends the outbox too, woken by each signup
        state.services.append(state.mailer.run)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop_services = _run_services(state.services)
        try:
            yield
        finally:
            stop_services()
            state.mailer.close()
            if owns_runtime:
                rt.close()

    app = PublisherApp(
        title=f"{settings.site_title} admin API",
        version="1",
        description="Items, subscribers, digests and statistics. "
        "Every /api call needs `Authorization: Bearer <ADMIN_TOKEN>`.",
        lifespan=lifespan,
        redoc_url=None,
        docs_url=None,  # served by docs.docs_router with the app's own assets (offline)
        openapi_url=docs.OPENAPI_URL if settings.docs_public else None,
        exception_handlers={
            StarletteHTTPException: _http_error,
            RequestValidationError: _invalid_request,
            admin_auth.LoginRequired: admin_auth.login_required,
            admin_auth.Refused: admin_render.refused,
            Exception: _server_error,
        },
    )
    app.state.web = state
    app.feeds = FeedsEndpoint(state.feed_cache, security_headers())
    app.hosts = HostPolicy(settings)
    state.templates.env.globals["form_version"] = FORM_VERSION
    admin_render.install(state.templates)
    app.state.console_limits = login_limits(rt)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(LocaleMiddleware, settings=settings)
    app.add_middleware(admin_render.FlashCookie, settings=settings)
    app.include_router(pages.router)
    app.include_router(archive_pages.router)
    app.include_router(subscription.router)
    app.include_router(api.router)
    app.include_router(ops.router)
    app.include_router(webhooks.router)
    for router in ADMIN_ROUTERS:  # every POST under /admin carries its CSRF token
        app.include_router(
            router, dependencies=[Depends(admin_auth.check_csrf)], include_in_schema=False
        )
    if settings.docs_public:
        app.include_router(docs.docs_router(app.title))
    app.mount(docs.PREFIX, docs.assets(), name="docs-assets")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
