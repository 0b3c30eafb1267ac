"""What a request handler can ask for: the runtime, a session, the web state (all from app.state).

Nothing here exists at import time: ``create_app`` puts one ``WebState`` on ``app.state`` and
the dependencies read it from the request, so several apps (tests) can live side by side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from publisher.pipeline.send import SendReport, send_digests
from publisher.runtime import Runtime
from publisher.settings import Settings
from publisher.tokens import Tokens
from publisher.web.browse import RegionCounts
from publisher.web.feeds import FeedCache, FeedRebuilder
from publisher.web.ratelimit import Limiter

if TYPE_CHECKING:
    from starlette.templating import Jinja2Templates

    from publisher.pipeline.subscription import ConfirmationMailer

BackgroundService = Callable[[threading.Event], None]


@dataclass
class WebState:
    """Everything the app built from Settings: one per app, shared by all requests."""

    runtime: Runtime
    settings: Settings
    templates: Jinja2Templates
    tokens: Tokens
    feed_cache: FeedCache
    region_counts: RegionCounts
    ip_limit: Limiter
    address_limit: Limiter
    mailer: ConfirmationMailer
    rebuild_feeds: FeedRebuilder
    # The clock signed links are checked against: the Runtime's (tests move it to expire tokens).
    token_now: Callable[[], datetime]
    # Sends digests now (/api/digests/send); publisher.pipeline.send.send_digests in production.
    send_digests: Callable[..., SendReport] = field(default=send_digests)
    # Long-running parts started with the app (scheduler, delivery workers): each is called in
    # its own thread with a stop Event and must return soon after the event is set.
    services: list[BackgroundService] = field(default_factory=list)


def get_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def get_runtime(request: Request) -> Runtime:
    return get_state(request).runtime


def get_session(request: Request) -> Iterator[Session]:
    """A session committed when the handler returns (before the answer is sent)."""
    with get_state(request).runtime.session() as session:
        yield session


StateDep = Annotated[WebState, Depends(get_state)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
