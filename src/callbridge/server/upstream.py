"""Opening the model's WebSocket (Realtime or GPT-Live) for one call, and its synchronous lane.

Owns the handshake (Realtime's URL with `?model=`, GPT-Live's without; `Authorization: Bearer`,
never `OpenAI-Beta`) and the translation of every way it can fail into `UpstreamError`, at this
one boundary.

The socket is `RealtimeSocket`, websockets' asyncio client connection with a lane for the hot
path: each server message is handed to the bridge as bytes from `data_received`, on the same
stack (no assembler queue, no task switch, no UTF-8 decode: the core's parser validates), and
`send_now` frames a client event and writes it at once, without `send`'s lock and coroutine.
Messages that arrive before the bridge attaches are held and handed over, in order, when it
does. Once the handshake is done and the socket open, whole text frames are cut from the stream
by `FrameReader` instead of websockets' parser. Pings, pongs, the close handshake, keepalive and
anything unusual stay websockets' own.

Keepalive is tied to the stall deadline (`Timing.upstream_stall_s`, see `keepalive`): the model's
events cannot tell a stalled network from a model with nothing to say — GPT-Live sends nothing
between bursts and has no reply-done event — so a socket whose pings go unanswered is failed
(1011) and given up within that deadline, and the call replaces it as after any loss.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidState,
    InvalidStatus,
    InvalidURI,
)
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import Event, State

from callbridge.config import Settings
from callbridge.core.agent import AgentProfile
from callbridge.errors import UpstreamError
from callbridge.server.frame_reader import FrameReader, parser_idle

MAX_EVENT_BYTES = 16 * 1024 * 1024
# How long a closing socket waits for the peer's close frame: one round trip for a live peer.
# Caller audio written meanwhile is dropped (`send_now`), so a dead peer must not keep it long.
CLOSE_TIMEOUT_S = 0.25
DEFAULT_KEEPALIVE = (20.0, 20.0)  # websockets' own: a dead peer noticed after 20 to 40 s

_log = logging.getLogger("callbridge.upstream")
_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class RealtimeSocket(ClientConnection):
    """A Realtime session socket with the synchronous lane (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_message: Callable[[bytes], object] | None = None
        self._held: list[bytes] = []
        self._fragments: list[bytes] = []
        self._reader: FrameReader | None = None

    def attach(self, on_message: Callable[[bytes], object]) -> None:
        """Hand every server message to `on_message`, starting with those held so far."""
        held, self._held = self._held, []
        self._on_message = on_message
        for data in held:
            self._deliver(on_message, data)

    def detach(self) -> None:
        """Deliver nothing more: the bridge closes this socket and no longer listens to it (a
        stalled session's held events may still arrive after a replacement took over)."""
        self._on_message = _ignore
        self._held = []

    def send_now(self, text: str) -> None:
        """Write one client event now; dropped once the socket is closing."""
        try:
            self.protocol.send_text(text.encode())
        except InvalidState:
            return
        self.send_data()

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        if reader is not None:
            if self.protocol.state is not State.OPEN:
                self._reader = None
                data = reader.release(data)
            else:
                payloads, rest = reader.read(data)
                for payload in payloads:
                    self._receive(payload)
                if not rest:
                    return
                self._reader = None
                data = rest
        super().data_received(data)
        protocol = self.protocol
        if (self.response is not None and protocol.state is State.OPEN
                and parser_idle(protocol)):
            self._reader = FrameReader(masked=False, max_size=protocol.max_message_size)

    def process_event(self, event: Event) -> None:
        if self.response is None or type(event) is not Frame or event.opcode not in _DATA:
            super().process_event(event)  # the handshake, pings, pongs, close
            return
        if not event.fin:
            self._fragments.append(bytes(event.data))
            return
        data = bytes(event.data)
        if self._fragments:
            self._fragments.append(data)
            data = b"".join(self._fragments)
            self._fragments = []
        self._receive(data)

    def _receive(self, data: bytes) -> None:
        on_message = self._on_message
        if on_message is None:
            self._held.append(data)
        else:
            self._deliver(on_message, data)

    def _deliver(self, on_message: Callable[[bytes], object], data: bytes) -> None:
        try:
            on_message(data)
        except Exception:
            # The old read loop would have died here; fail the socket the same way.
            _log.exception("realtime message handler failed; closing the socket")
            self._on_message = None
            self.protocol.fail(1011, "handler failed")
            self.send_data()


def _ignore(data: bytes) -> None:
    return None


def keepalive(stall_s: float | None) -> tuple[float, float]:
    """(ping interval, pong timeout) for an upstream socket, so that a network that stops
    carrying anything is given up within `stall_s` whatever the call is doing: a failed socket
    still waits `CLOSE_TIMEOUT_S` for a close frame, and of the time left a third goes to the
    next ping and two thirds to its pong. Without a deadline (`None`), websockets' defaults."""
    if stall_s is None:
        return DEFAULT_KEEPALIVE
    budget = max(stall_s - CLOSE_TIMEOUT_S, stall_s / 2)
    return budget / 3, budget * 2 / 3


async def open_realtime(settings: Settings, agent: AgentProfile) -> RealtimeSocket:
    """Open a Realtime session socket for `agent`'s model. Raises `UpstreamError` with a
    one-line reason."""
    token = settings.openai_api_key or "no-key"
    ping_interval, ping_timeout = keepalive(settings.timing.upstream_stall_s)
    try:
        socket = await connect(
            settings.realtime_url_for(agent),
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=settings.upstream_open_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=CLOSE_TIMEOUT_S,
            max_size=MAX_EVENT_BYTES,
            compression=None,
            user_agent_header="callbridge",
            create_connection=RealtimeSocket,
        )
    except InvalidStatus as exc:
        raise UpstreamError(f"handshake refused with HTTP {exc.response.status_code}") from exc
    except (InvalidHandshake, InvalidURI) as exc:
        raise UpstreamError(f"handshake failed: {exc}") from exc
    except TimeoutError as exc:
        raise UpstreamError("handshake timed out") from exc
    except OSError as exc:
        raise UpstreamError(f"cannot connect: {exc.strerror or exc}") from exc
    return cast(RealtimeSocket, socket)  # what create_connection made


def describe_close(exc: ConnectionClosed) -> str:
    """A short reason for a lost socket, e.g. "1006 (no close frame)", or "keepalive ping
    timeout (1011)" when this side failed it."""
    received, sent = exc.rcvd, exc.sent
    if received is None and sent is not None and sent.code == CloseCode.INTERNAL_ERROR:
        return f"{sent.reason} ({int(sent.code)})"
    if received is None:
        return "1006 (no close frame)"
    return f"{received.code} {received.reason}".strip()
