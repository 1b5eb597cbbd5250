"""The call's audio path: μ-law straight through, or μ-law ⇄ PCM16 24 kHz through a streaming
resampler.

Owns the conversion between what Twilio carries (8 kHz μ-law) and what the Realtime session was
told to expect, and the bytes-per-millisecond of the session's format, which all playback and
truncation arithmetic uses. Passthrough forwards the base64 text untouched (no CPU at all). The
PCM16 path keeps one resampler per direction for the whole call, flushed at the end of each agent
item and reset on barge-in (held-back audio of an interrupted reply must never play).
No I/O. No clock.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

from callbridge.audio.resample import Pcm24kToUlaw, UlawToPcm24k

AudioFormat = Literal["pcmu", "pcm16"]


class Passthrough:
    """μ-law in, μ-law out: the Realtime session speaks Twilio's format."""

    name: AudioFormat = "pcmu"
    bytes_per_ms = 8
    session_format: dict[str, Any] = {"type": "audio/pcmu"}  # noqa: RUF012 - never mutated

    def caller_audio(self, payload: str) -> str:
        return payload

    def agent_audio(self, raw: bytes) -> bytes:
        return raw

    def agent_flush(self) -> bytes:
        return b""

    def agent_reset(self) -> None:
        return None

    def caller_reset(self) -> None:
        return None


class Pcm16Path:
    """μ-law 8 kHz ⇄ PCM16 24 kHz: the model hears and speaks its native format."""

    name: AudioFormat = "pcm16"
    bytes_per_ms = 48
    session_format: dict[str, Any] = {"type": "audio/pcm", "rate": 24000}  # noqa: RUF012

    def __init__(self) -> None:
        self._up = UlawToPcm24k()
        self._down = Pcm24kToUlaw()

    def caller_audio(self, payload: str) -> str:
        return base64.b64encode(self._up.process(base64.b64decode(payload))).decode("ascii")

    def agent_audio(self, raw: bytes) -> bytes:
        return self._down.process(raw)

    def agent_flush(self) -> bytes:
        return self._down.flush()

    def agent_reset(self) -> None:
        self._down.reset()

    def caller_reset(self) -> None:
        self._up.reset()


AudioPath = Passthrough | Pcm16Path


def audio_path(name: AudioFormat) -> AudioPath:
    return Pcm16Path() if name == "pcm16" else Passthrough()


def session_format(name: AudioFormat) -> dict[str, Any]:
    """The `audio.*.format` object of a `session.update` for this path."""
    return dict(Pcm16Path.session_format if name == "pcm16" else Passthrough.session_format)
