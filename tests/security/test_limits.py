"""Size and time limits: an oversized media frame (1009), oversized request bodies (413, before
they are read), and slow-loris clients — a request dribbled a byte at a time, a connection that
says nothing, a media socket that never sends `start` — dropped on time while calls go on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import connect

from callbridge.server.limits import DEFAULT_MAX_BODY_BYTES, HEADER_TIMEOUT_S
from callbridge.server.twilio_routes import START_TIMEOUT_S
from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_realtime import Reply
from callbridge.testing.speech import speechlike
from tests.e2e.harness import AUTH_TOKEN, Harness, connected_call, harness
from tests.security.conftest import Resources, assert_nothing_leaked, warm_baseline

pytestmark = pytest.mark.e2e

WS_MAX_SIZE = 1024 * 1024  # runner.uvicorn_config's ws_max_size


async def test_a_media_frame_over_the_size_limit_closes_the_socket_with_1009() -> None:
    """A 1 MiB + 1 frame mid-call: 1009, the call and its upstream end at once, nothing leaks."""
    async with harness([Reply(text="Sure.", audio=speechlike(0.5, seed=1))]) as h:
        baseline = await warm_baseline(h)
        caller = await connected_call(h)
        await caller.say(speechlike(0.6, seed=1))
        await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
        await _too_big_frame_ends_the_call(h, caller, baseline, upstream_closed_within=2.0)


async def test_an_oversized_frame_before_start_is_read_releases_the_call_after_the_ttl() -> None:
    """The same frame right behind `start`: 1009; the unattached call is released at the TTL."""
    async with harness(env={"CALLBRIDGE_STREAM_TOKEN_TTL": "2"}) as h:
        baseline = await warm_baseline(h)
        caller = await connected_call(h)
        await _too_big_frame_ends_the_call(h, caller, baseline, upstream_closed_within=4.0)


async def _too_big_frame_ends_the_call(h: Harness, caller: FakeTwilioCaller, baseline: Resources,
                                       *, upstream_closed_within: float) -> None:
    """A frame one byte over the limit: 1009, the upstream session closed, nothing leaked."""
    await caller.send_raw("x" * (WS_MAX_SIZE + 1))
    await caller.wait_closed(timeout=5.0)
    assert caller.close_code == 1009
    await h.fake.wait_for(lambda: all(c.closed for c in h.fake.connections),
                          timeout=upstream_closed_within)
    await caller.aclose()
    await assert_nothing_leaked(h, baseline)


async def body_chunks(size: int, chunk: int = 8192) -> AsyncIterator[bytes]:
    """`size` bytes of form data, streamed (chunked transfer encoding, no Content-Length)."""
    sent = 0
    while sent < size:
        part = min(chunk, size - sent)
        yield b"a" * part
        sent += part


@pytest.mark.parametrize("path", ["/voice", "/twilio/status", "/api/calls"])
@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_the_limit_is_refused_with_413(path: str, streamed: bool) -> None:
    """64 KiB + 1 byte, declared or streamed: 413 whatever the route, nothing kept."""
    async with harness(env={"CALLBRIDGE_API_TOKEN": "api"}, twilio_rest=True) as h:
        baseline = await warm_baseline(h)
        size = DEFAULT_MAX_BODY_BYTES + 1
        content = body_chunks(size) if streamed else b"a" * size
        async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
            response = await client.post(path, content=content, headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": "Bearer api"})
        assert response.status_code == 413
        await assert_nothing_leaked(h, baseline)


async def test_a_body_at_the_limit_reaches_the_handler() -> None:
    """Exactly 64 KiB is read and judged by the route (an unsigned webhook: 403)."""
    async with harness() as h:
        async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
            response = await client.post("/voice", content=b"a" * DEFAULT_MAX_BODY_BYTES,
                                         headers={"Content-Type":
                                                  "application/x-www-form-urlencoded"})
        assert response.status_code == 403


async def test_the_body_limit_follows_its_setting() -> None:
    """CALLBRIDGE_MAX_BODY_BYTES=2048: a signed 3 KB webhook is refused, a 1 KB one served."""
    async with harness(env={"CALLBRIDGE_MAX_BODY_BYTES": "2048"}) as h:
        url = "https://voice.example.test/twilio/status"
        validator = RequestValidator(AUTH_TOKEN)
        async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
            for padding, expected in ((3000, 413), (1000, 204)):
                form = {"CallSid": "CA" + "d" * 32, "CallStatus": "ringing", "X": "p" * padding}
                signed = {"X-Twilio-Signature": validator.compute_signature(url, form)}
                response = await client.post("/twilio/status", data=form, headers=signed)
                assert response.status_code == expected


async def test_a_declared_huge_body_is_refused_before_a_byte_of_it_is_read() -> None:
    """Headers announcing 100 MB and no body: 413 at once, not after waiting for the body."""
    async with harness() as h:
        baseline = await warm_baseline(h)
        reader, writer = await asyncio.open_connection("127.0.0.1", h.server.port)
        writer.write(b"POST /voice HTTP/1.1\r\nHost: voice.example.test\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 100000000\r\n\r\n")
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 2.0)
        assert status_line.startswith(b"HTTP/1.1 413")
        writer.close()
        await writer.wait_closed()
        await assert_nothing_leaked(h, baseline)


UPGRADE = (b"GET /twilio/stream HTTP/1.1\r\nHost: voice.example.test\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")


async def dropped_after(port: int, dribble: bytes, every: float) -> float:
    """Open a TCP connection, send `dribble` a byte every `every` s, and return how many seconds
    passed until the server closed the connection."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def trickle() -> None:
        for byte in dribble:
            writer.write(bytes([byte]))
            await asyncio.sleep(every)

    sender = asyncio.create_task(trickle())
    try:
        while await reader.read(1024):
            pass
    except ConnectionError:
        pass
    closed = loop.time() - started
    sender.cancel()
    await asyncio.gather(sender, return_exceptions=True)
    writer.close()
    with contextlib.suppress(ConnectionError):  # the close may come back as a reset
        await writer.wait_closed()
    return closed


