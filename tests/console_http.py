"""HTTP helpers for console tests: an app on the ``runtime`` fixture, logged in through the form.

web = console_app(runtime)            # TestClient, editor and admin accounts added
as_admin = logged_in(web, ADMIN)     # a client with a console session
token = csrf_token(as_admin, "/admin/sources")
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.testclient import TestClient

from publisher.runtime import Runtime
from publisher.store import audit
from publisher.web.app import create_app
from tests.console_support import ADMIN, EDITOR, add_accounts

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
__all__ = ["ADMIN", "EDITOR", "ConsoleApp", "audit_rows", "console_app", "csrf_token", "log_in"]


@dataclass
class ConsoleApp:
    app: FastAPI
    runtime: Runtime

    def client(self) -> TestClient:
        return TestClient(
            self.app,
            base_url=self.runtime.settings.base_url,  # https: the session cookie is Secure
            raise_server_exceptions=True,
            follow_redirects=False,
        )


@contextmanager
def console_app(runtime: Runtime) -> Iterator[ConsoleApp]:
    """The whole app over ``runtime`` with the editor and admin accounts of console_support."""
    add_accounts(runtime)  # type: ignore[arg-type]
    app = create_app(runtime.settings, runtime=runtime)
    with TestClient(app):  # runs the lifespan once
        yield ConsoleApp(app, runtime)


def log_in(web: ConsoleApp, account: tuple[str, str]) -> TestClient:
    """A client logged in as ``account`` through the login form."""
    client = web.client()
    form = client.get("/admin/login")
    found = _TOKEN.search(form.text)
    assert found, "the login form has no CSRF field"
    email, password = account
    answer = client.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf_token": found.group(1)},
    )
    assert answer.status_code == 303, answer.text[:500]
    return client


def csrf_token(client: TestClient, path: str) -> str:
    """The session's CSRF token, read from a form on the console page at ``path``."""
    found = _TOKEN.search(client.get(path).text)
    assert found, f"no form with a CSRF token on {path}"
    return found.group(1)


def audit_rows(runtime: Runtime, action: str = "") -> list[tuple[str, str, str, str]]:
    """(actor, action, target, detail) of the audit log, newest first."""
    with runtime.session() as session:
        return [
            (e.actor, e.action, e.target, e.detail)
            for e in audit.page(session, action=action, limit=1000)
        ]
