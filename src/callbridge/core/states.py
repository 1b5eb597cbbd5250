"""The states of a call and of its upstream Realtime socket (transitions live in `session`).

No I/O. No clock.
"""

from __future__ import annotations

from enum import Enum


class CallState(Enum):
    CONNECTING = "connecting"  # created by the webhook; no media socket yet
    STREAMING = "streaming"  # Twilio `start` received
    ENDING = "ending"  # we asked for the media socket to close
    ENDED = "ended"


class UpstreamState(Enum):
    OPENING = "opening"
    CONFIGURING = "configuring"  # socket open, `session.update` sent
    READY = "ready"  # `session.updated` confirmed μ-law both ways
    FAILED = "failed"  # the reconnect budget is spent
    CLOSED = "closed"