async def silent_media_socket(url: str) -> float:
    """A correctly signed media upgrade that never sends `start`: seconds until it is closed."""
    signed = RequestValidator(AUTH_TOKEN).compute_signature(
        "wss://voice.example.test/twilio/stream", {})
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with connect(url, additional_headers={"X-Twilio-Signature": signed}) as ws:
        await ws.wait_closed()
    return loop.time() - started


async def test_slow_loris_clients_are_dropped_on_time_while_a_call_goes_on() -> None:
    """Dribbled, silent and start-less sockets are closed on time while a call keeps its pace."""
    async with harness([Reply(text="Sure.", audio=speechlike(0.8, seed=2))]) as h:
        baseline = await warm_baseline(h)
        port = h.server.port
        attacks = asyncio.gather(
            dropped_after(port, UPGRADE, every=0.5),
            dropped_after(port, b"", every=0.5),
            silent_media_socket(h.server.url.replace("http", "ws") + "/twilio/stream"))
        caller = await connected_call(h)
        for turn in range(4):
            await caller.say(speechlike(0.6, seed=turn))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            await caller.wait_until_agent_quiet(quiet_for=0.3, timeout=10.0)
        assert max(caller.turn_latencies) < 1.2, "the attacks do not slow the call down"
        await caller.hang_up()
        await caller.aclose()
        dribbled, silent, no_start = await attacks
        assert HEADER_TIMEOUT_S - 0.5 < dribbled < HEADER_TIMEOUT_S + 2.0
        assert HEADER_TIMEOUT_S - 0.5 < silent < HEADER_TIMEOUT_S + 2.0
        assert START_TIMEOUT_S - 0.5 < no_start < START_TIMEOUT_S + 2.0
        await assert_nothing_leaked(h, baseline)
