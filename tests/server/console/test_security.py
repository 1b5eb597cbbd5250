"""The console's defences over real sockets: no session, no console; no CSRF token, no state
change; the cookie's flags; the console is off without an API token."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import websockets
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from tests.databases import BACKENDS
from tests.e2e.harness import harness
from tests.server.console.kit import API_TOKEN, console_server, csrf_in, signed_in

pytestmark = pytest.mark.e2e

OPEN = {"/console", "/console/sign-in", "/console/static"}  # the way in, and public assets
STREAMS = {"/console/live/CA123/events"}
PARAMS = {"call_sid": "CA123", "command": "hangup"}


def console_routes(app: Starlette) -> tuple[list[str], list[str], list[str]]:
    """Every console route of the app itself, by kind: pages (GET), posts, sockets."""
    pages, posts, sockets = [], [], []
    for route in app.routes:
        path = getattr(route, "path", "")
        if not path.startswith("/console") or path in OPEN:
            continue
        concrete = path.format(**PARAMS)
        if isinstance(route, WebSocketRoute):
            sockets.append(concrete)
        elif isinstance(route, Route) and "POST" in (route.methods or set()):
            posts.append(concrete)
        elif concrete not in STREAMS:
            pages.append(concrete)
    return pages, posts, sockets


def client_for(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, trust_env=False, follow_redirects=False)


async def test_every_console_route_refuses_a_browser_without_a_session(tmp_path: Path) -> None:
    """Pages redirect to sign-in; posts get 403; the event stream 401; a forged cookie is
    no better than none. The routes come from the app's own table, so a new one is covered."""
    async with console_server(tmp_path) as h:
        pages, posts, sockets = console_routes(h.server.app)
        assert {"/console/overview", "/console/agents", "/console/jobs",
                "/console/softphone"} <= set(pages)
        assert "/console/jobs/retry" in posts
        assert sockets == ["/console/softphone/socket"]  # refused in its own test below
        for cookies in ({}, {"callbridge_console": "4102444800.abc.deadbeef"}):
            async with client_for(h.server.url) as client:
                client.cookies.update(cookies)
                home = await client.get("/console")
                assert (home.status_code, home.headers["location"]) == (303,
                                                                        "/console/sign-in")
                for path in pages:
                    response = await client.get(path)
                    assert response.status_code == 303, path
                    assert response.headers["location"] == "/console/sign-in", path
                for path in posts:
                    response = await client.post(path, data={"csrf": "x"})
                    assert response.status_code == 403, path
                for path in STREAMS:
                    assert (await client.get(path)).status_code == 401, path


