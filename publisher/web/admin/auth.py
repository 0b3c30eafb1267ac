"""Who is asking: the console's session cookie, role checks and the CSRF check of every POST.

``EditorUser`` / ``AdminOnly`` are the dependencies pages declare. Without a live session a
page answers 303 to /admin/login?next=...; with the wrong role, a 403 page. ``check_csrf`` is
put on every console router by ``create_app``: a POST (or any unsafe method) without this
session's token, in the form field ``csrf_token`` or the ``X-CSRF-Token`` header, gets 403.
The login form has no session yet: its token is an HMAC of a nonce kept in a cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal, cast
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from publisher.i18n import N_
from publisher.pipeline.accounts import current
from publisher.store.users import SessionUser
from publisher.web.deps import WebState

COOKIE = "publisher_console"
LOGIN_COOKIE = "publisher_console_login"
PATH = "/admin"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_NO_SESSION = object()

Role = Literal["editor", "admin"]


@dataclass(frozen=True, slots=True)
class AdminUser:
    """The person behind a console request."""

    id: int
    email: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class LoginRequired(Exception):
    """No live session: the answer is a redirect to the login page, back to ``next`` after."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class Refused(Exception):
    """A 403: the wrong role, or a form without its CSRF token (``title``/``message``: N_)."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(title)
        self.title = title
        self.message = message


NOT_YOURS = Refused(
    N_("Not for your account"),
    N_("This page is for administrators. Ask an administrator if you need it."),
)
STALE_FORM = Refused(
    N_("This form has expired"),
    N_(
        "The form was not sent from this console, or your session changed. "
        "Reload the page and try again."
    ),
)


def safe_next(value: str | None) -> str:
    """``value`` when it is a local console path, else /admin (no open redirect)."""
    if not value or len(value) > 2000 or not value.isprintable() or "\\" in value:
        return PATH
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        return PATH
    if parts.path != PATH and not parts.path.startswith(PATH + "/"):
        return PATH
    if "/../" in parts.path + "/" or "/./" in parts.path + "/":
        return PATH
    return value


def login_url(next_url: str) -> str:
    return f"{PATH}/login?next={quote(next_url, safe='/')}"


def _state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def session_user(request: Request) -> SessionUser | None:
    """The live session of this request's cookie (looked up once per request)."""
    cached = getattr(request.state, "admin_session", _NO_SESSION)
    if cached is not _NO_SESSION:
        return cast(SessionUser | None, cached)
    token = request.cookies.get(COOKIE, "")
    found = None
    if token:
        rt = _state(request).runtime
        with rt.session() as session:
            found = current(session, token=token, now=rt.now())
    request.state.admin_session = found
    if found is not None:
        request.state.csrf_token = found.csrf
    return found


def require_role(role: Role) -> Callable[[Request], AdminUser]:
    """A dependency answering the AdminUser of a live session with at least ``role``."""

    def dependency(request: Request) -> AdminUser:
        found = session_user(request)
        if found is None:
            here = request.url.path
            if request.url.query:
                here += "?" + request.url.query
            raise LoginRequired(safe_next(here) if request.method == "GET" else PATH)
        if role == "admin" and found.role != "admin":
            raise NOT_YOURS
        user = AdminUser(found.user_id, found.email, cast(Role, found.role))
        request.state.admin_user = user
        return user

    return dependency


EditorUser = Annotated[AdminUser, Depends(require_role("editor"))]
AdminOnly = Annotated[AdminUser, Depends(require_role("admin"))]


def _signing_key(request: Request) -> bytes:
    return _state(request).settings.secret_keys()[0].encode()


def login_token(request: Request, nonce: str) -> str:
    """The login form's CSRF token for the nonce in its cookie."""
    mac = hmac.new(_signing_key(request), b"console-login:" + nonce.encode(), hashlib.sha256)
    return mac.hexdigest()


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def _same_origin(request: Request) -> bool:
    """False for a request whose Origin names another site (the token is checked as well)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


async def check_csrf(request: Request) -> None:
    """Refuse an unsafe request that does not carry this session's (or login form's) token."""
    if request.method in SAFE_METHODS:
        return
    if not _same_origin(request):
        raise STALE_FORM
    sent = request.headers.get("x-csrf-token", "")
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get("csrf_token", "")
            sent = value if isinstance(value, str) else ""
    if request.url.path == f"{PATH}/login":
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        expected = login_token(request, nonce) if nonce else ""
    else:
        found = await run_in_threadpool(session_user, request)
        expected = found.csrf if found is not None else ""
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise STALE_FORM


async def login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(login_url(exc.next_url), status_code=303)


def session_cookie_options(request: Request) -> dict[str, object]:
    """HttpOnly, SameSite=Lax, path /admin, Secure when BASE_URL is https."""
    secure = _state(request).settings.base_url.startswith("https://")
    return {"httponly": True, "samesite": "lax", "secure": secure, "path": PATH}
