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

The `input_audio_buffer.append` text callbridge sends is recognised by its prefix and cut, not
JSON-parsed; any other spelling goes through `json.loads`. No logging per message.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import sys

from benchmarks.load import wire

APPEND_PREFIX = b'{"type":"input_audio_buffer.append","audio":"'
FORMATS: dict[str, dict[str, object]] = {"pcmu": {"type": "audio/pcmu"},
                                         "pcm16": {"type": "audio/pcm", "rate": 24000}}
FRAME_BYTES = {"pcmu": 160, "pcm16": 960}  # 20 ms of audio


def session(audio: str) -> dict[str, object]:
    """The `session` object of `session.created` and `session.updated` for `--audio`."""
    side = {"format": FORMATS[audio]}
    return {"type": "realtime", "object": "realtime.session", "id": "sess_echo",
            "model": "echo", "output_modalities": ["audio"],
            "audio": {"input": side, "output": side}}


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
        if data.startswith(APPEND_PREFIX):
            self.on_audio(data[len(APPEND_PREFIX):data.rindex(b'"')].decode("ascii"))
            return
        try:
            event = json.loads(data)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "input_audio_buffer.append" and isinstance(event.get("audio"), str):
            self.on_audio(event["audio"])
        elif kind == "session.update":
            self.send_json({"type": "session.updated", "session": self.session})


async def serve_echo(port: int, response_frames: int, ready: asyncio.Future[int] | None = None,
                     audio: str = "pcmu") -> None:
    """Serve until cancelled."""
    sessions: dict[wire.WsConnection, EchoSession] = {}

    def on_open(conn: wire.WsConnection) -> None:
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


async def _main(port: int, response_frames: int, audio: str) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[int] = loop.create_future()
    task = asyncio.ensure_future(serve_echo(port, response_frames, ready, audio))
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
    args = parser.parse_args()
    wire.install_uvloop()
    asyncio.run(_main(args.port, args.response_frames, args.audio))


if __name__ == "__main__":
    main()
