"""`publisher serve`: migrate, build the feeds, and run the web app with uvicorn.

Background parts (the scheduler, delivery workers) join the same process through
``SERVICES``: each factory gets the Runtime and returns a callable that runs until the stop
event it is given is set; the app's lifespan starts them in threads and stops them on exit.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable

import typer

from publisher.cli.bounces import serve_background as bounce_background
from publisher.cli.context import out, runtime
from publisher.cli.service import serve_background
from publisher.pipeline.feeds import build_store_feeds
from publisher.runtime import Runtime

ServiceFactory = Callable[[Runtime], Callable[[threading.Event], None]]

# The long-running parts `publisher serve` starts next to the web app (scheduler, delivery; the
# bounce receiver, IMAP poller and applier).
SERVICES: list[ServiceFactory] = [serve_background, bounce_background]


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    proxy_headers: bool = typer.Option(
        True, help="Trust X-Forwarded-For from FORWARDED_ALLOW_IPS (nginx in front)."
    ),
    # -- scheduler/service engineer (issue 5): compose runs the web alone, the scheduler and
    # workers as their own services, and nginx in another container.
    web_only: bool = typer.Option(
        False, "--web-only", help="Only the web app: no scheduler, no delivery (scale-out)."
    ),
    forwarded_allow_ips: str | None = typer.Option(
        None,
        "--forwarded-allow-ips",
        help="Proxies whose X-Forwarded-For is trusted, comma-separated "
        "(default: the FORWARDED_ALLOW_IPS setting, 127.0.0.1).",
    ),
) -> None:
    """Web pages, feeds, subscriptions and /api in one process (plus the background services)."""
    import uvicorn

    from publisher.web.app import create_app
    from publisher.web.server import server_options

    rt = runtime(ctx)
    rt.settings = rt.settings.with_local_secret()
    rt.migrate()
    with rt.session() as session:
        report = build_store_feeds(session, settings=rt.settings, tree=rt.tree, now=rt.now())
    out.print(f"{len(report.files)} feed files in {rt.settings.feeds_dir}/")
    services = [] if web_only else [make(rt) for make in SERVICES]
    app = create_app(rt.settings, runtime=rt, services=services)
    options = server_options(rt.settings)
    options["proxy_headers"] = proxy_headers
    if forwarded_allow_ips is not None:
        options["forwarded_allow_ips"] = forwarded_allow_ips
    fast = importlib.util.find_spec("uvloop")
    out.print(f"serving {rt.settings.site_title} on http://{host}:{port}/")
    uvicorn.run(
        app, host=host, port=port, loop="uvloop" if fast else "asyncio", log_level="info", **options
    )
