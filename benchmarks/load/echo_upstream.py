"""The load harness's fake OpenAI Realtime server in echo mode, run in a process of its own.

`python -m benchmarks.load.echo_upstream --port 0` prints `listening <port>` and serves until
stdin closes or SIGTERM. Per connection (any path; the `?model=` and the bearer token are ignored)
it speaks just enough of the Realtime GA protocol for a bridge to stream through it:

- on connect: `session.created`; on `session.update`: `session.updated` confirming `--audio`'s
  format in and out, whatever was asked (the bridge's READY condition): `audio/pcmu` for
  `pcmu`, `{"type": "audio/pcm", "rate": 24000}` for `pcm16`;
- on every `input_audio_buffer.append`: at once, a `response.output_audio.delta` carrying the
  same base64 audio, so each caller frame comes back through the bridge as agent audio. An empty
  append (another bridge may send one while its resampler holds audio back) gets no delta: a
  model never sends an empty one;
- the deltas are grouped into responses of `--response-frames` 20 ms frames of audio (default
  100, 2 s): `response.created` before a response's first delta, `response.output_audio.done`
  and `response.done` after its last, each response with its own item id — so the bridge runs
  its per-response bookkeeping as on a real call, not one endless item. A delta that crosses a
  response's end is cut there, so every response holds whole 20 ms frames: the bridge pads an
  item's last partial frame with silence, which would shift the pcm16 callers' byte offsets;
- everything else (`response.create`, `conversation.item.*`, `response.cancel`) is ignored.

With `--api live` it speaks GPT-Live instead (`/v1/live/sessions`): `session.start` is answered
by `session.started` (μ-law 8 kHz, as a phone bridge asks), and every `session.input_audio.append`
at once by a `session.output_audio.delta` carrying the same audio (no `event_id`: GPT-Live's
primary-socket audio delta has none), so the callers' tagged frames come back as they do through
Realtime. GPT-Live has no responses or items for speech, so there is nothing to group;
`session.close` is answered by `session.closed`. The bridge's own silence (callbridge appends
μ-law silence, 0xFF, when the caller's frames stall) is echoed like any audio — it carries no tag,
so the callers match nothing to it — and counted: `GET /stats` answers `{"appends": …,
"silent": …}` over all connections so far, which the harness reads around each window.

The append text callbridge sends is recognised by its prefix and cut, not JSON-parsed; any other
spelling goes through `json.loads`. No logging per message.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import sys
from collections.abc import Callable
from typing import Any

from benchmarks.load import wire

APPEND_PREFIX = b'{"type":"input_audio_buffer.append","audio":"'
LIVE_APPEND_PREFIX = b'{"type":"session.input_audio.append","audio":"'
APIS = ("realtime", "live")
FORMATS: dict[str, dict[str, object]] = {"pcmu": {"type": "audio/pcmu"},
                                         "pcm16": {"type": "audio/pcm", "rate": 24000}}
FRAME_BYTES = {"pcmu": 160, "pcm16": 960}  # 20 ms of audio


def session(audio: str) -> dict[str, object]:
    """The `session` object of `session.created` and `session.updated` for `--audio`."""
    side = {"format": FORMATS[audio]}
    return {"type": "realtime", "object": "realtime.session", "id": "sess_echo",
            "model": "echo", "output_modalities": ["audio"],
            "audio": {"input": side, "output": side}}


def appended_or_event(data: bytes, prefix: bytes, append_type: str,
                      on_audio: Callable[[str], None]) -> dict[str, Any] | None:
    """Hand caller audio to `on_audio` (cut from the text when it starts with callbridge's own
    spelling `prefix`, else parsed); any other event comes back parsed (None if not JSON)."""
    if data.startswith(prefix):
        on_audio(data[len(prefix):data.rindex(b'"')].decode("ascii"))
        return None
    try:
        event = json.loads(data)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    if event.get("type") == append_type and isinstance(event.get("audio"), str):
        on_audio(event["audio"])
        return None
    return event


def decoded_size(text: str) -> int:
    """Bytes of audio in a base64 text, without decoding it."""
    size = len(text) // 4 * 3
    if text.endswith("=="):
        return size - 2
    return size - 1 if text.endswith("=") else size


class EchoSession:
    """One Realtime connection's echo state."""

    __slots__ = (
        "bytes_in_response",
        "conn",
        "events",
        "item_id",
        "response_bytes",
        "response_id",
        "response_no",
        "session",
    )

    def __init__(self, conn: wire.WsConnection, response_frames: int, audio: str) -> None:
        self.conn = conn
        self.session = session(audio)
        self.response_bytes = max(1, response_frames) * FRAME_BYTES[audio]
        self.bytes_in_response = 0
        self.response_no = 0
        self.response_id = ""
        self.item_id = ""
        self.events = 0

    def _event_id(self) -> str:
        self.events += 1
        return f"evt_{self.events}"

    def send_json(self, payload: dict[str, object]) -> None:
        payload["event_id"] = self._event_id()
        self.conn.send_text(json.dumps(payload, separators=(",", ":")))

    def on_audio(self, audio: str) -> None:
        size = decoded_size(audio)
        if size == 0:
            return
        room = self.response_bytes - self.bytes_in_response
        if size > room:  # cut at the response's end; the rest opens the next response
            raw = base64.b64decode(audio)
            self.on_audio(base64.b64encode(raw[:room]).decode("ascii"))
            self.on_audio(base64.b64encode(raw[room:]).decode("ascii"))
            return
        if self.bytes_in_response == 0:
            self.response_no += 1
            self.response_id = f"resp_{self.response_no}"
            self.item_id = f"item_{self.response_no}"
            self.send_json({"type": "response.created", "response": {
                "id": self.response_id, "object": "realtime.response", "status": "in_progress",
                "output": []}})
        self.conn.send_text(
            '{"type":"response.output_audio.delta","event_id":"' + self._event_id()
            + '","response_id":"' + self.response_id + '","item_id":"' + self.item_id
            + '","output_index":0,"content_index":0,"delta":"' + audio + '"}')
        self.bytes_in_response += size
        if self.bytes_in_response >= self.response_bytes:
            self.end_response()

    def end_response(self) -> None:
        if self.bytes_in_response == 0:
            return
        self.bytes_in_response = 0
        self.send_json({"type": "response.output_audio.done", "response_id": self.response_id,
                        "item_id": self.item_id, "output_index": 0, "content_index": 0})
        self.send_json({"type": "response.done", "response": {
            "id": self.response_id, "object": "realtime.response", "status": "completed",
            "output": [], "usage": {}}})

    def on_event(self, data: bytes) -> None:
        event = appended_or_event(data, APPEND_PREFIX, "input_audio_buffer.append", self.on_audio)
        if event is not None and event.get("type") == "session.update":
            self.send_json({"type": "session.updated", "session": self.session})


