"""The fake GPT-Live model's voice: one utterance at a time, streamed at real-time pace.

Owns turning text (or given μ-law) into `session.output_audio.delta` (μ-law, no timestamps, as on
the primary WebSocket) interleaved with `session.output_transcript.delta` carrying `start_ms`/
`end_ms` on the session clock. Output is paced at `speed`× real time and never runs more than
`input_lead_ms` ahead of the input clock (the model is frame-driven: when the caller's audio
stops, so does its speech). `stop()` ends an utterance at once (the caller talked over it); what
was sent stays recorded in its `Utterance`. It talks to its session only through `SpeechHost`.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import threading
from dataclasses import dataclass, field
from typing import Protocol

from callbridge.testing import fake_live_wire as wire
from callbridge.testing.fake_live_config import FakeLiveConfig
from callbridge.testing.fake_live_wire import JsonDict
from callbridge.testing.speech import speak

_SPEAK_LOCK = threading.Lock()
_OVER_THE_CALLER = frozenset({"fixture", "backchannel"})  # said without waiting for quiet


def _speak_once(text: str) -> bytes:
    with _SPEAK_LOCK:
        return speak(text)


@dataclass
class Utterance:
    """One thing the model said (or began to say).

    `why`: "greeting", "reply", "echo", "filler", "commentary" (a client delegation's answer),
    "backend" (a Responses delegation's answer), "apology" (after a backend failure) or
    "fixture" (a clip the client played with `session.output_audio.fixture.play`) or
    "backchannel" (a short acknowledgement said while the caller talks).
    `start_ms`/`end_ms` are on the session clock; `audio`/`transcript` are what was sent,
    `audio_planned` all it would have said.
    """

    text: str
    why: str
    audio_planned: bytes | None = None
    not_before: float = 0.0  # event-loop time before which it does not start
    start_ms: float | None = None
    end_ms: float | None = None
    audio: bytearray = field(default_factory=bytearray)
    transcript: str = ""
    interrupted: bool = False
    done: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)

    @property
    def sent_ms(self) -> float:
        return len(self.audio) / 8


class SpeechHost(Protocol):
    config: FakeLiveConfig

    @property
    def clock_ms(self) -> float: ...

    async def emit(self, event: JsonDict) -> None: ...

    async def caller_quiet(self) -> None:
        """Return once the caller is not speaking."""

    async def clock_reaches(self, ms: float) -> None:
        """Return once the input clock is at `ms` or later (or the session is closing)."""


class Voice:
    """Speaks queued utterances in order; `run()` is the session's speaker task."""

    def __init__(self, host: SpeechHost) -> None:
        self._host = host
        self._pending: collections.deque[Utterance] = collections.deque()
        self._wake = asyncio.Event()
        self.current: Utterance | None = None
        self._last_end_ms = 0.0
        self._idle = asyncio.Event()
        self._idle.set()

    def say(self, utterance: Utterance) -> None:
        self._idle.clear()
        self._pending.append(utterance)
        self._wake.set()

    def play_now(self, utterance: Utterance) -> None:
        """An audio fixture: it cuts the current utterance and goes before anything queued, and
        it does not wait for the caller to be quiet."""
        self.stop()
        self._idle.clear()
        self._pending.appendleft(utterance)
        self._wake.set()

    @property
    def busy(self) -> bool:
        """Something is being said or waits to be said."""
        return self.current is not None or bool(self._pending)

    @property
    def speaking(self) -> bool:
        return self.current is not None and self.current.start_ms is not None

    def stop(self) -> Utterance | None:
        """The caller talked over the model: end the current utterance now; return it."""
        current = self.current
        if current is None or current.done:
            return None
        current.interrupted = True
        return current

    async def idle(self) -> None:
        """Return once nothing is being said or waits to be said."""
        await self._idle.wait()

    async def run(self) -> None:
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            utterance = self.current = self._pending.popleft()
            try:
                await self._speak(utterance)
            finally:
                utterance.done = True
                utterance.finished.set()
                self.current = None
                if not self._pending:
                    self._idle.set()

    async def _speak(self, utterance: Utterance) -> None:
        host, config = self._host, self._host.config
        audio = utterance.audio_planned
        if audio is None:
            audio = utterance.audio_planned = await asyncio.to_thread(_speak_once, utterance.text)
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, utterance.not_before - loop.time()))
        if utterance.why not in _OVER_THE_CALLER:
            await host.caller_quiet()
        step = max(1, round(config.delta_ms * 8))
        chunks = [audio[start : start + step] for start in range(0, len(audio), step)]
        words = wire.split_words(utterance.text, len(chunks))
        position = max(host.clock_ms, self._last_end_ms)
        utterance.start_ms = utterance.end_ms = position
        next_send = loop.time()
        for chunk, text in zip(chunks, words, strict=True):
            await host.clock_reaches(position - config.input_lead_ms)
            if utterance.interrupted:
                break
            end = position + len(chunk) / 8
            if text:
                utterance.transcript += text
                await host.emit({"type": "session.output_transcript.delta", "delta": text,
                                 "start_ms": int(position), "end_ms": int(end)})
            encoded = base64.b64encode(chunk).decode("ascii")
            await host.emit({"type": "session.output_audio.delta", "delta": encoded})
            utterance.audio += chunk
            position = utterance.end_ms = self._last_end_ms = end
            next_send = max(next_send, loop.time()) + len(chunk) / 8000 / config.speed
            # Always yield, so the session's receive loop runs between deltas at any speed.
            await asyncio.sleep(max(0.0, next_send - loop.time()))
