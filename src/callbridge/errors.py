"""Every exception callbridge raises on purpose, in one hierarchy.

    CallbridgeError
    ├── ConfigError              a setting is missing or invalid; start-up stops with one line
    ├── ProtocolError            a peer sent something we cannot use (remote fault)
    │   ├── TwilioProtocolError  a Media Streams frame that is not valid JSON or lacks a field
    │   ├── RealtimeProtocolError an OpenAI Realtime event that is not valid JSON or lacks a field
    │   └── LiveProtocolError    an OpenAI GPT-Live event that is not valid JSON or lacks a field
    ├── InvalidState             a method was called in a state that forbids it (local fault)
    ├── UpstreamError            the Realtime socket could not be opened or was lost
    ├── TwilioRestError          Twilio's REST API refused or could not be reached
    │                            (server/twilio_rest.py)
    ├── AnalysisError            a post-call analysis failed (analytics/analyzer.py)
    └── LeaseLost                a worker lost its claim on a job (store/jobs.py)

ToolDefinitionError and ToolLoadError (tools/errors.py) are ConfigErrors: a broken tool stops
start-up with one line.

Adapters translate library exceptions into these at one boundary, chaining with `from exc`.
"""

from __future__ import annotations


class CallbridgeError(Exception):
    """Base of every error callbridge raises on purpose."""


class ConfigError(CallbridgeError):
    """A setting is missing or invalid. The message is one line, fit to print as-is."""


class ProtocolError(CallbridgeError):
    """A peer sent a message we cannot use. The call goes on; the frame is counted and dropped."""


class TwilioProtocolError(ProtocolError):
    """A Twilio Media Streams frame is not valid JSON, has an unknown shape or lacks a field."""


class RealtimeProtocolError(ProtocolError):
    """An OpenAI Realtime server event is not valid JSON or lacks a required field."""


class LiveProtocolError(ProtocolError):
    """An OpenAI GPT-Live server event is not valid JSON or lacks a required field."""


class InvalidState(CallbridgeError):
    """A method was called in a state that does not allow it."""


class UpstreamError(CallbridgeError):
    """The OpenAI Realtime socket could not be opened or was lost."""
