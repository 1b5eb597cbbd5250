"""The console: a web UI for the call record, live calls and the softphone, at `/console`.

Server-rendered HTML (Jinja2, autoescaped), one stylesheet and a few scripts shipped in this
package (no CDN), on only when `CALLBRIDGE_API_TOKEN` is set. `routes()` is the route table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from callbridge.server.console import live_pages, ops_pages, pages, signin, softphone
from callbridge.server.console.auth import ConsoleAuth
from callbridge.server.console.live import LiveCalls
from callbridge.server.console.web import HERE, Console, action, page

if TYPE_CHECKING:
    from callbridge.server.app import CallbridgeServer


def routes(server: CallbridgeServer) -> list[BaseRoute]:
    """The console's routes; none when no API token is configured (the console is off)."""
    settings = server.settings
    if not settings.api_token:
        return []
    console = Console(server, ConsoleAuth(settings.api_token, settings.console_password),
                      LiveCalls(server))
    return [
        Route("/console", signin.home(console), methods=["GET"]),
        Route("/console/sign-in", signin.sign_in_form(console), methods=["GET"]),
        Route("/console/sign-in", signin.sign_in(console), methods=["POST"]),
        Route("/console/sign-out", action(console, signin.sign_out), methods=["POST"]),
        Route("/console/calls", page(console, pages.call_list), methods=["GET"]),
        Route("/console/calls/{call_sid}", page(console, pages.call_page), methods=["GET"]),
        Route("/console/live", page(console, live_pages.live_list), methods=["GET"]),
        Route("/console/live/{call_sid}", page(console, live_pages.live_call), methods=["GET"]),
        Route("/console/live/{call_sid}/events", live_pages.events(console), methods=["GET"]),
        Route("/console/live/{call_sid}/{command}", action(console, live_pages.command),
              methods=["POST"]),
        Route("/console/overview", page(console, ops_pages.overview), methods=["GET"]),
        Route("/console/agents", page(console, ops_pages.agents), methods=["GET"]),
        Route("/console/jobs", page(console, ops_pages.jobs), methods=["GET"]),
        Route("/console/jobs/retry", action(console, ops_pages.retry), methods=["POST"]),
        Route("/console/softphone", page(console, softphone.softphone_page), methods=["GET"]),
        WebSocketRoute("/console/softphone/socket", softphone.socket(console)),
        Mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static"),
    ]
