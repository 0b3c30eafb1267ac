"""/admin/users (admins): the console accounts; add one, remove one. Each change is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from publisher.addresses import normalize_address
from publisher.errors import InputError
from publisher.i18n import gettext as _
from publisher.pipeline import accounts
from publisher.store import users as store
from publisher.web.admin.auth import AdminOnly, AdminUser
from publisher.web.admin.render import flash, page
from publisher.web.deps import SessionDep, StateDep

router = APIRouter()


def _page(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    *,
    errors: list[str] | None = None,
    email: str = "",
    role: str = "editor",
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "page_title": _("Users"),
        "accounts": store.list_users(session),
        "errors": errors or [],
        "email": email,
        "role": role,
        "min_password": accounts.MIN_PASSWORD,
        "max_password": accounts.MAX_PASSWORD,
    }
    return page(request, "admin/users.html", context, user=user, status_code=status_code)


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, user: AdminOnly, session: SessionDep) -> HTMLResponse:
    return _page(request, session, user)


def _problems(session: SessionDep, email: str, role: str, password: str) -> list[str]:
    """What is wrong with the form, in the reader's language."""
    problems = []
    try:
        address = normalize_address(email)
    except InputError:
        problems.append(_("That does not look like an email address."))
    else:
        if store.get_user_by_email(session, email=address) is not None:
            problems.append(_("That address already has an account."))
    if role not in accounts.ROLES:
        problems.append(_("Choose a role: editor or administrator."))
    if len(password) < accounts.MIN_PASSWORD:
        problems.append(
            _("The password must have at least %(num)d characters.")
            % {"num": accounts.MIN_PASSWORD}
        )
    elif len(password) > accounts.MAX_PASSWORD:
        problems.append(
            _("The password may have at most %(num)d characters.") % {"num": accounts.MAX_PASSWORD}
        )
    elif any(c in password for c in "\r\n\x00"):
        problems.append(_("The password may not hold a line break."))
    return problems


@router.post("/admin/users", response_class=HTMLResponse)
def add_user(
    request: Request,
    user: AdminOnly,
    session: SessionDep,
    state: StateDep,
    email: Annotated[str, Form(max_length=400)] = "",
    role: Annotated[str, Form(max_length=16)] = "editor",
    password: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    problems = _problems(session, email, role, password)
    if problems:
        return _page(
            request, session, user, errors=problems, email=email, role=role, status_code=400
        )
    try:
        added = accounts.add_user(
            session,
            email=email,
            role=role,
            password=password,
            actor=user.email,
            now=state.runtime.now(),
        )
    except InputError:  # taken between the check and the insert
        session.rollback()
        problem = _("That address already has an account.")
        return _page(
            request, session, user, errors=[problem], email=email, role=role, status_code=400
        )
    flash(request, _("Added the account %(email)s.") % {"email": added.email})
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/remove")
def remove_user(
    request: Request, user_id: int, user: AdminOnly, session: SessionDep, state: StateDep
) -> Response:
    target = store.get_user(session, user_id=user_id)
    if target is None:
        flash(request, _("That account no longer exists."))
    elif target.id == user.id:
        flash(request, _("You cannot remove your own account."))
    else:
        accounts.remove_user(session, email=target.email, actor=user.email, now=state.runtime.now())
        flash(request, _("Removed the account %(email)s.") % {"email": target.email})
    return RedirectResponse("/admin/users", status_code=303)
