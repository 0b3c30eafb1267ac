"""The language of each page: middleware that negotiates it and remembers an explicit choice.

``?lang=es`` > the ``lang`` cookie > Accept-Language > DEFAULT_LOCALE. The choice is set as the
current locale for the whole request (templates, notices and error pages read it), sent as
Content-Language, and an explicit ``?lang=`` is remembered for a year. Responses say
``Vary: Accept-Language, Cookie`` so shared caches keep the languages apart.
"""

from __future__ import annotations

from http.cookies import SimpleCookie

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from publisher.i18n.context import set_locale
from publisher.i18n.negotiate import negotiate
from publisher.settings import Settings

COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 86_400


def request_locale(request: Request, settings: Settings) -> tuple[str, bool]:
    """(language, explicit) for ``request`` under the rules above."""
    return negotiate(
        query=request.query_params.get("lang"),
        cookie=request.cookies.get(COOKIE),
        header=request.headers.get("accept-language"),
        supported=settings.locale_list,
        default=settings.default_locale,
    )


def reader_locale(request: Request, settings: Settings, stored: str) -> str:
    """The pages of a signed link speak the subscriber's language unless ?lang= says otherwise."""
    locale, explicit = request_locale(request, settings)
    return locale if explicit else settings.pick_locale(stored)


class LocaleMiddleware:
    """Pure ASGI (no extra task), so the locale set here is the one the endpoint sees."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(("/api", "/feeds", "/static")):
            await self.app(scope, receive, send)
            return
        locale, explicit = request_locale(Request(scope), self.settings)
        set_locale(locale)
        scope.setdefault("state", {})["locale"] = locale

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "content-language" not in headers:
                    headers["content-language"] = locale
                headers.append("vary", "Accept-Language, Cookie")
                if explicit:
                    cookie: SimpleCookie = SimpleCookie()
                    cookie[COOKIE] = locale
                    morsel = cookie[COOKIE]
                    morsel["path"] = "/"
                    morsel["max-age"] = COOKIE_MAX_AGE
                    morsel["samesite"] = "Lax"
                    headers.append("set-cookie", morsel.OutputString())
            await send(message)

        await self.app(scope, receive, send_with_language)
