"""The console's one window on live calls: listing them, their transcripts so far, and the
commands (hang up, transfer, say).

Today it sees this instance's calls only, through the `CallRegistry`; when the cluster-wide
live-call API lands, this module is the one place that switches to it. Pages and the event
stream use nothing else to reach a live call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from callbridge.core.actions import SendRealtime
from callbridge.core.agent import say_exactly
from callbridge.core.control import transfer_twiml
from callbridge.core.realtime_events import CreateResponse
from callbridge.core.states import CallState
from callbridge.server.twilio_rest import TwilioRestError

if TYPE_CHECKING:
    from callbridge.server.app import CallbridgeServer
    from callbridge.server.bridge import Bridge

MAX_SAY = 500
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
        """End the call: with `goodbye`, the agent closes politely first."""
        bridge = self._bridge(call_sid)
        if goodbye:
            bridge.wrap_up("hung up from the console")
            return
        rest = self._server.calls.rest
        if rest is not None:
            try:
                await rest.hang_up(call_sid)
            except TwilioRestError as exc:
                raise CommandRefused(f"Twilio refused the hang-up: {exc}") from None
        bridge.end("hung up from the console")

    async def transfer(self, call_sid: str, target: str) -> None:
        """Bridge the caller to `target` (+E.164 or sip:) through Twilio's REST API."""
        bridge = self._bridge(call_sid)
        target = target.strip()
        if not _TRANSFER_TARGET.match(target):
            raise CommandRefused("transfer to a number in E.164 form (+15551234567) or a sip: URI")
        rest = self._server.calls.rest
        if rest is None or bridge.info.direction == "browser":
            raise CommandRefused("transfers need a phone call and Twilio's REST API "
                                 "(TWILIO_ACCOUNT_SID)")
        fallback = bridge.session.profile.transfer_fallback
        try:
            await rest.update_call(call_sid, twiml=transfer_twiml(target, fallback))
        except TwilioRestError as exc:
            raise CommandRefused(f"Twilio refused the transfer: {exc}") from None
        bridge.end("transferred from the console")

    async def say(self, call_sid: str, text: str) -> None:
        """Have the agent say `text` word for word as its next response."""
        bridge = self._bridge(call_sid)
        text = " ".join(text.split())
        if not text or len(text) > MAX_SAY:
            raise CommandRefused(f"say something of 1 to {MAX_SAY} characters")
        bridge.run([SendRealtime(CreateResponse(say_exactly(text, "console")))])

    def _bridge(self, call_sid: str) -> Bridge:
        bridge = self._server.calls.get(call_sid)
        if bridge is None or bridge.session.state is CallState.ENDED:
            raise CommandRefused("the call is not live on this instance")
        return bridge

    def _describe(self, bridge: Bridge) -> LiveCall:
        info = bridge.info
        return LiveCall(bridge.call_sid, info.direction, info.from_number, info.to_number,
                        bridge.session.profile.name, self._server.settings.instance_id)
