"""The console's one window on live calls: listing them, their transcripts so far and as they
grow, and the commands (hang up, transfer, say).

Everything goes through the live-call API (`server.live_calls`), so the console on any instance
sees and acts on the calls of every instance sharing the database: the list, a call's turns so
far, its live feed, and the commands — decided in the core (`core.live_control`) by the
instance carrying the call and spoken in the wire of whichever model API the call uses. Pages
and the event stream use nothing else to reach a live call.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from callbridge.core.call_feed import LiveEvent
    from callbridge.server.app import CallbridgeServer

MAX_SAY = 500
GOODBYE = "Thank you for calling. Goodbye!"
_TRANSFER_TARGET = re.compile(r"^(\+[1-9][0-9]{6,14}|sip:[^\s<>\"']{3,200})$")


@dataclass(frozen=True)
class LiveCall:
    call_sid: str
    direction: str
    from_number: str
    to_number: str
    agent: str
    instance: str

    @classmethod
    def from_api(cls, call: dict[str, Any]) -> LiveCall:
        return cls(str(call["call_sid"]), str(call.get("direction") or ""),
                   str(call.get("from") or ""), str(call.get("to") or ""),
                   str(call.get("agent") or ""), str(call.get("instance") or ""))


@dataclass(frozen=True)
class LiveTurn:
    role: str
    text: str  # what the caller heard of an agent's turn; what the caller said
    interrupted: bool

    @classmethod
    def from_event(cls, event: LiveEvent) -> LiveTurn:
        role = str(event.get("role", ""))
        text = event.get("heard") if role == "agent" else event.get("text")
        return cls(role, str(text or ""), bool(event.get("interrupted")))


class CommandRefused(Exception):
    """A command the call cannot take; the message says why, for the person who asked."""


class LiveCalls:
    """Live calls as the console sees them: those of every instance."""

    def __init__(self, server: CallbridgeServer) -> None:
        self._server = server

    async def calls(self) -> list[LiveCall]:
        return [LiveCall.from_api(call) for call in await self._server.live.live()]

    async def get(self, call_sid: str) -> LiveCall | None:
        call = await self._server.live.describe(call_sid)
        return None if call is None else LiveCall.from_api(call)

    @contextlib.asynccontextmanager
    async def follow(self, call_sid: str) -> AsyncIterator[Following | None]:
        """The call's turns, the ones so far first; None when the call is not live."""
        async with self._server.live.follow(call_sid) as queue:
            yield None if queue is None else Following(self._server, call_sid, queue)

    async def hang_up(self, call_sid: str, *, goodbye: bool) -> None:
        """End the call: with `goodbye`, the agent says one first and hangs up once it played."""
        args = {"goodbye": GOODBYE} if goodbye else {}
        await self._act(call_sid, "hangup", args)

    async def transfer(self, call_sid: str, target: str) -> None:
        """Bridge the caller to `target` (+E.164 or sip:) through Twilio's REST API."""
        target = target.strip()
        if not _TRANSFER_TARGET.match(target):
            raise CommandRefused("transfer to a number in E.164 form (+15551234567) or a sip: URI")
        call = await self.get(call_sid)
        if call is not None and call.direction == "browser":
            raise CommandRefused("a browser call cannot be transferred to a phone")
        await self._act(call_sid, "transfer", {"to": target})

    async def say(self, call_sid: str, text: str) -> None:
        """Have the agent say `text` word for word at the next turn boundary."""
        text = " ".join(text.split())
        if not text or len(text) > MAX_SAY:
            raise CommandRefused(f"say something of 1 to {MAX_SAY} characters")
        await self._act(call_sid, "say", {"text": text})

    async def _act(self, call_sid: str, op: str, args: dict[str, str]) -> None:
        reply = await self._server.live.act(call_sid, op, dict(args))
        if reply.status == 404:
            raise CommandRefused("the call is not live (it ended, or it is not known)")
        if reply.status != 202:
            raise CommandRefused(reply.reason or f"the call cannot take {op} now")


class Following:
    """One live call's turns for one page: those so far, then each new one once, then the end."""

    def __init__(self, server: CallbridgeServer, call_sid: str,
                 queue: asyncio.Queue[LiveEvent]) -> None:
        self._server = server
        self._call_sid = call_sid
        self._queue = queue
        self._shown: set[tuple[str, str, str]] = set()

    async def so_far(self) -> list[LiveTurn]:
        return self._unseen(await self._server.live.transcript(self._call_sid) or [])

    async def next(self) -> list[LiveTurn] | None:
        """The turns in the next event (often none); None once the call ended."""
        event = await self._queue.get()
        if event["type"] == "end":
            return None
        return self._unseen([event]) if event["type"] == "turn" else []

    def _unseen(self, events: list[LiveEvent]) -> list[LiveTurn]:
        turns = []
        for event in events:
            key = (str(event.get("role")), str(event.get("item_id")), str(event.get("text")))
            if key not in self._shown:
                self._shown.add(key)
                turns.append(LiveTurn.from_event(event))
        return turns
