"""The zero-logic baseline: the same hops as the bridge, with no bridge in them.

`python -m benchmarks.load.relay --upstream ws://127.0.0.1:P/v1/realtime --port 0` prints
`listening <port>` and serves until stdin closes or SIGTERM. It is run pinned to the server's core,
in place of callbridge, at the same numbers of calls:

    caller ──WS──► relay ──WS──► echo upstream ──WS──► relay ──WS──► caller

For each accepted media socket (any path, no signature or token check) the relay opens its own
WebSocket to the echo upstream. Every inbound `media` frame's payload is cut out of the text (no
JSON parsing) and sent upstream at once as `input_audio_buffer.append`; every
`response.output_audio.delta` coming back is cut the same way and sent to the caller as a Twilio
`media` message. Nothing else is done: no session configuration, no marks, no pacing, no records.
So the round trip measured through the relay is the cost of the sockets, the WebSocket framing and
an event loop in Python — and "bridge-added latency" is callbridge's round trip minus this one at
the same number of calls. `GET /healthz` answers `ok` (the same probe the harness sends callbridge).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from benchmarks.load import wire
from benchmarks.load.echo_upstream import _until_stdin_closes_or

PAYLOAD_KEY = b'"payload":"'
DELTA_KEY = b'"delta":"'
APPEND_HEAD = b'{"type":"input_audio_buffer.append","audio":"'


class RelayCall:
    """One relayed call: the caller's socket and its own upstream socket."""

    __slots__ = ("backlog", "caller", "media_head", "task", "upstream")

    def __init__(self, caller: wire.WsConnection) -> None:
        self.caller = caller
        self.upstream: wire.WsConnection | None = None
        self.backlog: list[bytes] = []
        self.media_head = b""
        self.task: asyncio.Task[None] | None = None

    def from_caller(self, data: bytes) -> None:
        start = data.find(PAYLOAD_KEY)
        if start >= 0:
            start += len(PAYLOAD_KEY)
            message = APPEND_HEAD + data[start:data.index(b'"', start)] + b'"}'
            upstream = self.upstream
            if upstream is not None:
                upstream.send_text(message)
            else:
                self.backlog.append(message)
            return
        if b'"start"' in data and not self.media_head:
            try:
                sid = json.loads(data)["start"]["streamSid"]
            except (ValueError, KeyError, TypeError):
                return
            self.media_head = b'{"event":"media","streamSid":"' + sid.encode() + b'","media":'
        elif b'"stop"' in data:
            self.caller.close()

    def from_upstream(self, conn: wire.WsConnection, data: bytes) -> None:
        start = data.find(DELTA_KEY)
        if start < 0 or not self.media_head:
            return
        start += len(DELTA_KEY)
        self.caller.send_text(self.media_head + b'{"payload":"'
                              + data[start:data.index(b'"', start)] + b'"}}')

    async def open_upstream(self, url: str) -> None:
        try:
            upstream = await wire.connect(url, self.from_upstream, self._upstream_closed,
                                          headers={"Authorization": "Bearer no-key"})
        except (OSError, TimeoutError, wire.HandshakeError):
            self.caller.close(1011, "upstream unavailable")
            return
        if self.caller.closed:
            upstream.close()
            return
        self.upstream = upstream
        for message in self.backlog:
            upstream.send_text(message)
        self.backlog.clear()

    def _upstream_closed(self, conn: wire.WsConnection) -> None:
        self.caller.close(1011, "upstream closed")

    def closed(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.upstream is not None:
            self.upstream.on_close = None
            self.upstream.close()


async def serve_relay(port: int, upstream_url: str, ready: asyncio.Future[int] | None = None,
                      ) -> None:
    calls: dict[wire.WsConnection, RelayCall] = {}

    def on_open(conn: wire.WsConnection) -> None:
        call = calls[conn] = RelayCall(conn)
        call.task = asyncio.ensure_future(call.open_upstream(upstream_url))

    def on_text(conn: wire.WsConnection, data: bytes) -> None:
        call = calls.get(conn)
        if call is not None:
            call.from_caller(data)

    def on_close(conn: wire.WsConnection) -> None:
        call = calls.pop(conn, None)
        if call is not None:
            call.closed()

    def on_request(request: wire.Request) -> tuple[int, str] | None:
        if request.path.startswith("/healthz"):
            return 200, "ok\n"
        return None

    server = await wire.serve("127.0.0.1", port, on_text, on_open, on_close, on_request)
    if ready is not None:
        ready.set_result(server.sockets[0].getsockname()[1])
    try:
        await asyncio.Future()
    finally:
        server.close()
        for conn in list(calls):
            conn.abort()


async def _main(port: int, upstream: str) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[int] = loop.create_future()
    task = asyncio.ensure_future(serve_relay(port, upstream, ready))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    print(f"listening {await ready}", flush=True)
    await _until_stdin_closes_or(task)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", required=True, help="the echo upstream's ws:// URL")
    args = parser.parse_args()
    wire.install_uvloop()
    asyncio.run(_main(args.port, args.upstream))


if __name__ == "__main__":
    main()
