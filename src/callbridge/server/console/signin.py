"""Signing in and out of the console.

`GET /console/sign-in` shows a form whose `token` field takes the API token (or the console
password); the form carries a CSRF token bound to a short-lived pre-session cookie. A good
sign-in sets the session cookie and goes to the call list; a bad one shows the form again with
a 401, and nothing says which part was wrong; ten failures in a minute from one address make
it wait (429).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from callbridge.server.console.auth import COOKIE, PRE_COOKIE, PRE_SESSION_SECONDS, SESSION_SECONDS
from callbridge.server.console.web import (
    PREFIX,
    SIGN_IN,
    Console,
    Handler,
    Visit,
    is_https,
    secured,
    session_of,
    templates,
)


def home(console: Console) -> Handler:
    async def handle(request: Request) -> Response:
        """`/console`: the call list when signed in, else the sign-in page."""
        signed_in = session_of(console, request) is not None
        return secured(RedirectResponse(f"{PREFIX}/calls" if signed_in else SIGN_IN,
                                        status_code=303))
    return handle


def sign_in_form(console: Console) -> Handler:
    async def handle(request: Request) -> Response:
        return _form(console, request)
    return handle


def _form(console: Console, request: Request, error: str = "", status_code: int = 200) -> Response:
    cookie, csrf = console.auth.issue_pre_session()
    response = templates.TemplateResponse(
        request, "sign_in.html",
        {"csrf": csrf, "error": error, "password": bool(console.server.settings.console_password)},
        status_code=status_code)
    response.set_cookie(PRE_COOKIE, cookie, max_age=PRE_SESSION_SECONDS, path=SIGN_IN,
                        httponly=True, secure=is_https(request), samesite="strict")
    return secured(response)


def sign_in(console: Console) -> Handler:
    async def handle(request: Request) -> Response:
        """Check the CSRF token and the credential; set the session cookie."""
        form = await request.form()
        csrf, token = form.get("csrf"), form.get("token")
        if not isinstance(csrf, str) or not console.auth.sign_in_csrf_ok(
                request.cookies.get(PRE_COOKIE), csrf):
            return _form(console, request, "The form had expired; sign in again.", 403)
        client = request.client.host if request.client is not None else ""
        if not console.auth.may_try(client):
            return _form(console, request, "Too many failed sign-ins; wait a minute.", 429)
        if not isinstance(token, str) or not console.auth.credentials_ok(token):
            console.auth.failed(client)
            return _form(console, request, "That token or password is not right.", 401)
        cookie, _ = console.auth.issue()
        response = RedirectResponse(f"{PREFIX}/calls", status_code=303)
        response.set_cookie(COOKIE, cookie, max_age=SESSION_SECONDS, path=PREFIX, httponly=True,
                            secure=is_https(request), samesite="strict")
        response.delete_cookie(PRE_COOKIE, path=SIGN_IN)
        return secured(response)
    return handle


async def sign_out(console: Console, visit: Visit) -> Response:
    console.auth.revoke(visit.session)
    response = RedirectResponse(SIGN_IN, status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, secure=is_https(visit.request),
                           samesite="strict")
    return response
