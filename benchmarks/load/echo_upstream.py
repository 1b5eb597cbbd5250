"""The load harness's fake OpenAI Realtime server in echo mode, run in a process of its own.

`python -m benchmarks.load.echo_upstream --port 0` prints `listening <port>` and serves until
stdin closes or SIGTERM. Per connection (any path; the `?model=` and the bearer token are ignored)
it speaks just enough of the Realtime GA protocol for a bridge to stream through it:

- on connect: `session.created`; on `session.update`: `session.updated` confirming `audio/pcmu`
  in and out (the bridge's READY condition);
- on every `input_audio_buffer.append`: at once, a `response.output_audio.delta` carrying the
  same base64 audio, so each caller frame comes back through the bridge as agent audio;
- the deltas are grouped into responses of `--response-frames` frames (default 100, 2 s):
  `response.created` before a response's first delta, `response.output_audio.done` and
  `response.done` after its last, each response with its own item id — so the bridge runs its
  per-response bookkeeping as on a real call, not one endless item;
- everything else (`response.create`, `conversation.item.*`, `response.cancel`) is ignored.

The `input_audio_buffer.append` text callbridge sends is recognised by its prefix and cut, not
JSON-parsed; any other spelling goes through `json.loads`. No logging per message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from benchmarks.load import wire

APPEND_PREFIX = b'{"type":"input_audio_buffer.append","audio":"'
PCMU = {"format": {"type": "audio/pcmu"}}
SESSION = {"type": "realtime", "object": "realtime.session", "id": "sess_echo",
           "model": "echo", "output_modalities": ["audio"],
           "audio": {"input": PCMU, "output": PCMU}}


class EchoSession:
    """One Realtime connection's echo state."""

    __slots__ = (
        "conn",
        "events",
        "frames_in_response",
        "item_id",
        "response_frames",
        "response_id",
        "response_no",
    )

    def __init__(self, conn: wire.WsConnection, response_frames: int) -> None:
        self.conn = conn
        self.response_frames = response_frames
        self.frames_in_response = 0
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
        if self.frames_in_response == 0:
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
        self.frames_in_response += 1
        if self.frames_in_response >= self.response_frames:
            self.end_response()

    def end_response(self) -> None:
        if self.frames_in_response == 0:
            return
        self.frames_in_response = 0
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
            self.send_json({"type": "session.updated", "session": SESSION})


async def serve_echo(port: int, response_frames: int, ready: asyncio.Future[int] | None = None,
                     ) -> None:
    """Serve until cancelled."""
    sessions: dict[wire.WsConnection, EchoSession] = {}

    def on_open(conn: wire.WsConnection) -> None:
        session = sessions[conn] = EchoSession(conn, response_frames)
        session.send_json({"type": "session.created", "session": SESSION})

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


async def _main(port: int, response_frames: int) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[int] = loop.create_future()
    task = asyncio.ensure_future(serve_echo(port, response_frames, ready))
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
                        help="frames per echoed response (default 100 = 2 s)")
    args = parser.parse_args()
    wire.install_uvloop()
    asyncio.run(_main(args.port, args.response_frames))


if __name__ == "__main__":
    main()
