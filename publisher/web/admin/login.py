"""/admin/login and /admin/logout: a server-side session in an HttpOnly cookie.

Failed logins are counted per account and per client address in the shared rate_limits table
(every web process counts together); a blocked account or address gets the same 429 page
whether the account exists or not, and so does a wrong password or an unknown address (400).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from publisher.i18n import gettext as _
from publisher.i18n import ngettext
from publisher.pipeline import accounts
from publisher.runtime import Runtime
from publisher.web.admin.auth import (
    COOKIE,
    LOGIN_COOKIE,
    PATH,
    EditorUser,
    login_token,
    new_login_nonce,
    safe_next,
    session_cookie_options,
    session_user,
)
from publisher.web.admin.render import flash, page
from publisher.web.deps import SessionDep, StateDep
from publisher.web.ratelimit import SharedWindow

router = APIRouter()
FAILURES_PER_ACCOUNT = 5
FAILURES_PER_IP = 20
FAILURE_WINDOW = 900  # seconds


@dataclass
class LoginLimits:
    """Failed logins allowed per account and per client address in FAILURE_WINDOW."""

    account: SharedWindow
    ip: SharedWindow


def login_limits(rt: Runtime) -> LoginLimits:
    """Counters on the runtime's clock (tests move it instead of sleeping)."""

    def clock() -> float:
        return rt.now().timestamp()

    return LoginLimits(
        account=SharedWindow(
            rt.engine, scope="login-account", limit=FAILURES_PER_ACCOUNT,
            window=FAILURE_WINDOW, clock=clock,
        ),
        ip=SharedWindow(
            rt.engine, scope="login-ip", limit=FAILURES_PER_IP, window=FAILURE_WINDOW, clock=clock
        ),
    )  # fmt: skip


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _account_key(email: str) -> str:
    return email.strip().lower()[:320]


def _form(
    request: Request,
    *,
    email: str = "",
    next_url: str = "",
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    nonce = request.cookies.get(LOGIN_COOKIE) or new_login_nonce()
    request.state.csrf_token = login_token(request, nonce)
    context = {
        "page_title": _("Log in"),
        "email": email,
        "next": safe_next(next_url),
        "error": error,
    }
    response = page(request, "admin/login.html", context, user=None, status_code=status_code)
    options = session_cookie_options(request)
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=86_400, **options)  # type: ignore[arg-type]
    return response


@router.get("/admin/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "") -> Response:
    """The form; someone already logged in goes straight on."""
    if session_user(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _form(request, next_url=next)


@router.post("/admin/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    state: StateDep,
    email: Annotated[str, Form(max_length=400)] = "",
    password: Annotated[str, Form(max_length=4096)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    limits: LoginLimits = request.app.state.console_limits
    key = _account_key(email)
    wait = max(limits.ip.wait(_ip(request)), limits.account.wait(key))
    if wait:
        minutes = max(1, -(-wait // 60))
        message = ngettext(
            "Too many failed logins. Try again in %(num)d minute.",
            "Too many failed logins. Try again in %(num)d minutes.",
            minutes,
        ) % {"num": minutes}
        response = _form(request, email=email, next_url=next, error=message, status_code=429)
        response.headers["retry-after"] = str(wait)
        return response
    user = accounts.authenticate(session, email=email, password=password)
    if user is None:
        limits.ip.hit(_ip(request))
        limits.account.hit(key)
        error = _("That email address and password do not match an account.")
        return _form(request, email=email, next_url=next, error=error, status_code=400)
    rt = state.runtime
    new = accounts.log_in(
        session, user=user, now=rt.now(), hours=state.settings.admin_session_hours
    )
    done = RedirectResponse(safe_next(next), status_code=303)
    options = session_cookie_options(request)
    max_age = int(state.settings.admin_session_hours * 3600)
    done.set_cookie(COOKIE, new.token, max_age=max_age, **options)  # type: ignore[arg-type]
    done.delete_cookie(LOGIN_COOKIE, path=PATH)
    return done


@router.post("/admin/logout")
def logout(request: Request, user: EditorUser, session: SessionDep, state: StateDep) -> Response:
    accounts.log_out(
        session, token=request.cookies.get(COOKIE, ""), email=user.email, now=state.runtime.now()
    )
    flash(request, _("You are logged out."))
    response = RedirectResponse(f"{PATH}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PATH)
    return response
