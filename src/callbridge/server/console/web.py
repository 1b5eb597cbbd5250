"""What every console handler shares: the session guard, CSRF checks, rendering templates with
autoescaping, and the security headers every console response carries.

A page asked for without a session redirects to the sign-in page; anything else without one
(a form post, the event stream) is refused with 401 or 403. Responses forbid framing, inline
script and every origin but our own (no CDN: every asset is served from the package).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from callbridge.server.console.auth import COOKIE, ConsoleAuth, Session
from callbridge.server.console.live import LiveCalls

if TYPE_CHECKING:
    from callbridge.server.app import CallbridgeServer

HERE = Path(__file__).parent
PREFIX = "/console"
SIGN_IN = f"{PREFIX}/sign-in"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(env=jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True))


@dataclass
class Console:
    """The console's per-process state."""

    server: CallbridgeServer
    auth: ConsoleAuth
    live: LiveCalls


@dataclass(frozen=True)
class Visit:
    """A request made with a valid session."""

    request: Request
    session: Session
    csrf: str


Page = Callable[[Console, Visit], Awaitable[Response]]
Handler = Callable[[Request], Awaitable[Response]]


def secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def is_https(request: Request) -> bool:
    return request.url.scheme in ("https", "wss")


def session_of(console: Console, request: Request) -> Session | None:
    return console.auth.read(request.cookies.get(COOKIE))


def page(console: Console, handler: Page) -> Handler:
    """A GET page: without a session the browser goes to the sign-in page."""
    async def handle(request: Request) -> Response:
        session = session_of(console, request)
        if session is None:
            return secured(RedirectResponse(SIGN_IN, status_code=303))
        return secured(await handler(console, Visit(request, session,
                                                     console.auth.csrf_token(session))))
    return handle


def action(console: Console, handler: Page) -> Handler:
    """A state-changing POST: needs a session and its CSRF token (form field or header)."""
    async def handle(request: Request) -> Response:
        session = session_of(console, request)
        if session is None:
            return secured(PlainTextResponse("sign in first\n", status_code=403))
        form = await request.form()
        given = request.headers.get("x-csrf-token") or form.get("csrf")
        if not isinstance(given, str) or not console.auth.csrf_ok(session, given):
            return secured(PlainTextResponse("missing or wrong CSRF token\n", status_code=403))
        return secured(await handler(console, Visit(request, session,
                                                    console.auth.csrf_token(session))))
    return handle


def render(visit: Visit, name: str, status_code: int = 200, **context: Any) -> Response:
    response: Response = templates.TemplateResponse(
        visit.request, name, {"csrf": visit.csrf, **context}, status_code=status_code)
    return response


def back_to(path: str, note: str = "", error: str = "") -> Response:
    """After a form post, show `path` (same-site, from our own routes) with a one-line note."""
    query = urlencode({k: v for k, v in (("note", note), ("error", error)) if v})
    return RedirectResponse(path + (f"?{query}" if query else ""), status_code=303)