async def test_sign_in_sets_a_strict_http_only_cookie_secure_over_https(tmp_path: Path) -> None:
    """HttpOnly, SameSite=Strict, path /console; Secure when the request came over HTTPS."""
    async with console_server(tmp_path) as h:
        async with client_for(h.server.url) as client:
            plain = await signed_in(client)
        async with client_for(h.server.url) as client:
            client.headers["X-Forwarded-Proto"] = "https"  # uvicorn trusts loopback proxies
            form = await client.get("/console/sign-in")
            # a Secure cookie is not sent back over plain HTTP, so hand it over as a browser
            # on HTTPS would
            pre = form.headers["set-cookie"].split(";")[0]
            assert "secure" in form.headers["set-cookie"].lower()
            secure = await client.post("/console/sign-in", headers={"Cookie": pre},
                                       data={"csrf": csrf_in(form.text), "token": API_TOKEN})
    assert plain.status_code == 303
    assert plain.headers["location"] == "/console/calls"
    cookie = next(v for v in plain.headers.get_list("set-cookie")
                  if v.startswith("callbridge_console="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/console"} <= flags
    assert "secure" not in flags
    secure_cookie = next(v for v in secure.headers.get_list("set-cookie")
                         if v.startswith("callbridge_console="))
    assert "secure" in {p.strip().lower() for p in secure_cookie.split(";")[1:]}


async def test_a_wrong_token_or_missing_csrf_token_does_not_sign_in(tmp_path: Path) -> None:
    """A wrong token shows the form again (401) without a session; no CSRF token is a 403."""
    async with console_server(tmp_path) as h:
        async with client_for(h.server.url) as client:
            wrong = await signed_in(client, token="not-the-token")
            assert wrong.status_code == 401
            assert "callbridge_console=" not in " ".join(wrong.headers.get_list("set-cookie"))
            assert (await client.get("/console/calls")).status_code == 303
        async with client_for(h.server.url) as client:
            bare = await client.post("/console/sign-in", data={"token": API_TOKEN})
            assert bare.status_code == 403
            assert (await client.get("/console/calls")).status_code == 303


async def test_repeated_wrong_tokens_make_the_address_wait(tmp_path: Path) -> None:
    """Ten wrong tokens in a minute: even the right one is refused (429) for now."""
    async with console_server(tmp_path) as h:
        async with client_for(h.server.url) as client:
            for _ in range(10):
                assert (await signed_in(client, token="guess")).status_code == 401
            blocked = await signed_in(client)
    assert blocked.status_code == 429
    assert "callbridge_console=" not in " ".join(blocked.headers.get_list("set-cookie"))


async def test_forms_refuse_a_missing_or_wrong_csrf_token(tmp_path: Path) -> None:
    """Signed in, a post without the session's CSRF token, or with another's, changes nothing."""
    async with console_server(tmp_path) as h:
        async with client_for(h.server.url) as other:
            await signed_in(other)
            others_token = csrf_in((await other.get("/console/calls")).text)
        async with client_for(h.server.url) as client:
            await signed_in(client)
            mine = csrf_in((await client.get("/console/calls")).text)
            for data in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": others_token}):
                response = await client.post("/console/sign-out", data=data)
                assert response.status_code == 403, data
            assert (await client.get("/console/calls")).status_code == 200, "still signed in"
            out = await client.post("/console/sign-out", data={"csrf": mine})
            assert (out.status_code, out.headers["location"]) == (303, "/console/sign-in")
            replayed = await client.get("/console/calls")
    assert replayed.status_code == 303, "a signed-out session is refused even if replayed"


async def test_console_pages_carry_a_strict_content_security_policy(tmp_path: Path) -> None:
    """Own-origin scripts only, no framing, no sniffing, no caching."""
    async with console_server(tmp_path) as h:
        async with client_for(h.server.url) as client:
            await signed_in(client)
            response = await client.get("/console/calls")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert not re.search(r"unsafe-(inline|eval)", policy)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


async def test_the_console_is_off_without_an_api_token() -> None:
    """No CALLBRIDGE_API_TOKEN: /console does not exist."""
    async with harness() as h:
        async with client_for(h.server.url) as client:
            assert (await client.get("/console")).status_code == 404
            assert (await client.get("/console/sign-in")).status_code == 404


async def test_the_softphone_socket_needs_a_session_and_a_same_origin_page(
        tmp_path: Path) -> None:
    """Refused before accept (HTTP 403) without a session, with a forged cookie or from another
    origin; accepted from a signed-in page of this host."""
    async with console_server(tmp_path) as h:
        async with client_for(h.server.url) as client:
            await signed_in(client)
            cookie = f"callbridge_console={client.cookies['callbridge_console']}"
        host = h.server.url.removeprefix("http://")
        url = f"ws://{host}/console/softphone/socket"
        refusals = [
            {"Origin": f"http://{host}"},
            {"Origin": f"http://{host}", "Cookie": "callbridge_console=4102444800.a.b"},
            {"Origin": "https://evil.example", "Cookie": cookie},
            {"Cookie": cookie},
        ]
        for headers in refusals:
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(url, additional_headers=headers,
                                              origin=None):
                    pass
            assert refused.value.response.status_code == 403, headers
        async with websockets.connect(url, additional_headers={"Cookie": cookie},
                                      origin=websockets.Origin(f"http://{host}")) as ws:
            first = json.loads(await ws.recv())
            await ws.send(json.dumps({"event": "stop", "stop": {}}))
    assert first["event"] == "softphone"
    assert first["callSid"].startswith("BR")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_call_id_the_database_would_refuse_is_simply_not_found(
        backend: str, tmp_path: Path) -> None:
    """Too long, or holding NUL (which PostgreSQL refuses in text): 404, not a database error;
    an unknown id is 404 as well."""
    async with console_server(tmp_path, backend=backend) as h:
        async with client_for(h.server.url) as client:
            await signed_in(client)
            statuses = [(await client.get(f"/console/calls/{sid}")).status_code
                        for sid in ("CA" + "1" * 80, "CA%00x", "CAunknown")]
    assert statuses == [404, 404, 404]
