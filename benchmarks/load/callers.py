"""The load harness's callers: many simulated Twilio calls in one lean process.

`python -m benchmarks.load.callers` is driven by the orchestrator (`benchmarks.load.run`) with one
JSON command per line on stdin, and answers one JSON line per command on stdout:

- `{"cmd": "target", ...}` — where calls go (see `Target`);
- `{"cmd": "ramp", "calls": N, "rate": R}` — open calls until N are live, R new calls per second;
- `{"cmd": "window"}` — start a measurement window; `{"cmd": "report"}` — end it, wait for the
  window's last frames to come back or be declared lost, answer the window's figures;
- `{"cmd": "hangup"}` — `stop` and close every call; `{"cmd": "webhooks", "rate": R,
  "seconds": S}` — the webhook test; `{"cmd": "quit"}`.

A call does what Twilio does: with the `twilio` flow, the signed voice webhook (`X-Twilio-
Signature` from `twilio.request_validator.RequestValidator`), the TwiML's `<Stream url>` and
`<Parameter>`s, the signed WebSocket upgrade, `connected` and `start`; with the `plain` flow it
dials a `ws://` URL directly. Then one 20 ms μ-law `media` frame per call every 20 ms, in real
time, and mark echoes when the audio before a mark has "played" (a per-call play clock), as Twilio
does. There is no task per call once it streams and none per frame: one timer loop sends every
call's frames, its 20 ms cut into 20 phases of 1 ms so calls are spread as real ones are, and the
sockets are `wire.WsConnection`s whose callbacks run synchronously.

The echo coming back (as agent `media`, possibly several frames per message) is matched to the
frame that caused it (`frames`: by a tag in each frame with `--audio pcmu`, by byte offset with
`--audio pcm16`, where the frames carry a tone): its round trip is the time from writing the frame
to reading the echo. A frame not echoed within `--loss-ms` (1 s) is lost; one echoed later than
`--late-ms` is late.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import json
import secrets
import signal
import sys
import time
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from twilio.request_validator import RequestValidator

from benchmarks.load import wire
from benchmarks.load.frames import FRAME_S, TONE_PAYLOAD, FrameLedger, Window, tag_payload

PHASES = 20  # the 20 ms cut into 1 ms phases
PAYLOAD_KEY = b'"payload":"'
MARK_NAME_KEY = b'"mark":{"name":"'


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass
class Target:
    """Where calls go. `twilio`: POST `server_url`/voice signed for `public_url`, then the TwiML's
    stream (its host mapped to `server_url`'s). `plain`: dial `stream_url` directly."""

    flow: str = "twilio"
    server_url: str = ""
    public_url: str = ""
    stream_url: str = ""
    auth_token: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    webhook_path: str = "/voice"


class Call:
    """One streaming call."""

    __slots__ = (
        "account_sid",
        "call_sid",
        "conn",
        "frames",
        "idx",
        "marks",
        "play_end",
        "sequence_number",
        "stream_sid",
        "worker",
    )

    def __init__(self, worker: Worker, idx: int) -> None:
        self.worker = worker
        self.idx = idx
        self.conn: wire.WsConnection | None = None
        self.call_sid = new_sid("CA")
        self.stream_sid = new_sid("MZ")
        self.account_sid = worker.account_sid
        self.frames = FrameLedger(worker.loss_frames)
        self.sequence_number = 0  # every message after `connected`
        self.play_end = 0.0
        self.marks: deque[tuple[float, str]] = deque()

    def _next_sn(self) -> int:
        self.sequence_number += 1
        return self.sequence_number

    def send_json(self, message: dict[str, Any]) -> None:
        if self.conn is not None:
            self.conn.send_text(json.dumps(message, separators=(",", ":")))

    def start(self, parameters: dict[str, str]) -> None:
        self.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        self.send_json({
            "event": "start", "sequenceNumber": str(self._next_sn()),
            "start": {"accountSid": self.account_sid, "streamSid": self.stream_sid,
                      "callSid": self.call_sid, "tracks": ["inbound"],
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                      "channels": 1},
                      "customParameters": parameters},
            "streamSid": self.stream_sid,
        })

    def tick(self, measuring: bool, window: Window) -> None:
        """This call's 20 ms tick: echo marks whose audio has played, send the next frame."""
        conn = self.conn
        if conn is None:
            return
        out = self._due_marks(time.perf_counter(), window) if self.marks else []
        frames = self.frames
        seq = frames.next_frame(window)
        self.sequence_number += 1
        payload = self.worker.tone or tag_payload(self.idx, seq)
        out.append(f'{{"event":"media","sequenceNumber":"{self.sequence_number}","media":'
                   f'{{"track":"inbound","chunk":"{seq}","timestamp":"{(seq - 1) * 20}",'
                   f'"payload":"{payload}"}},"streamSid":"{self.stream_sid}"}}'.encode())
        at = time.perf_counter()
        if conn.send_many(out):
            frames.written(seq, at, measuring, window)

    def on_text(self, conn: wire.WsConnection, data: bytes) -> None:
        now = time.perf_counter()
        start = data.find(PAYLOAD_KEY)
        if start >= 0:
            start += len(PAYLOAD_KEY)
            try:
                audio = binascii.a2b_base64(data[start:data.index(b'"', start)])
            except (ValueError, binascii.Error):
                return
            self._on_audio(audio, now)
            return
        start = data.find(MARK_NAME_KEY)
        if start >= 0 and b"\\" not in data:  # a mark echo, its name needing no unescaping
            start += len(MARK_NAME_KEY)
            self.marks.append((self.play_end, data[start:data.index(b'"', start)].decode()))
            return
        try:
            message = json.loads(data)
        except ValueError:
            return
        event = message.get("event") if isinstance(message, dict) else None
        if event == "mark":
            self.marks.append((self.play_end, str(message.get("mark", {}).get("name", ""))))
        elif event == "clear":
            self.play_end = now
            if self.conn is not None:
                self.conn.send_many(self._due_marks(float("inf"), self.worker.window))
        elif event == "media":
            with contextlib.suppress(ValueError, KeyError, TypeError, binascii.Error):
                self._on_audio(base64.b64decode(message["media"]["payload"]), now)

    def _on_audio(self, audio: bytes, now: float) -> None:
        self.play_end = max(self.play_end, now) + len(audio) / 8000
        if self.worker.by_offset:
            self.frames.received(len(audio), now, self.worker.window)
        else:
            self.frames.echoed_tags(audio, self.idx, now, self.worker.window)

    def _due_marks(self, now: float, window: Window) -> list[bytes]:
        """Echoes of the marks whose audio has played by `now`, as Twilio sends them."""
        marks, out = self.marks, []
        while marks and marks[0][0] <= now:
            _, name = marks.popleft()
            out.append(json.dumps({"event": "mark", "sequenceNumber": str(self._next_sn()),
                                   "streamSid": self.stream_sid, "mark": {"name": name}},
                                  separators=(",", ":")).encode())
            window.marks += 1
        return out

    def hang_up(self) -> None:
        self.send_json({"event": "stop", "sequenceNumber": str(self._next_sn()),
                        "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                        "streamSid": self.stream_sid})
        if self.conn is not None:
            self.conn.close(1000)


class Worker:
    """All the calls of this process and the one loop that feeds them."""

    def __init__(self, loss_ms: float, late_ms: float, audio: str = "pcmu") -> None:
        self.account_sid = new_sid("AC")
        self.target = Target()
        self.loss_frames = max(2, round(loss_ms / 1000 / FRAME_S))
        self.late_s = late_ms / 1000
        self.by_offset = audio == "pcm16"  # the bridge resamples: tags would not survive
        self.tone = TONE_PAYLOAD if self.by_offset else ""
        self.phases: list[list[Call]] = [[] for _ in range(PHASES)]
        self.calls: dict[int, Call] = {}
        self.next_idx = 0
        self.measuring = False
        self.window = Window(self.late_s)
        self.hanging_up = False
        self._all_closed = asyncio.Event()
        self._http: httpx.AsyncClient | None = None
        self._validator: RequestValidator | None = None

    # ------------------------------------------------------------------ the timer loop

    async def ticker(self) -> None:
        step = FRAME_S / PHASES
        phase = 0
        next_at = time.perf_counter()
        while True:
            now = time.perf_counter()
            window, measuring = self.window, self.measuring
            if measuring:
                window.lags.append(max(0.0, now - next_at))
            for call in self.phases[phase]:
                call.tick(measuring, window)
            phase = (phase + 1) % PHASES
            next_at += step
            delay = next_at - time.perf_counter()
            if delay < -1.0:  # hopelessly behind (machine stalled): resynchronise
                next_at = time.perf_counter()
                delay = 0.0
            await asyncio.sleep(max(0.0, delay))

    # ------------------------------------------------------------------ opening calls

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                trust_env=False, timeout=10.0,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
        return self._http

    def set_target(self, target: Target) -> None:
        self.target = target
        self._validator = RequestValidator(target.auth_token)

    def _sign(self, url: str, params: dict[str, str]) -> str:
        assert self._validator is not None
        return str(self._validator.compute_signature(url, params))

    def voice_params(self, call: Call) -> dict[str, str]:
        caller, called = "+15550001111", "+15550002222"
        return {"AccountSid": self.account_sid, "ApiVersion": "2010-04-01",
                "CallSid": call.call_sid, "CallStatus": "ringing", "Direction": "inbound",
                "Called": called, "Caller": caller, "From": caller, "To": called}

    async def post_signed(self, path: str, params: dict[str, str]) -> httpx.Response:
        target = self.target
        signature = self._sign(target.public_url.rstrip("/") + path, params)
        return await self.http.post(target.server_url.rstrip("/") + path, data=params,
                                    headers={"X-Twilio-Signature": signature,
                                             "User-Agent": "TwilioProxy/1.1"})

    async def open_call(self) -> float:
        """Open one call and start streaming it; returns its setup time in seconds."""
        started = time.perf_counter()
        idx = self.next_idx
        self.next_idx = (self.next_idx + 1) % 0x10000
        call = Call(self, idx)
        target = self.target
        parameters = dict(target.parameters)
        if target.flow == "twilio":
            response = await self.post_signed(target.webhook_path, self.voice_params(call))
            if response.status_code != 200:
                raise RuntimeError(f"voice webhook answered HTTP {response.status_code}")
            stream_url, twiml_parameters = parse_twiml(response.text)
            parameters |= twiml_parameters
            signed, dial = stream_urls(stream_url, target.server_url)
        else:
            parts = urlsplit(target.stream_url)
            signed, dial = urlunsplit(("wss", parts.netloc, parts.path, "", "")), target.stream_url
        headers = {"X-Twilio-Signature": self._sign(signed, {})} if target.auth_token else {}
        conn = await wire.connect(dial, call.on_text, self._on_close, headers=headers)
        conn.context = call
        call.conn = conn
        call.start(parameters)
        self.calls[idx] = call
        self.phases[idx % PHASES].append(call)
        return time.perf_counter() - started

    def _on_close(self, conn: wire.WsConnection) -> None:
        call = conn.context
        if not isinstance(call, Call):
            return
        call.conn = None
        if self.calls.get(call.idx) is call:
            del self.calls[call.idx]
            self.phases[call.idx % PHASES].remove(call)
        if not self.hanging_up:
            self.window.dropped_calls += 1
        elif not self.calls:
            self._all_closed.set()
        call.frames.give_up_pending(self.window)

    async def ramp(self, calls: int, rate: float) -> dict[str, Any]:
        """Open calls at `rate` per second until `calls` are live."""
        wanted = calls - len(self.calls)
        tasks: list[asyncio.Task[float]] = []
        began = time.perf_counter()
        for n in range(max(0, wanted)):
            delay = began + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(self.open_call()))
        results = await asyncio.gather(*tasks, return_exceptions=True)
        setups = sorted(r for r in results if isinstance(r, float))
        errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
        return {"calls": len(self.calls), "opened": len(setups), "failed": len(errors),
                "errors": errors[:3], "seconds": time.perf_counter() - began,
                "setup_ms": _quantiles_ms(setups)}

    async def hang_up_all(self) -> dict[str, Any]:
        self.hanging_up = True
        self._all_closed.clear()
        calls = list(self.calls.values())
        for call in calls:
            call.hang_up()
        if self.calls:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self._all_closed.wait()
        aborted = len(self.calls)
        for call in list(self.calls.values()):
            if call.conn is not None:
                call.conn.abort()
        self.hanging_up = False
        return {"hung_up": len(calls), "aborted": aborted}

    # ------------------------------------------------------------------ measurement windows

    def open_window(self) -> None:
        self.window = Window(self.late_s)
        self.measuring = True

    async def close_window(self) -> dict[str, Any]:
        self.measuring = False
        await asyncio.sleep(self.loss_frames * FRAME_S + 0.1)  # let the last frames come back
        window = self.window
        for call in self.calls.values():
            call.frames.give_up_pending(window)
        return window.summary(len(self.calls))

    # ------------------------------------------------------------------ the webhook test

    async def webhooks(self, rate: float, seconds: float) -> dict[str, Any]:
        """POST /voice at `rate` per second (open loop), each followed by the `completed`
        status callback, so the call and the upstream socket the webhook opened are released."""
        count = max(1, round(rate * seconds))
        voice: list[float] = []
        status: list[float] = []
        errors: list[str] = []

        async def one() -> None:
            call = Call(self, 0)
            params = self.voice_params(call)
            t0 = time.perf_counter()
            try:
                response = await self.post_signed(self.target.webhook_path, params)
                voice.append(time.perf_counter() - t0)
                if response.status_code != 200:
                    errors.append(f"/voice HTTP {response.status_code}")
                    return
                params = params | {"CallStatus": "completed", "CallDuration": "0"}
                t1 = time.perf_counter()
                response = await self.post_signed("/twilio/status", params)
                status.append(time.perf_counter() - t1)
                if response.status_code >= 300:
                    errors.append(f"/twilio/status HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

        began = time.perf_counter()
        tasks = []
        for n in range(count):
            delay = began + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one()))
        await asyncio.gather(*tasks)
        return {"requests": count, "seconds": time.perf_counter() - began,
                "voice_ms": _quantiles_ms(sorted(voice)),
                "status_ms": _quantiles_ms(sorted(status)),
                "failed": len(errors), "errors": errors[:3]}

    async def aclose(self) -> None:
        for call in list(self.calls.values()):
            if call.conn is not None:
                call.conn.abort()
        if self._http is not None:
            await self._http.aclose()