def is_silence(audio: str) -> bool:
    """Whether a base64 μ-law payload is all silence (0xFF bytes), as a bridge's filler is."""
    return audio.startswith("////") and not base64.b64decode(audio).strip(b"\xff")


class AppendCounts:
    """The audio appends a GPT-Live echo received, over all its connections."""

    __slots__ = ("appends", "silent")

    def __init__(self) -> None:
        self.appends = 0
        self.silent = 0

    def heard(self, audio: str) -> None:
        self.appends += 1
        if is_silence(audio):
            self.silent += 1

    def as_json(self) -> str:
        return json.dumps({"appends": self.appends, "silent": self.silent})


class LiveEchoSession:
    """One GPT-Live connection's echo state: every appended frame comes straight back."""

    __slots__ = ("conn", "counts", "events", "seconds")

    def __init__(self, conn: wire.WsConnection, counts: AppendCounts | None = None) -> None:
        self.conn = conn
        self.counts = counts or AppendCounts()
        self.events = 0
        self.seconds = 0.0

    def send_json(self, payload: dict[str, object]) -> None:
        self.events += 1
        payload["event_id"] = f"ev_{self.events}"
        self.conn.send_text(json.dumps(payload, separators=(",", ":")))

    def on_audio(self, audio: str) -> None:
        size = decoded_size(audio)
        if size == 0:
            return
        self.counts.heard(audio)
        self.seconds += size / 8000
        self.conn.send_text('{"type":"session.output_audio.delta","delta":"' + audio + '"}')

    def resource(self) -> dict[str, object]:
        return {"id": "live_echo", "expires_at": 4_000_000_000, "model": "gpt-live-1.1",
                "status": "active", "audio": {"format": {"type": "audio/pcmu", "rate": 8000}},
                "store": False}

    def on_event(self, data: bytes) -> None:
        event = appended_or_event(data, LIVE_APPEND_PREFIX, "session.input_audio.append",
                                  self.on_audio)
        kind = None if event is None else event.get("type")
        if kind == "session.start":
            self.send_json({"type": "session.started", "session": self.resource()})
        elif kind == "session.close":
            self.send_json({"type": "session.closed", "reason": "close_requested",
                            "session": self.resource(),
                            "usage": {"seconds": round(self.seconds, 3)}})


