"""A fake Twilio caller: Twilio's side of one phone call, spoken over real loopback sockets.

Owns playing Twilio against a bridge under test: the signed voice webhook and its TwiML, the
signed WebSocket upgrade, `connected` and `start`, a microphone that sends one 20 ms μ-law `media`
frame per tick (queued speech, or silence like a real phone line), `dtmf` and `stop`. Every message
the bridge sends back is judged by `twilio_rules`; valid `media`/`mark`/`clear` drive Twilio's
playback buffer (`caller_playback`), so marks are echoed when their audio has played and `clear`
cuts it off. Messages breaking Twilio's rules are recorded in `violations` and not acted upon.

All times are the call clock: seconds of media time since `start` was sent (wall seconds × speed).
The caller reads the event loop's clock; the playback model only computes. One writer task owns
the socket's sends. Independent of `callbridge.core` and `callbridge.server` by design: it is the
yardstick they are measured against, so it shares no code with them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from callbridge.audio.g711 import SAMPLE_RATE
from callbridge.audio.wav import read_wav_ulaw
from callbridge.closing import AsyncClosing
from callbridge.testing.caller_config import (
    CallerError,
    CallerOptions,
    CallRefused,
    CallState,
    ConnectFailed,
    NotStreaming,
    UpgradeRefused,
    new_sid,
)
from callbridge.testing.caller_mic import FRAME_SECONDS, Microphone
from callbridge.testing.caller_playback import MarkEcho, Playback
from callbridge.testing.caller_twiml import (
    InvalidTwiML,
    TwiMLResult,
    TwiMLVerb,
    check_content_type,
    parse_twiml,
)
from callbridge.testing.speech import speak
from callbridge.testing.twilio_rules import inspect_outbound

__all__ = [
    "CallRefused",
    "CallState",
    "CallerError",
    "CallerOptions",
    "ConnectFailed",
    "FakeTwilioCaller",
    "InvalidTwiML",
    "NotStreaming",
    "TwiMLResult",
    "TwiMLVerb",
    "UpgradeRefused",
]

DTMF_DIGITS = frozenset("0123456789*#")
_T = TypeVar("_T")
_Outgoing = tuple[str | bytes, Callable[[], None] | None]


class FakeTwilioCaller(AsyncClosing):
    """Twilio's side of one call against a bridge server; see the module docstring."""

    def __init__(
        self,
        server_url: str,
        public_url: str,
        auth_token: str,
        *,
        account_sid: str | None = None,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        from_number: str = "+15550001111",
        to_number: str = "+15550002222",
        speed: float = 1.0,
        sign_webhook: bool = True,
        sign_upgrade: bool = True,
        webhook_path: str = "/voice",
        act_on_invalid: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.options = CallerOptions(
            server_url, public_url, auth_token,
            account_sid=account_sid or new_sid("AC"),
            call_sid=call_sid or new_sid("CA"),
            stream_sid=stream_sid or new_sid("MZ"),
            from_number=from_number, to_number=to_number, speed=speed,
            sign_webhook=sign_webhook, sign_upgrade=sign_upgrade, webhook_path=webhook_path,
            act_on_invalid=act_on_invalid, timeout=timeout,
        )
        self._validator = RequestValidator(auth_token)
        self.state = CallState.IDLE
        self.twiml: TwiMLResult | None = None
        # records
        self.violations: list[str] = []
        self.warnings: list[str] = []
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.clears: list[float] = []
        self.marks_echoed: list[tuple[float, str, bool]] = []
        self.frames_sent = 0
        self.closed_by_server_at: float | None = None
        self.close_code: int | None = None
        self.fallback_said: list[str] = []
        self.fallback_at: float | None = None
        self.fallback_action: str | None = None
        # machinery
        self._playback = Playback()
        self._arrivals: list[tuple[float, bytes]] = []
        self._ws: ClientConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0: float | None = None
        self._ended_at: float | None = None
        self._seq = 0
        self._outbox: asyncio.Queue[_Outgoing | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._mic: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._microphone = Microphone()
        self._said: dict[int, asyncio.Future[None]] = {}  # utterance number -> done when sent
        self._hanging_up = False
        self._changed = asyncio.Event()

    @classmethod
    def from_options(cls, options: CallerOptions) -> FakeTwilioCaller:
        """A caller configured by `options` (SIDs are taken as given)."""
        return cls(**dataclasses.asdict(options))

    @property
    def account_sid(self) -> str:
        """The AccountSid this call belongs to."""
        return self.options.account_sid

    @property
    def call_sid(self) -> str:
        """The CallSid of this call."""
        return self.options.call_sid

    @property
    def stream_sid(self) -> str:
        """The StreamSid sent in `start`."""
        return self.options.stream_sid

    @property
    def speed(self) -> float:
        """Call-clock seconds per wall second."""
        return self.options.speed

    # ---- the voice webhook ------------------------------------------------------------------

    async def dial(self, extra_params: dict[str, str] | None = None) -> TwiMLResult:
        """POST the signed voice webhook and parse its TwiML.

        Raises `CallRefused` on a non-2xx answer, `InvalidTwiML` when Twilio could not run it.
        Breaches of the `<Connect><Stream>` rules are appended to `violations`.
        """
        params = self.options.voice_params() | dict(extra_params or {})
        signed_url, url = self.options.webhook_urls()
        headers = {"User-Agent": "TwilioProxy/1.1", "I-Twilio-Idempotency-Token": str(uuid.uuid4())}
        if self.options.sign_webhook:
            headers["X-Twilio-Signature"] = self._sign(signed_url, params)
        try:
            async with httpx.AsyncClient(trust_env=False, timeout=self.options.timeout) as client:
                response = await client.post(url, data=params, headers=headers)
        except httpx.HTTPError as exc:
            raise ConnectFailed(f"voice webhook {url}: {exc!r}") from exc
        if not response.is_success:
            raise CallRefused(response.status_code, response.text)
        check_content_type(
            response.headers.get("content-type"), response.headers.get("transfer-encoding")
        )
        self.twiml = parse_twiml(response.status_code, response.text)
        self.violations.extend(self.twiml.problems)
        self.state = CallState.DIALED
        return self.twiml

    def _sign(self, url: str, params: dict[str, str]) -> str:
        return str(self._validator.compute_signature(url, params))

    # ---- the media stream ---------------------------------------------------------------------

    async def connect(
        self, stream_url: str | None = None, *, parameters: dict[str, str] | None = None
    ) -> None:
        """Open the media WebSocket, send `connected` and `start`, start the microphone and reader.

        `stream_url` and `parameters` default to the TwiML's `<Stream url>` and `<Parameter>`s.
        Raises `UpgradeRefused` when the server answers the upgrade with a status instead of 101.
        """
        if self.state in (CallState.STREAMING, CallState.ENDED):
            raise CallerError(f"connect() on a call that is {self.state.value}")
        url = stream_url or (self.twiml.stream_url if self.twiml else None)
        if url is None:
            raise CallerError("no <Connect><Stream url>: dial() first or pass stream_url")
        signed_url, target = self.options.stream_urls(url)
        if urlsplit(signed_url).hostname != urlsplit(self.options.public_url).hostname:
            self.warnings.append(f"<Stream url> {url!r} is not on the public host")
        headers: dict[str, str] = {}
        if self.options.sign_upgrade:
            headers["X-Twilio-Signature"] = self._sign(signed_url, {})
        try:
            ws = await connect(
                target, additional_headers=headers, compression=None, proxy=None,
                open_timeout=self.options.timeout,
            )
        except InvalidStatus as exc:
            self.state = CallState.ENDED
            self._follow_fallback(0.0)
            raise UpgradeRefused(exc.response.status_code) from exc
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            self.state = CallState.ENDED
            raise ConnectFailed(f"media stream {target}: {exc!r}") from exc
        self._start_stream(ws, parameters if parameters is not None else self._twiml_parameters())

    def _twiml_parameters(self) -> dict[str, str]:
        return dict(self.twiml.parameters) if self.twiml else {}

    def _start_stream(self, ws: ClientConnection, parameters: dict[str, str]) -> None:
        self._ws = ws
        self._loop = asyncio.get_running_loop()
        self.state = CallState.STREAMING
        connected = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
        self._outbox.put_nowait((json.dumps(connected), None))
        self._t0 = self._loop.time()
        self._send({
            "event": "start", "sequenceNumber": self._next_seq(),
            "start": {
                "accountSid": self.account_sid, "streamSid": self.stream_sid,
                "callSid": self.call_sid, "tracks": ["inbound"],
                "mediaFormat": {
                    "encoding": "audio/x-mulaw", "sampleRate": SAMPLE_RATE, "channels": 1
                },
                "customParameters": parameters,
            },
            "streamSid": self.stream_sid,
        })
        sid = self.call_sid
        self._writer = asyncio.create_task(self._write_loop(ws), name=f"caller-writer-{sid}")
        self._reader = asyncio.create_task(self._read_loop(ws), name=f"caller-reader-{sid}")
        self._mic = asyncio.create_task(self._mic_loop(), name=f"caller-mic-{sid}")

    # ---- the call clock ----------------------------------------------------------------------

    def now(self) -> float:
        """Call-clock seconds since `start` was sent (0.0 before it)."""
        if self._t0 is None or self._loop is None:
            return 0.0
        return (self._loop.time() - self._t0) * self.speed

    def _wall(self, call_time: float) -> float:
        assert self._t0 is not None
        return self._t0 + call_time / self.speed

    def _heard_now(self) -> float:
        """The end of the heard timeline: now, or when the stream ended."""
        return self.now() if self._ended_at is None else self._ended_at

    # ---- what the caller sends -------------------------------------------------------------------

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    def _send(self, message: dict[str, Any], on_sent: Callable[[], None] | None = None) -> None:
        self._outbox.put_nowait((json.dumps(message), on_sent))

    def _require_streaming(self) -> None:
        if self.state is not CallState.STREAMING or self._hanging_up:
            raise NotStreaming(f"the call is {self.state.value}, not streaming")

    async def say(self, ulaw: bytes, *, wait: bool = True) -> None:
        """Queue caller speech (8 kHz μ-law) behind any queued before it.

        With `wait`, returns once its last frame has been sent (or the stream has ended).
        """
        self._require_streaming()
        if not ulaw:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._said[self._microphone.queue(ulaw)] = done
        if wait:
            await done

    async def say_text(self, text: str, *, wait: bool = True) -> None:
        """Speak `text` (espeak-ng when installed, speech-like signal otherwise) and say() it."""
        await self.say(await asyncio.to_thread(speak, text), wait=wait)

    async def say_wav(self, path: str | Path, *, wait: bool = True) -> None:
        """Say the audio of a PCM WAV file (any rate, converted to 8 kHz μ-law)."""
        await self.say(await asyncio.to_thread(read_wav_ulaw, path), wait=wait)

    async def send_dtmf(self, digit: str) -> None:
        """Send one `dtmf` message for a key press (0-9, *, #)."""
        if digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        self._require_streaming()
        self._send({
            "event": "dtmf", "streamSid": self.stream_sid, "sequenceNumber": self._next_seq(),
            "dtmf": {"track": "inbound_track", "digit": digit},
        })

    async def send_raw(self, frame: str | bytes) -> None:
        """Send an arbitrary frame (bytes go as a binary frame); it uses up one sequenceNumber."""
        self._require_streaming()
        self._next_seq()
        self._outbox.put_nowait((frame, None))

    async def hang_up(self) -> None:
        """Send `stop`, then close the socket normally (1000). Idempotent; a no-op once ended."""
        if self.state is not CallState.STREAMING or self._hanging_up:
            return
        self._hanging_up = True
        await _reap(self._mic)
        self._send({
            "event": "stop", "sequenceNumber": self._next_seq(),
            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            "streamSid": self.stream_sid,
        })
        self._outbox.put_nowait(None)
        if self._writer is not None:
            await self._writer
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader

    async def drop(self, *, abort: bool = False) -> None:
        """Lose the stream without `stop`: a clean close (1000), or with `abort` the TCP
        connection is cut with no close frame (a crash or a network failure)."""
        if self.state is not CallState.STREAMING or self._hanging_up:
            return
        self._hanging_up = True
        await _reap(self._mic)
        self._outbox.put_nowait(None)
        if self._writer is not None:
            await self._writer
        if self._ws is not None:
            if abort:
                self._ws.transport.abort()
            await self._ws.close()
        if self._reader is not None:
            await self._reader

    async def aclose(self) -> None:
        """Hang up if still streaming, and wait for every task and socket to be closed."""
        try:
            await self.hang_up()
        finally:
            for task in (self._mic, self._writer, self._reader):
                await _reap(task)
            if self._ws is not None:
                await self._ws.close()
            self._end_stream(self.now(), by_server=False, code=self.close_code)

    async def _mic_loop(self) -> None:
        """Send frame k (media [20k, 20k+20) ms) once its 20 ms have passed, like a phone line."""
        assert self._loop is not None
        index = 0
        while True:
            delay = self._wall((index + 1) * FRAME_SECONDS) - self._loop.time()
            await asyncio.sleep(max(delay, 0.0))
            self._send_frame(index)
            index += 1

    def _send_frame(self, index: int) -> None:
        payload, finished_numbers = self._microphone.frame(index)
        finished = [self._said.pop(number) for number in finished_numbers]
        self._send(
            {
                "event": "media", "sequenceNumber": self._next_seq(),
                "media": {
                    "track": "inbound", "chunk": str(index + 1), "timestamp": str(index * 20),
                    "payload": base64.b64encode(payload).decode("ascii"),
                },
                "streamSid": self.stream_sid,
            },
            on_sent=(lambda: _resolve_all(finished)) if finished else None,
        )
        self.frames_sent += 1

    async def _write_loop(self, ws: ClientConnection) -> None:
        """The only task that sends on the socket, in queue order."""
        while (item := await self._outbox.get()) is not None:
            frame, on_sent = item
            try:
                await ws.send(frame)
            except ConnectionClosed:
                return
            if on_sent is not None:
                on_sent()

    # ---- what the caller receives ----------------------------------------------------------------

    async def _read_loop(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in ws:
                self._on_frame(frame)
        self._end_stream(self.now(), by_server=not self._hanging_up, code=ws.close_code)

    def _on_frame(self, frame: str | bytes) -> None:
        now = self.now()
        check = inspect_outbound(frame, self.stream_sid)
        self.violations.extend(check.problems)
        self.warnings.extend(check.warnings)
        message = check.message
        if message is not None:
            self.received.append((now, message))
        if message is None or (check.problems and not self.options.act_on_invalid):
            return
        if self.state is not CallState.STREAMING or self._hanging_up:
            return  # after `stop` Twilio plays and echoes nothing
        event = message.get("event")
        if event == "media" and check.audio:
            self._arrivals.append((now, check.audio))
            self._playback.add_audio(now, check.audio)
        elif event == "mark":
            mark = message.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            self._echo(self._playback.add_mark(now, str(name)), now)
            self._schedule_marks()
        elif event == "clear":
            self.clears.append(now)
            self._echo(self._playback.clear(now), now)
            self._schedule_marks()
        self._notify()

    def _echo(self, echoes: list[MarkEcho], now: float) -> None:
        for echo in echoes:
            self.marks_echoed.append((now, echo.name, echo.played))
            self._send({
                "event": "mark", "sequenceNumber": self._next_seq(),
                "streamSid": self.stream_sid, "mark": {"name": echo.name},
            })

    def _schedule_marks(self) -> None:
        """Wake up when the oldest pending mark falls due."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self._playback.next_mark_at()
        if due is not None and self._loop is not None and self.state is CallState.STREAMING:
            self._timer = self._loop.call_at(self._wall(due), self._on_mark_due)

    def _on_mark_due(self) -> None:
        self._timer = None
        now = self.now()
        self._echo(self._playback.due_marks(now), now)
        self._schedule_marks()
        self._notify()

    def _end_stream(self, now: float, *, by_server: bool, code: int | None) -> None:
        if self.state is not CallState.STREAMING:
            return
        self.state = CallState.ENDED
        self._ended_at = now
        self.close_code = code
        if by_server:
            self.closed_by_server_at = now
            self._follow_fallback(now)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._playback.stop(now)
        if self._mic is not None:
            self._mic.cancel()
        self._outbox.put_nowait(None)
        _resolve_all(list(self._said.values()))
        self._notify()

    def _follow_fallback(self, at: float) -> None:
        """Twilio resumes the TwiML after `</Connect>` (or fetches `<Connect action>`)."""
        if self.twiml is None:
            return
        self.fallback_at = at
        self.fallback_action = self.twiml.connect_action
        self.fallback_said = self.twiml.fallback_texts

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ---- waiting ---------------------------------------------------------------------------------

    async def wait_for_agent_audio(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 - wall-clock budget, part of the public contract
        after: float | None = None,
    ) -> float:
        """Call-clock time at which agent audio started playing (a run beginning at/after `after`).

        `timeout` is in wall seconds. Raises TimeoutError, at once if the stream has ended.
        """
        def probe() -> tuple[float | None, float | None]:
            onset = self._playback.first_onset(after or 0.0, self._heard_now())
            if onset is None and self.state is CallState.ENDED:
                raise TimeoutError("the stream ended before agent audio played")
            return onset, None

        return await self._until(probe, timeout, "agent audio")

    async def wait_until_agent_quiet(
        self,
        quiet_for: float = 0.5,
        timeout: float = 10.0,  # noqa: ASYNC109 - wall-clock budget, part of the public contract
    ) -> float:
        """Wait until agent playback has been idle for `quiet_for` call-clock seconds; returns now.

        `timeout` is in wall seconds. Returns at once when the stream has ended.
        """
        def probe() -> tuple[float | None, float | None]:
            now = self._heard_now()
            quiet = now - self._playback.busy_until()
            if self.state is CallState.ENDED or quiet >= quiet_for:
                return now, None
            return None, quiet_for - quiet

        return await self._until(probe, timeout, f"{quiet_for} s of agent quiet")

    async def wait_closed(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - public contract
        """Wait (wall seconds) until the stream has ended: closed by the server, or by hang_up()."""
        def probe() -> tuple[bool | None, float | None]:
            return (True if self.state is CallState.ENDED else None), None

        await self._until(probe, timeout, "stream close")

    async def _until(
        self,
        probe: Callable[[], tuple[_T | None, float | None]],
        timeout: float,  # noqa: ASYNC109 - the wall-clock budget of the public waits
        what: str,
    ) -> _T:
        """Re-run `probe` on each change, or after the call-clock delay it asks, till it answers."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value, recheck = probe()
            if value is not None:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {what} within {timeout} s")
            if recheck is not None:
                remaining = min(remaining, max(recheck / self.speed, 1e-3))
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()

    # ---- records ---------------------------------------------------------------------------------

    @property
    def utterances(self) -> list[tuple[float, float]]:
        """(start, end) call-clock seconds of each say() whose audio has been framed."""
        return self._microphone.utterances

    @property
    def spoken_until(self) -> float:
        """Call-clock time at which the last finished caller speech ended."""
        return self._microphone.spoken_until

    def heard(self) -> bytes:
        """μ-law from t=0 to now (or the stream's end): agent audio where it played, else 0xFF."""
        return self._playback.heard(self._heard_now())

    @property
    def heard_segments(self) -> list[tuple[float, float]]:
        """(start, end) call-clock seconds of each contiguous run of agent audio actually played."""
        return self._playback.segments(self._heard_now())

    @property
    def played_bytes(self) -> int:
        """Bytes of agent audio played so far."""
        return self._playback.played_bytes(self._heard_now())

    @property
    def discarded_bytes(self) -> int:
        """Bytes of agent audio dropped by `clear` before they played."""
        return self._playback.discarded_bytes

    @property
    def turn_latencies(self) -> list[float]:
        """For each finished say(): seconds from its end to the next onset of agent audio."""
        now = self._heard_now()
        latencies = []
        for _, end in self._microphone.utterances:
            onset = self._playback.first_onset(end, now)
            if onset is not None:
                latencies.append(onset - end)
        return latencies

    def audio_received_after(self, t: float) -> bytes:
        """Agent audio (valid media payloads) that arrived after call-clock `t`, played or not."""
        return b"".join(audio for at, audio in self._arrivals if at > t)


def _resolve_all(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


async def _reap(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` if still running and wait for it; its own failures propagate."""
    if task is None:
        return
    if not task.done():
        task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # we are being cancelled ourselves, not just the task we reaped
