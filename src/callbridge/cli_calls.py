"""`callbridge calls live|hangup|transfer|say|context`: the live-call API from a terminal.

Owns turning those commands into requests to a running server's live-call API
(`server.live_api`): `--server` (default `CALLBRIDGE_API_URL`, else `CALLBRIDGE_PUBLIC_URL`, else
http://127.0.0.1:8080) with the bearer token `CALLBRIDGE_API_TOKEN`. Any instance will do: it
routes the request to the one carrying the call. Exit status 0 when the server accepted, 1 when
it refused (unknown call, not now), 2 for bad input or configuration.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import httpx

from callbridge.errors import ConfigError

DEFAULT_SERVER = "http://127.0.0.1:8080"


def add_commands(commands: Any) -> None:
    """Add `calls` and its actions to the CLI's subcommands."""
    calls = commands.add_parser("calls", help="list live calls or act on one (any instance)")
    calls.add_argument("--server", help="the server's base URL (default: CALLBRIDGE_API_URL, "
                                        "else CALLBRIDGE_PUBLIC_URL)")
    actions = calls.add_subparsers(dest="calls_action", required=True)
    actions.add_parser("live", help="the live calls of every instance")
    hangup = actions.add_parser("hangup", help="hang up a live call")
    hangup.add_argument("call_sid")
    hangup.add_argument("--goodbye", help="what the agent says first")
    transfer = actions.add_parser("transfer", help="transfer a live call")
    transfer.add_argument("call_sid")
    transfer.add_argument("to", help="an E.164 number or a sip: URI")
    transfer.add_argument("--announcement", help="what the agent says first")
    say = actions.add_parser("say", help="have the agent say something at the next turn")
    say.add_argument("call_sid")
    say.add_argument("text")
    context = actions.add_parser("context", help="give the agent a note it sees, not spoken")
    context.add_argument("call_sid")
    context.add_argument("text")


def run(args: argparse.Namespace) -> int:
    token = os.environ.get("CALLBRIDGE_API_TOKEN", "")
    if not token:
        raise ConfigError("CALLBRIDGE_API_TOKEN is not set: the live-call API needs it")
    server = (args.server or os.environ.get("CALLBRIDGE_API_URL")
              or os.environ.get("CALLBRIDGE_PUBLIC_URL") or DEFAULT_SERVER).rstrip("/")
    action = args.calls_action
    method, path, body = "GET", "/api/calls/live", None
    if action != "live":
        method, path = "POST", f"/api/calls/{args.call_sid}/{action}"
        body = _body(args)
    try:
        response = httpx.request(method, server + path, json=body, timeout=10.0,
                                 headers={"Authorization": f"Bearer {token}"}, trust_env=False)
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach {server}: {exc}") from exc
    if action == "live" and response.status_code == 200:
        _print_live(response.json())
        return 0
    if response.status_code == 202:
        print(f"{action}: accepted for {args.call_sid}")
        return 0
    try:
        reason = response.json().get("error", response.text)
    except ValueError:
        reason = response.text.strip()
    print(f"callbridge: {action} refused ({response.status_code}): {reason}", file=sys.stderr)
    return 2 if response.status_code in (400, 401, 403) else 1


def _body(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.calls_action == "hangup":
        return {"goodbye": args.goodbye} if args.goodbye else None
    if args.calls_action == "transfer":
        body = {"to": args.to}
        if args.announcement:
            body["announcement"] = args.announcement
        return body
    return {"text": args.text}


def _print_live(listing: dict[str, Any]) -> None:
    calls = listing.get("calls", [])
    if not calls:
        print("no live calls")
        return
    for call in calls:
        print(f"{call['call_sid']}  {call['instance']:<24} {call['direction']:<14} "
              f"{call['agent'] or '-':<12} {call['state']}")