async def serve_echo(port: int, response_frames: int, ready: asyncio.Future[int] | None = None,
                     audio: str = "pcmu", api: str = "realtime") -> None:
    """Serve until cancelled."""
    sessions: dict[wire.WsConnection, EchoSession | LiveEchoSession] = {}
    counts = AppendCounts()  # GPT-Live only

    def on_open(conn: wire.WsConnection) -> None:
        if api == "live":
            sessions[conn] = LiveEchoSession(conn, counts)  # GPT-Live: the client speaks first
            return
        echo = sessions[conn] = EchoSession(conn, response_frames, audio)
        echo.send_json({"type": "session.created", "session": echo.session})

    def on_text(conn: wire.WsConnection, data: bytes) -> None:
        session = sessions.get(conn)
        if session is not None:
            session.on_event(data)

    def on_close(conn: wire.WsConnection) -> None:
        sessions.pop(conn, None)

    def on_request(request: wire.Request) -> tuple[int, str] | None:
        if request.path.startswith("/healthz"):
            return 200, "ok\n"
        if request.path.startswith("/stats"):
            return 200, counts.as_json() + "\n"
        return None

    server = await wire.serve("127.0.0.1", port, on_text, on_open, on_close, on_request)
    bound = server.sockets[0].getsockname()[1]
    if ready is not None:
        ready.set_result(bound)
    try:
        await asyncio.Future()
    finally:
        server.close()
        for conn in list(sessions):
            conn.abort()


async def _main(port: int, response_frames: int, audio: str, api: str) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[int] = loop.create_future()
    task = asyncio.ensure_future(serve_echo(port, response_frames, ready, audio, api))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    bound = await ready
    print(f"listening {bound}", flush=True)
    await _until_stdin_closes_or(task)


async def _until_stdin_closes_or(task: asyncio.Future[None]) -> None:
    """Run until `task` ends or our parent closes our stdin (it died or wants us gone)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    eof = asyncio.ensure_future(reader.read())
    await asyncio.wait([task, eof], return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    eof.cancel()
    await asyncio.gather(task, eof, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--response-frames", type=int, default=100,
                        help="20 ms frames of audio per echoed response (default 100 = 2 s)")
    parser.add_argument("--audio", choices=sorted(FORMATS), default="pcmu",
                        help="the format confirmed in session.updated (default pcmu)")
    parser.add_argument("--api", choices=APIS, default="realtime",
                        help="the model API to speak: realtime (default) or live (GPT-Live)")
    args = parser.parse_args()
    if args.api == "live" and args.audio != "pcmu":
        parser.error("--api live speaks μ-law only (--audio pcmu)")
    wire.install_uvloop()
    asyncio.run(_main(args.port, args.response_frames, args.audio, args.api))


if __name__ == "__main__":
    main()
