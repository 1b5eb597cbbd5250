"""Acting on live calls wherever they are carried: here, or on another instance.

Owns the decision "local or routed" for everything that reaches an instance about a call:
live-call API requests (`act`, `live`, `describe`, `transcript`, `follow`), and the messages
other instances send this one (`handle`): a Twilio callback for a call carried here (`end`,
`amd`), the media stream taken elsewhere (`release`), API requests (`say`, `context`, `hangup`,
`transfer`), the turns so far (`turns`) and the live feed (`watch`, `unwatch`, `feed`). A
follower of a call carried elsewhere checks the call's shared row every few seconds, so it
follows the call to a new owner and gets its `end` even when the owner was killed.

What a request does to the call is decided in the core (`core.live_control`); the owner
answers with an HTTP status, which the routing instance returns as is: 202 accepted, 404
unknown or ended, 409 not now, 400 bad input, and 503 when the owning instance did not answer
in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from callbridge.core import call_feed, live_control
from callbridge.core.call_feed import LiveEvent
from callbridge.core.states import CallState
from callbridge.logs import get_logger
from callbridge.server.bridge import Bridge
from callbridge.server.cluster import MAX_PAYLOAD, Message

if TYPE_CHECKING:
    from callbridge.server.app import CallbridgeServer
    from callbridge.store.routes import Route

log = get_logger("callbridge.live_calls")

OPS = ("say", "context", "hangup", "transfer")
_ASKING = (*OPS, "turns")  # the messages that wait for a reply
ASK_TIMEOUT_S = 2.0
FOLLOW_CHECK_S = 2.0  # how often a follower of a call carried elsewhere checks its owner
_TURNS_BUDGET = MAX_PAYLOAD - 400  # the bytes of turns in one `turns` reply
_OVERSIZED_TURN_CHARS = 300  # a turn that fits no reply alone is clipped to this


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

    async def taken_elsewhere(self, call_sid: str) -> bool:
        """Whether another instance took the call's media stream (even if it ended there)."""
        if not self._server.cluster.shared:
            return False
        route = await self._server.cluster.route(call_sid)
        return route is not None and route.owner not in (None, self.instance)

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
            calls[route.call_sid] = _describe_route(route)
        return list(calls.values())

    async def describe(self, call_sid: str) -> dict[str, Any] | None:
        """One live call as `live` lists it, wherever it is carried; None when not live."""
        bridge = self._carried_here(call_sid)
        if bridge is not None and (bridge.attached or not self._server.cluster.shared):
            return _describe_local(bridge, self.instance)
        route = await self._server.cluster.route(call_sid)
        if route is None or route.ended or route.owner is None:
            return None
        if route.owner == self.instance:
            return None if bridge is None else _describe_local(bridge, self.instance)
        return _describe_route(route)

    async def transcript(self, call_sid: str) -> list[LiveEvent] | None:
        """The call's finished turns so far, as `turn` events; None when it is not live.

        With `follow`, enter `follow` first: a turn finishing in between then comes twice
        (here and on the feed, same `role` and `item_id`) rather than not at all."""
        bridge = self._carried_here(call_sid)
        if bridge is not None and (bridge.attached or not self._server.cluster.shared):
            return [call_feed.turn(finished) for finished in bridge.transcript]
        owner = await self._owner(call_sid)
        if owner is None:
            return None if bridge is None else [call_feed.turn(t) for t in bridge.transcript]
        turns: list[LiveEvent] = []
        while True:
            reply = await self._server.cluster.ask(
                owner, {"op": "turns", "call_sid": call_sid, "after": len(turns)},
                ASK_TIMEOUT_S)
            if reply is None or reply.get("status") != 202:
                if reply is None:
                    log.warning("the turns so far did not come", call_sid=call_sid, owner=owner,
                                got=len(turns))
                return turns if turns or reply is None else None
            page = reply.get("turns")
            if not isinstance(page, list) or not page:
                return turns
            turns += [turn for turn in page if isinstance(turn, dict)]
            if not reply.get("more"):
                return turns

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
        followed = [owner]  # the instance carrying the call, as the watchdog last saw it
        watchdog: asyncio.Task[None] | None = None
        try:
            async with feed.subscribe(call_sid) as queue:
                if await self._watch(owner, call_sid):
                    watchdog = asyncio.create_task(self._keep_following(call_sid, followed))
                    yield queue
                else:
                    yield None
        finally:
            if watchdog is not None:
                watchdog.cancel()
                await asyncio.gather(watchdog, return_exceptions=True)
            if not feed.following(call_sid) and followed[0] != self.instance:
                await self._server.cluster.send(followed[0],
                                                {"op": "unwatch", "call_sid": call_sid})

    async def _watch(self, owner: str, call_sid: str) -> bool:
        reply = await self._server.cluster.ask(owner, {"op": "watch", "call_sid": call_sid},
                                               ASK_TIMEOUT_S)
        return reply is not None and reply.get("status") == 202

    async def _keep_following(self, call_sid: str, followed: list[str]) -> None:
        """While followed here, check the call's row: follow it to a new owner, and end the
        stream when it ended without its `end` reaching us (its owner was killed and swept)."""
        feed = self._server.feed
        while True:
            await asyncio.sleep(FOLLOW_CHECK_S)
            route = await self._server.cluster.route(call_sid)
            if route is None or route.ended:
                feed.deliver(call_sid, call_feed.ended(
                    "the call ended while the instance carrying it could not say so"))
                return
            if route.owner is None or route.owner == followed[0]:
                continue
            if route.owner == self.instance:
                bridge = self._carried_here(call_sid)
                if bridge is not None:
                    feed.watch(bridge)
                    followed[0] = self.instance
            elif await self._watch(route.owner, call_sid):
                followed[0] = route.owner

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
            return {"status": 404, "reason": NOT_LIVE.reason} if op in _ASKING else None
        if op == "turns":
            after = message.get("after")
            return page_of_turns(bridge, after if isinstance(after, int) else 0)
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


def page_of_turns(bridge: Bridge, after: int) -> Message:
    """The turns after the first `after` that fit one cluster message, and whether more follow."""
    page: list[LiveEvent] = []
    size = 0
    rest = bridge.transcript[max(after, 0):]
    for finished in rest:
        turn = call_feed.turn(finished)
        turn_size = len(json.dumps(turn))
        if turn_size > _TURNS_BUDGET and not page:
            turn = call_feed.turn(finished, _OVERSIZED_TURN_CHARS)
            turn_size = len(json.dumps(turn))
        if size + turn_size > _TURNS_BUDGET:
            break
        page.append(turn)
        size += turn_size
    return {"status": 202, "turns": page, "more": len(page) < len(rest)}


def _describe_route(route: Route) -> dict[str, Any]:
    facts = route.facts
    return {"call_sid": route.call_sid, "instance": route.owner,
            "direction": facts.direction, "from": facts.from_number, "to": facts.to_number,
            "agent": facts.agent, "state": "streaming"}


def _describe_local(bridge: Bridge, instance: str) -> dict[str, Any]:
    info = bridge.info
    return {"call_sid": bridge.call_sid, "instance": instance, "direction": info.direction,
            "from": info.from_number, "to": info.to_number,
            "agent": bridge.session.profile.name,
            "state": bridge.session.state.name.lower()}
