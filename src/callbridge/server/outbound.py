"""Placing outbound calls: the REST request that makes Twilio dial, shared by `callbridge call`
and `POST /api/calls`.

Twilio fetches the call's TwiML from `/twilio/outbound?agent=NAME` when the callee answers, so the
stream token is minted then, by the server that will carry the call. Answering-machine detection
is asynchronous (synchronous AMD would hold the stream silent for seconds) and reports to
`/twilio/amd`; until it does, the agent listens without answering.
"""

from __future__ import annotations

from urllib.parse import urlencode

from callbridge.config import Settings
from callbridge.errors import ConfigError
from callbridge.server.twilio_rest import CallResource, TwilioRest


async def place_call(rest: TwilioRest, settings: Settings, to: str, *, agent: str | None = None,
                     from_number: str | None = None, detect_machine: bool = True,
                     ) -> CallResource:
    """Ask Twilio to call `to` with `agent` (default agent if None). Raises ConfigError for a
    missing caller ID or an unknown agent, TwilioRestError if Twilio refuses."""
    profile = settings.directory.named(agent)
    caller_id = from_number or settings.caller_id
    if not caller_id:
        raise ConfigError("no caller ID: set CALLBRIDGE_CALLER_ID to one of your Twilio numbers "
                          "(or pass --from)")
    base = settings.public_url
    query = urlencode({"agent": profile.name, "amd": "1" if detect_machine else "0"})
    return await rest.create_call(
        to, caller_id,
        url=f"{base}/twilio/outbound?{query}",
        status_callback=f"{base}/twilio/status",
        machine_detection="DetectMessageEnd" if detect_machine else None,
        async_amd=detect_machine,
        async_amd_status_callback=f"{base}/twilio/amd" if detect_machine else None,
    )
