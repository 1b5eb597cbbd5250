"""The hand-written frame reader, alone and inside `RealtimeSocket`, against `websockets`' own.

The property test feeds `RealtimeSocket` (with a transport that only records writes) a stream of
every kind of frame a server may send, cut into arbitrary chunks, and requires exactly the
messages `websockets` alone would give, in order, with every ping answered.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from callbridge.server.frame_reader import FrameReader, parser_idle
from callbridge.server.upstream import RealtimeSocket


def _text(payload: bytes, *, masked: bool = True, fin: bool = True,
          opcode: Opcode = Opcode.TEXT, rsv1: bool = False) -> bytes:
    frame = Frame(opcode, payload, fin=fin).serialize(mask=masked)
    return bytes([frame[0] | 0x40]) + frame[1:] if rsv1 else frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_whole_frames_of_every_length_form_come_out_unmasked(size: int) -> None:
    payload = os.urandom(size)
    reader = FrameReader(masked=True, max_size=None)
    assert reader.read(_text(payload) + _text(b"next")) == ([payload, b"next"], b"")


def test_a_frame_cut_at_every_byte_comes_out_once_whole() -> None:
    stream = _text(b"a" * 200) + _text(b"b" * 3) + _text(b"c" * 70000)
    for cut in range(1, len(stream)):
        reader = FrameReader(masked=True, max_size=None)
        first, rest_one = reader.read(stream[:cut])
        second, rest_two = reader.read(stream[cut:])
        assert first + second == [b"a" * 200, b"b" * 3, b"c" * 70000]
        assert rest_one == rest_two == b""


@pytest.mark.parametrize("odd", [
    _text(b"ping", opcode=Opcode.PING),
    _text(b"", opcode=Opcode.PONG),
    _text(b"\x03\xe8", opcode=Opcode.CLOSE),
    _text(b"frag", fin=False),
    _text(b"cont", opcode=Opcode.CONT),
    _text(b"bin", opcode=Opcode.BINARY),
    _text(b"deflated", rsv1=True),
    _text(b"unmasked", masked=False),
    _text(b"x" * 200),  # over the limit below
])
def test_anything_but_a_small_whole_masked_text_frame_is_handed_back_from_its_first_byte(
    odd: bytes,
) -> None:
    reader = FrameReader(masked=True, max_size=100)
    after = _text(b"after")
    assert reader.read(_text(b"before") + odd + after) == ([b"before"], odd + after)


def test_a_server_side_reader_refuses_masked_frames() -> None:
    masked = _text(b"masked")
    assert FrameReader(masked=False, max_size=None).read(masked) == ([], masked)


def test_release_gives_back_the_unfinished_frame_then_the_new_bytes() -> None:
    frame = _text(b"z" * 300)
    reader = FrameReader(masked=True, max_size=None)
    assert reader.read(frame[:5]) == ([], b"")
    assert reader.release(frame[5:]) == frame


def test_parser_idle_only_between_frames() -> None:
    protocol = Protocol(Side.SERVER)
    assert parser_idle(protocol)
    frame = _text(b"hello" * 30)
    protocol.receive_data(frame[:8])  # the whole header and mask, no payload: buffer empty
    assert not protocol.reader.buffer
    assert not parser_idle(protocol)
    protocol.receive_data(frame[8:])
    assert parser_idle(protocol)
    protocol.receive_data(_text(b"frag", fin=False))  # a fragmented message is open
    assert not parser_idle(protocol)
    protocol.receive_data(_text(b"end", opcode=Opcode.CONT))
    assert parser_idle(protocol)


def test_parser_idle_is_false_during_the_handshake() -> None:
    assert not parser_idle(ServerProtocol())
    client = ClientProtocol(parse_uri("ws://example.invalid/"))
    assert not parser_idle(client)


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()

    def write(self, data: Any) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return False

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        pass


def _in_a_loop(check: Callable[[], None]) -> None:
    """Run `check` inside a running event loop, which a websockets connection needs to exist."""
    async def run() -> None:
        check()
    asyncio.run(run())


def _open_socket(max_size: int = 1 << 20) -> tuple[RealtimeSocket, _Transport, list[bytes]]:
    protocol = ClientProtocol(parse_uri("ws://example.invalid/"), state=State.OPEN,
                              max_size=max_size)
    socket = RealtimeSocket(protocol, ping_interval=None)
    transport = _Transport()
    socket.connection_made(transport)
    socket.response = object()  # type: ignore[assignment]  # the handshake is over
    got: list[bytes] = []
    socket.attach(got.append)
    return socket, transport, got


def _server_frame(kind: str, payload: bytes) -> list[bytes]:
    if kind == "fragmented":
        half = len(payload) // 2
        return [_text(payload[:half], masked=False, fin=False),
                _text(b"", masked=False, fin=False, opcode=Opcode.CONT),
                _text(payload[half:], masked=False, opcode=Opcode.CONT)]
    if kind == "ping":
        return [_text(payload[:125], masked=False, opcode=Opcode.PING)]
    if kind == "binary":
        return [_text(payload, masked=False, opcode=Opcode.BINARY)]
    return [_text(payload, masked=False)]


_MESSAGES = st.lists(st.tuples(st.sampled_from(["text", "text", "text", "fragmented", "ping",
                                                "binary"]),
                               st.binary(max_size=300)), max_size=25)


@settings(max_examples=200, deadline=None)
@given(messages=_MESSAGES, cuts=st.lists(st.integers(min_value=0, max_value=10**6),
                                         max_size=30))
def test_realtime_socket_delivers_what_websockets_would_whatever_the_chunks(
    messages: list[tuple[str, bytes]], cuts: list[int],
) -> None:
    def check() -> None:
        socket, transport, got = _open_socket()
        stream = b"".join(b"".join(_server_frame(kind, payload)) for kind, payload in messages)
        points = sorted({0, len(stream), *(cut % (len(stream) + 1) for cut in cuts)})
        for start, stop in itertools.pairwise(points):
            socket.data_received(stream[start:stop])
        expected = [payload for kind, payload in messages if kind != "ping"]
        assert got == expected
        pongs = Protocol(Side.SERVER)
        pongs.receive_data(bytes(transport.written))
        answered = [frame.data for frame in pongs.events_received()]
        assert answered == [payload[:125] for kind, payload in messages if kind == "ping"]

    _in_a_loop(check)


def test_realtime_socket_reads_whole_text_frames_itself_once_websockets_is_idle() -> None:
    def check() -> None:
        socket, _, got = _open_socket()
        parsed_by_websockets: list[bytes] = []
        receive_data = socket.protocol.receive_data

        def counting(data: bytes) -> None:
            parsed_by_websockets.append(data)
            receive_data(data)

        socket.protocol.receive_data = counting  # type: ignore[method-assign]
        for n in range(5):
            socket.data_received(_text(f"m{n}".encode(), masked=False))
        socket.data_received(_text(b"p", masked=False, opcode=Opcode.PING)
                             + _text(b"m5", masked=False))
        socket.data_received(_text(b"m6", masked=False))
        assert got == [b"m0", b"m1", b"m2", b"m3", b"m4", b"m5", b"m6"]
        # The first frame and the ping (with what came after it in its chunk) went to websockets.
        assert parsed_by_websockets == [_text(b"m0", masked=False),
                                        _text(b"p", masked=False, opcode=Opcode.PING)
                                        + _text(b"m5", masked=False)]

    _in_a_loop(check)


def test_realtime_socket_leaves_oversized_messages_to_websockets() -> None:
    def check() -> None:
        socket, transport, got = _open_socket(max_size=100)
        socket.data_received(_text(b"ok", masked=False))
        socket.data_received(_text(b"y" * 101, masked=False))
        assert got == [b"ok"]
        assert socket.protocol.state is State.CLOSING  # websockets failed it: 1009 too big
        assert transport.written.startswith(b"\x88")


    _in_a_loop(check)
