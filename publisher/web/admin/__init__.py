"""The editors' console under /admin: one module per page group, each with its own ``router``.

    auth.py      AdminUser, EditorUser / AdminOnly dependencies, the CSRF check of every POST
    render.py    page() under admin/base.html, flash(), csrf_input() for templates
    login.py     /admin/login, /admin/logout (server-side sessions, rate-limited failures)
    audit.py     /admin/audit (admins)
    users.py     /admin/users (admins)
    dashboard.py /admin, the dashboard (editors and admins)
    items.py     /admin/items: list, add/edit with region suggestions, withdraw, upload
    subscribers.py       /admin/subscribers: search, a person, add, erase (admins)
    subscriber_files.py  /admin/subscribers/import and /export (admins)
    suppressions.py      /admin/suppressions (admins)
    editions.py  /admin/editions (preview, notes, hold/approve, test, early, progress)
    sources.py   /admin/sources (admins)
    bounces.py   /admin/bounces (admins)

``create_app`` includes every router of ``ROUTERS`` with the CSRF check as a dependency, so no
handler checks it itself.
"""

from __future__ import annotations

from fastapi import APIRouter

from publisher.web.admin import (
    audit,
    bounces,
    dashboard,
    editions,
    items,
    login,
    sources,
    subscriber_files,
    subscribers,
    suppressions,
    users,
)

ROUTERS: list[APIRouter] = [
    login.router,
    audit.router,
    users.router,
    dashboard.router,
    items.router,
    subscriber_files.router,
    subscribers.router,
    suppressions.router,
    editions.router,
    sources.router,
    bounces.router,
]
