"""Console pages: ``page()`` renders a template under admin/base.html; ``flash()`` leaves a message.

A flash shown by the page of the same request is rendered there; one left before a redirect
travels in a short signed cookie (``FlashCookie`` writes it) and is shown, once, by the next
console page. Every console answer is private (no-store, set by security.SecurityHeaders).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from itsdangerous import BadSignature, URLSafeSerializer
from markupsafe import Markup, escape
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from publisher.i18n import N_, gettext
from publisher.settings import Settings
from publisher.web.admin.auth import PATH, AdminUser, Refused
from publisher.web.deps import WebState
from publisher.web.templating import render

FLASH_COOKIE = "publisher_console_flash"
_MAX_FLASH = 3000  # characters of all pending messages together: a cookie stays small


@dataclass(frozen=True, slots=True)
class NavEntry:
    href: str
    label: str
    admin_only: bool


NAV = (
    NavEntry("/admin", N_("Dashboard"), False),
    NavEntry("/admin/items", N_("Items"), False),
    NavEntry("/admin/editions", N_("Editions"), False),
    NavEntry("/admin/subscribers", N_("Subscribers"), True),
    NavEntry("/admin/sources", N_("Sources"), True),
    NavEntry("/admin/bounces", N_("Bounces"), True),
    NavEntry("/admin/audit", N_("Audit log"), True),
    NavEntry("/admin/users", N_("Users"), True),
)


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(list(reversed(settings.secret_keys())), salt="publisher.console.flash")


def flash(request: Request, message: str) -> None:
    """Show ``message`` (already translated) on the next console page this browser opens."""
    pending: list[str] = request.scope.setdefault("state", {}).setdefault("admin_flashes", [])
    pending.append(message)


def _cookie_flashes(request: Request, settings: Settings) -> list[str]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    try:
        value = _serializer(settings).loads(raw)
    except BadSignature:
        return []
    return [m for m in value if isinstance(m, str)] if isinstance(value, list) else []


def _nav(request: Request, user: AdminUser | None) -> list[tuple[str, str, bool]]:
    """(href, label, current) of the entries ``user`` may open."""
    if user is None:
        return []
    path = request.url.path
    entries = []
    for entry in NAV:
        if entry.admin_only and not user.is_admin:
            continue
        here = path == entry.href or (entry.href != PATH and path.startswith(entry.href + "/"))
        entries.append((entry.href, gettext(entry.label), here))
    return entries


@jinja2.pass_context
def csrf_input(context: jinja2.runtime.Context) -> Markup:
    """The hidden field every console form carries (the session's or the login form's token)."""
    request: Request = context["request"]
    token = getattr(request.state, "csrf_token", None)
    if not token:
        raise RuntimeError("csrf_input() on a page without a console session or login form")
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(escape(token))


def install(templates: Any) -> None:
    """Make ``csrf_input()`` available to every template."""
    templates.env.globals["csrf_input"] = csrf_input


def page(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    user: AdminUser | None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A console page: ``name`` extends admin/base.html (nav for ``user``, flashes, language)."""
    state: WebState = request.app.state.web
    stored = _cookie_flashes(request, state.settings)
    pending: list[str] = request.scope.setdefault("state", {}).setdefault("admin_flashes", [])
    flashes = [*stored, *pending]
    pending.clear()
    values = {
        "page_title": None,
        "user": user,
        "nav": _nav(request, user),
        "flashes": flashes,
        **context,
    }
    response = render(
        state.templates, request, name, values, status_code=status_code, headers=headers
    )
    if stored:
        response.delete_cookie(FLASH_COOKIE, path=PATH)
    return response


class FlashCookie:
    """Pure ASGI: keeps messages flashed before a redirect in a signed cookie for the next page."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PATH):
            await self.app(scope, receive, send)
            return

        async def send_with_flashes(message: Message) -> None:
            if message["type"] == "http.response.start":
                pending = scope.get("state", {}).get("admin_flashes") or []
                if pending:
                    kept, size = [], 0
                    for text in pending:
                        size += len(text)
                        if size > _MAX_FLASH:
                            break
                        kept.append(text)
                    value = _serializer(self.settings).dumps(kept)
                    secure = "; Secure" if self.settings.base_url.startswith("https://") else ""
                    MutableHeaders(scope=message).append(
                        "set-cookie",
                        f"{FLASH_COOKIE}={value}; Path={PATH}; HttpOnly; SameSite=Lax{secure}",
                    )
            await send(message)

        await self.app(scope, receive, send_with_flashes)


async def refused(request: Request, exc: Exception) -> Response:
    """The 403 page, in the console's frame for whoever is logged in (exception handler)."""
    assert isinstance(exc, Refused)
    found = getattr(request.state, "admin_session", None)
    user = None if found is None else AdminUser(found.user_id, found.email, found.role)
    context = {"page_title": gettext(exc.title), "title": exc.title, "message": exc.message}
    return page(request, "admin/error.html", context, user=user, status_code=403)