def _quantiles_ms(values: list[float]) -> list[float]:
    """[p50, p99, max] in ms of sorted seconds, or [] when there are none."""
    if not values:
        return []
    n = len(values)
    return [values[n // 2] * 1000, values[min(n - 1, int(n * 0.99))] * 1000, values[-1] * 1000]


def parse_twiml(xml: str) -> tuple[str, dict[str, str]]:
    """The `<Connect><Stream url>` and its `<Parameter>`s of a webhook's TwiML."""
    root = ET.fromstring(xml)
    stream = root.find("./Connect/Stream")
    if stream is None or not stream.get("url"):
        raise RuntimeError("the TwiML has no <Connect><Stream url>")
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return stream.get("url", ""), parameters


def stream_urls(url: str, server_url: str) -> tuple[str, str]:
    """(the wss URL Twilio signs, the URL actually dialled): the stream's path on the server."""
    parts = urlsplit(url)
    server = urlsplit(server_url)
    signed = urlunsplit(("wss", parts.netloc, parts.path, "", ""))
    scheme = "wss" if server.scheme in ("https", "wss") else "ws"
    return signed, urlunsplit((scheme, server.netloc, parts.path or "/", "", ""))


async def serve_commands(worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    ticker = asyncio.ensure_future(worker.ticker())
    try:
        while line := await reader.readline():
            command = json.loads(line)
            answer = await _run(worker, command)
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
            if command.get("cmd") == "quit":
                break
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        await worker.aclose()


async def _run(worker: Worker, command: dict[str, Any]) -> dict[str, Any]:
    kind = command.get("cmd")
    if kind == "target":
        worker.set_target(Target(**command["target"]))
        return {"ok": True}
    if kind == "ramp":
        return await worker.ramp(int(command["calls"]), float(command.get("rate", 50)))
    if kind == "window":
        worker.open_window()
        return {"ok": True}
    if kind == "report":
        return await worker.close_window()
    if kind == "hangup":
        return await worker.hang_up_all()
    if kind == "webhooks":
        return await worker.webhooks(float(command["rate"]), float(command["seconds"]))
    if kind == "quit":
        return {"ok": True}
    return {"error": f"unknown command {kind!r}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loss-ms", type=float, default=1000.0)
    parser.add_argument("--late-ms", type=float, default=50.0)
    parser.add_argument("--audio", choices=["pcmu", "pcm16"], default="pcmu",
                        help="pcmu: tagged frames, matched by tag; pcm16: a tone, matched by "
                             "byte offset")
    args = parser.parse_args()
    wire.install_uvloop()

    async def run() -> None:
        worker = Worker(args.loss_ms, args.late_ms, args.audio)
        task = asyncio.ensure_future(serve_commands(worker))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())


if __name__ == "__main__":
    main()
