"""The console's one window on live calls: listing them, their transcripts so far, and the
commands (hang up, transfer, say).

The commands go through the live-call API (`server.live_calls`): decided in the core
(`core.live_control`) by the instance carrying the call, wherever the request landed, and
spoken in the wire of whichever model API the call uses. The list and transcripts are this
instance's calls (the registry). Pages and the event stream use nothing else to reach a live
call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from callbridge.core.states import CallState

if TYPE_CHECKING:
    from callbridge.server.app import CallbridgeServer
    from callbridge.server.bridge import Bridge

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


@dataclass(frozen=True)
class LiveTurn:
    role: str
    text: str
    interrupted: bool


class CommandRefused(Exception):
    """A command the call cannot take; the message says why, for the person who asked."""


class LiveCalls:
    """Live calls as the console sees them (this instance's, for now)."""

    def __init__(self, server: CallbridgeServer) -> None:
        self._server = server

    def calls(self) -> list[LiveCall]:
        return [self._describe(b) for b in self._server.calls.live()
                if b.session.state is not CallState.ENDED]

    def get(self, call_sid: str) -> LiveCall | None:
        bridge = self._server.calls.get(call_sid)
        return None if bridge is None else self._describe(bridge)

    def turns(self, call_sid: str, after: int = 0) -> list[LiveTurn] | None:
        """The finished turns after the first `after`; None once the call is no longer live."""
        bridge = self._server.calls.get(call_sid)
        if bridge is None or bridge.finished.is_set():
            return None
        return [LiveTurn(t.role, t.heard if t.role == "agent" else t.text, t.interrupted)
                for t in bridge.transcript[after:]]

    async def hang_up(self, call_sid: str, *, goodbye: bool) -> None:
        """End the call: with `goodbye`, the agent says one first and hangs up once it played."""
        args = {"goodbye": GOODBYE} if goodbye else {}
        await self._act(call_sid, "hangup", args)

    async def transfer(self, call_sid: str, target: str) -> None:
        """Bridge the caller to `target` (+E.164 or sip:) through Twilio's REST API."""
        target = target.strip()
        if not _TRANSFER_TARGET.match(target):
            raise CommandRefused("transfer to a number in E.164 form (+15551234567) or a sip: URI")
        bridge = self._server.calls.get(call_sid)
        if bridge is not None and bridge.info.direction == "browser":
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

    def _describe(self, bridge: Bridge) -> LiveCall:
        info = bridge.info
        return LiveCall(bridge.call_sid, info.direction, info.from_number, info.to_number,
                        bridge.session.profile.name, self._server.settings.instance_id)
