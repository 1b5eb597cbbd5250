"""Acting on live calls wherever they are carried: here, or on another instance.

Owns the decision "local or routed" for everything that reaches an instance about a call:
live-call API requests (`act`, `live`, `follow`), and the messages other instances send this
one (`handle`): a Twilio callback for a call carried here (`end`, `amd`), the media stream
taken elsewhere (`release`), API requests (`say`, `context`, `hangup`, `transfer`) and the
live feed (`watch`, `unwatch`, `feed`). What a request does to the call is decided in the core
(`core.live_control`); the owner answers with an HTTP status, which the routing instance
returns as is: 202 accepted, 404 unknown or ended, 409 not now, 400 bad input, and 503 when the
owning instance did not answer in time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from callbridge.core import live_control
from callbridge.core.call_feed import LiveEvent
from callbridge.core.states import CallState
from callbridge.logs import get_logger
from callbridge.server.bridge import Bridge
from callbridge.server.cluster import Message

if TYPE_CHECKING:
    import asyncio

    from callbridge.server.app import CallbridgeServer

log = get_logger("callbridge.live_calls")

OPS = ("say", "context", "hangup", "transfer")
ASK_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    reason: str = ""


ACCEPTED = Reply(202, "accepted")
NOT_LIVE = Reply(404, "no such live call")


def check(op: str, args: dict[str, Any]) -> str | None:
    """Why `args` are not a valid `op` request, or None."""
    if op in ("say", "context"):
        return live_control.check_text(args.get("text"))
    if op == "hangup":
        goodbye = args.get("goodbye")
        return None if goodbye is None else live_control.check_text(goodbye, "goodbye")
    if op == "transfer":
        announcement = args.get("announcement")
        return live_control.check_target(args.get("to")) or (
            None if announcement is None else live_control.check_text(announcement,
                                                                      "announcement"))
    return f"unknown operation {op!r}"


def perform(bridge: Bridge, op: str, args: dict[str, Any]) -> Reply:
    """Carry out a checked request on a call carried here."""
    session, now = bridge.session, bridge.now()
    if session.state is CallState.ENDED:
        return NOT_LIVE
    if op == "say":
        outcome = live_control.say(session, args["text"], now)
    elif op == "context":
        outcome = live_control.add_context(session, args["text"], now)
    elif op == "hangup":
        outcome = live_control.hang_up(session, now, args.get("goodbye"))
    else:
        outcome = live_control.transfer(session, now, args["to"], args.get("announcement"))
    if isinstance(outcome, live_control.Refusal):
        return Reply(409, outcome.reason)
    bridge.run(outcome)
    return ACCEPTED


class LiveCalls:
    """The live-call operations of one instance."""

    def __init__(self, server: CallbridgeServer) -> None:
        self._server = server

    @property
    def instance(self) -> str:
        return self._server.settings.instance_id

    def _carried_here(self, call_sid: str) -> Bridge | None:
        bridge = self._server.calls.get(call_sid)
        if bridge is None or bridge.session.state is CallState.ENDED:
            return None
        return bridge

    async def act(self, call_sid: str, op: str, args: dict[str, Any]) -> Reply:
        """Do `op` on the call, here or through the instance carrying it."""
        reason = check(op, args)
        if reason is not None:
            return Reply(400, reason)
        bridge = self._carried_here(call_sid)
        if bridge is not None and (bridge.attached or not self._server.cluster.shared):
            return perform(bridge, op, args)
        owner = await self._owner(call_sid)
        if owner is None:
            # Only a webhook here and no stream anywhere yet: the call cannot take it now.
            return NOT_LIVE if bridge is None else perform(bridge, op, args)
        reply = await self._server.cluster.ask(
            owner, {"op": op, "call_sid": call_sid, "args": args}, ASK_TIMEOUT_S)
        if reply is None:
            return Reply(503, f"the instance carrying the call ({owner}) did not answer")
        return Reply(int(reply.get("status", 503)), str(reply.get("reason", "")))

    async def _owner(self, call_sid: str) -> str | None:
        """The other instance carrying the call, or None."""
        route = await self._server.cluster.route(call_sid)
        if route is None or route.ended or route.owner in (None, self.instance):
            return None
        return route.owner

    async def live(self) -> list[dict[str, Any]]:
        """The live calls of every instance (of this one alone without a shared database)."""
        local = {sid: bridge for bridge in self._server.calls.live()
                 if (sid := bridge.call_sid) and bridge.session.state is not CallState.ENDED}
        calls: dict[str, dict[str, Any]] = {}
        for sid, bridge in local.items():
            if bridge.attached or not self._server.cluster.shared:
                calls[sid] = _describe_local(bridge, self.instance)
        routes = await self._server.cluster.live()
        for route in routes or []:
            if route.call_sid in calls or route.owner is None:
                continue
            calls[route.call_sid] = {
                "call_sid": route.call_sid, "instance": route.owner,
                "direction": route.facts.direction, "from": route.facts.from_number,
                "to": route.facts.to_number, "agent": route.facts.agent, "state": "streaming"}
        return list(calls.values())

    @contextlib.asynccontextmanager
    async def follow(self, call_sid: str) -> AsyncIterator[asyncio.Queue[LiveEvent] | None]:
        """The call's live events until the block exits; None when the call is not live."""
        feed = self._server.feed
        bridge = self._carried_here(call_sid)
        if bridge is not None and (bridge.attached or not self._server.cluster.shared):
            async with feed.subscribe(call_sid) as queue:
                feed.watch(bridge)
                yield queue
            return
        owner = await self._owner(call_sid)
        if owner is None:
            yield None
            return
        try:
            async with feed.subscribe(call_sid) as queue:
                reply = await self._server.cluster.ask(
                    owner, {"op": "watch", "call_sid": call_sid}, ASK_TIMEOUT_S)
                yield queue if reply is not None and reply.get("status") == 202 else None
        finally:
            if not feed.following(call_sid):
                await self._server.cluster.send(owner, {"op": "unwatch", "call_sid": call_sid})

    # ---------------------------------------------------------------- from other instances

    async def handle(self, message: Message) -> Message | None:
        """A message from another instance; the reply, for those that ask."""
        op, call_sid = message.get("op"), message.get("call_sid")
        sender = message.get("from")
        if not isinstance(call_sid, str) or not isinstance(sender, str):
            return None
        feed = self._server.feed
        if op == "feed":
            event = message.get("event")
            if isinstance(event, dict):
                feed.deliver(call_sid, event)
            return None
        bridge = self._server.calls.get(call_sid)
        if op == "release":
            self._server.calls.hand_over(call_sid)
            return None
        if op == "unwatch":
            feed.unfollow_remotely(call_sid, sender)
            return None
        live = bridge is not None and bridge.session.state is not CallState.ENDED
        if op == "watch":
            if bridge is None or not live:
                return {"status": 404, "reason": NOT_LIVE.reason}
            feed.follow_remotely(bridge, sender)
            return {"status": 202, "reason": "following"}
        if bridge is None or not live:
            return {"status": 404, "reason": NOT_LIVE.reason} if op in OPS else None
        if op == "end":
            bridge.end(str(message.get("reason", "ended elsewhere")))
            return None
        if op == "amd":
            bridge.answered_by(str(message.get("answered_by", "unknown")))
            return None
        if op in OPS:
            args = message.get("args")
            args = args if isinstance(args, dict) else {}
            reason = check(op, args)
            reply = Reply(400, reason) if reason is not None else perform(bridge, op, args)
            return {"status": reply.status, "reason": reply.reason}
        return None


def _describe_local(bridge: Bridge, instance: str) -> dict[str, Any]:
    info = bridge.info
    return {"call_sid": bridge.call_sid, "instance": instance, "direction": info.direction,
            "from": info.from_number, "to": info.to_number,
            "agent": bridge.session.profile.name,
            "state": bridge.session.state.name.lower()}
