"""The fake Twilio caller: its models alone, then whole calls against a tiny in-test bridge."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from twilio.request_validator import RequestValidator

from callbridge.audio.g711 import SILENCE_BYTE
from callbridge.testing.caller_mic import Microphone
from callbridge.testing.caller_playback import MarkEcho, Playback
from callbridge.testing.caller_twiml import InvalidTwiML, TwiMLVerb, parse_twiml
from callbridge.testing.fake_caller import (
    CallerOptions,
    CallRefused,
    FakeTwilioCaller,
    UpgradeRefused,
)
from callbridge.testing.speech import speechlike, tone

PUBLIC_URL = "https://voice.example.test"
TOKEN = "test-auth-token"
STREAM_URL = "wss://voice.example.test/media"
TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
    f'<Stream url="{STREAM_URL}"><Parameter name="tenant" value="acme" />'
    '<Parameter name="token" value="t-1" /></Stream></Connect>'
    "<Say>Sorry, the agent is unavailable.</Say><Hangup /></Response>"
)


# ---- the models, without sockets --------------------------------------------------------------


def test_playback_starts_audio_on_arrival_and_marks_fall_due_when_it_ends() -> None:
    """Audio arriving while idle plays at once; a mark behind it falls due when it has played."""
    playback = Playback()
    playback.add_audio(1.0, b"\x01" * 3200)  # 400 ms
    assert playback.add_mark(1.1, "m") == []
    assert playback.next_mark_at() == pytest.approx(1.4)
    assert playback.due_marks(1.39) == []
    assert playback.due_marks(1.4) == [MarkEcho("m", played=True)]
    assert playback.segments(2.0) == [(1.0, 1.4)]


def test_playback_echoes_a_mark_at_once_when_nothing_is_queued() -> None:
    """A mark with no audio queued before it is echoed immediately."""
    playback = Playback()
    playback.add_audio(0.0, b"\x01" * 160)
    assert playback.add_mark(0.5, "idle") == [MarkEcho("idle", played=True)]


def test_playback_queues_back_to_back_chunks_into_one_segment() -> None:
    """Chunks arriving faster than real time play back to back without gaps."""
    playback = Playback()
    for i in range(5):
        playback.add_audio(0.2 + 0.01 * i, bytes([i]) * 800)  # 5 × 100 ms sent at 10× speed
    assert playback.segments(1.0) == [(0.2, 0.7)]
    heard = playback.heard(1.0)
    assert heard[1600:2400] == b"\x00" * 800
    assert heard[5600:] == bytes([SILENCE_BYTE]) * 2400


def test_playback_clear_cuts_the_playing_chunk_and_flushes_pending_marks_unplayed() -> None:
    """`clear` keeps what played, drops the rest, and echoes due marks as played, others not."""
    playback = Playback()
    playback.add_audio(0.0, b"\x02" * 800)
    playback.add_mark(0.0, "first")
    playback.add_audio(0.0, b"\x03" * 8000)
    playback.add_mark(0.0, "second")
    echoes = playback.clear(0.5)
    assert echoes == [MarkEcho("first", played=True), MarkEcho("second", played=False)]
    assert playback.played_bytes(2.0) == 4000
    assert playback.discarded_bytes == 4800
    assert playback.segments(2.0) == [(0.0, 0.5)]
    assert playback.add_mark(0.6, "after") == [MarkEcho("after", played=True)]


def test_playback_onsets_skip_audio_that_continues_a_run() -> None:
    """first_onset finds where a new run of audio starts, not chunks continuing the last one."""
    playback = Playback()
    playback.add_audio(0.0, b"\x01" * 800)
    playback.add_audio(0.05, b"\x01" * 800)  # continues the first run until 0.2
    playback.add_audio(0.5, b"\x01" * 800)
    assert playback.first_onset(0.0, 1.0) == 0.0
    assert playback.first_onset(0.01, 1.0) == 0.5
    assert playback.first_onset(0.01, 0.4) is None
    assert playback.first_onset(0.6, 1.0) is None


def test_microphone_frames_speech_then_silence_and_times_each_utterance() -> None:
    """Speech is cut into 160-byte frames padded with silence; utterances get exact times."""
    mic = Microphone()
    mic.frame(0)
    assert mic.queue(b"\x10" * 200) == 0
    first, done_first = mic.frame(1)
    second, done_second = mic.frame(2)
    assert first == b"\x10" * 160
    assert done_first == []
    assert second == b"\x10" * 40 + bytes([SILENCE_BYTE]) * 120
    assert done_second == [0]
    assert len(mic.utterances) == 1
    assert mic.utterances[0] == pytest.approx((0.02, 0.045))
    assert mic.spoken_until == pytest.approx(0.045)


def test_parse_twiml_reads_the_stream_its_parameters_and_the_fallback_verbs() -> None:
    """`<Connect><Stream>` gives the url and parameters; verbs after `</Connect>` are kept."""
    twiml = parse_twiml(200, TWIML)
    assert twiml.stream_url == STREAM_URL
    assert twiml.parameters == {"tenant": "acme", "token": "t-1"}
    assert twiml.after_connect == [("Say", "Sorry, the agent is unavailable."), ("Hangup", {})]
    assert twiml.say_texts_after_connect == ["Sorry, the agent is unavailable."]
    assert twiml.problems == []


def test_parse_twiml_without_connect_lists_every_verb() -> None:
    """TwiML with no stream (a refusal) still parses into its verbs."""
    twiml = parse_twiml(200, "<Response><Say>We are closed.</Say><Hangup/></Response>")
    assert twiml.verbs == [TwiMLVerb("Say", "We are closed."), TwiMLVerb("Hangup", {})]
    assert twiml.stream_url is None
    assert parse_twiml(200, '<Response><Reject reason="busy"/></Response>').has_verb("Reject")


def test_parse_twiml_flags_stream_urls_twilio_would_refuse() -> None:
    """A query string, a non-wss scheme and an outbound track are reported as problems."""
    xml = '<Response><Connect><Stream url="ws://h/m?x=1" track="both_tracks"/></Connect></Response>'
    problems = parse_twiml(200, xml).problems
    assert [p.split()[0] for p in problems] == ["31922", "31920", "31941"]


def test_parse_twiml_rejects_a_document_that_is_not_a_response() -> None:
    """Anything but a `<Response>` document raises InvalidTwiML."""
    with pytest.raises(InvalidTwiML):
        parse_twiml(200, "<html><body>oops</body></html>")
    with pytest.raises(InvalidTwiML):
        parse_twiml(200, "not xml")


# ---- a tiny bridge, over real loopback sockets ------------------------------------------------

Script = Callable[[WebSocket, "FakeBridge"], Awaitable[None]]


async def _idle(ws: WebSocket, bridge: FakeBridge) -> None:
    await bridge.disconnected.wait()


class FakeBridge:
    """Checks Twilio's signatures, answers TwiML, and runs a per-test script on the media socket."""

    def __init__(self) -> None:
        self.validator = RequestValidator(TOKEN)
        self.twiml = TWIML
        self.media_type = "text/xml"
        self.script: Script = _idle
        self.form: dict[str, str] = {}
        self.webhook_signature: str | None = None
        self.upgrade_signature: str | None = None
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self._arrived = asyncio.Event()
        self.url = ""
        self.app = Starlette(routes=[
            Route("/voice", self.voice, methods=["POST"]),
            WebSocketRoute("/media", self.media),
        ])

    async def voice(self, request: Request) -> Response:
        self.form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        self.webhook_signature = request.headers.get("x-twilio-signature")
        url = f"{PUBLIC_URL}{request.url.path}"
        if not self.validator.validate(url, self.form, self.webhook_signature or ""):
            return Response("bad signature", status_code=403)
        if self.media_type == "application/json":
            return JSONResponse({"twiml": self.twiml})
        if self.media_type == "chunked":
            return StreamingResponse(iter([self.twiml]), media_type="text/xml")
        return Response(self.twiml, media_type=self.media_type)

    async def media(self, ws: WebSocket) -> None:
        self.upgrade_signature = ws.headers.get("x-twilio-signature")
        url = f"wss://voice.example.test{ws.url.path}"
        if not self.validator.validate(url, {}, self.upgrade_signature or ""):
            await ws.close(code=1008)  # before accept: uvicorn answers HTTP 403
            return
        await ws.accept()
        self.connected.set()
        reader = asyncio.create_task(self._read(ws))
        try:
            await self.script(ws, self)
            await self.disconnected.wait()
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _read(self, ws: WebSocket) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                try:
                    parsed = json.loads(message["text"])
                except ValueError:
                    parsed = {"event": None, "raw": message["text"]}
                self.received.append((loop.time(), parsed))
                self._arrived.set()
                self._arrived = asyncio.Event()
        finally:
            self.disconnected.set()

    def events(self, name: str) -> list[tuple[float, dict[str, Any]]]:
        """Messages of one event type received so far, with their loop arrival times."""
        return [(t, m) for t, m in self.received if m.get("event") == name]

    async def wait_for(self, name: str, count: int = 1, within: float = 3.0) -> None:
        """Wait until `count` messages of event `name` have arrived."""
        async with asyncio.timeout(within):
            while len(self.events(name)) < count:
                await self._arrived.wait()


@pytest.fixture
async def bridge() -> AsyncIterator[FakeBridge]:
    """A FakeBridge served by uvicorn on 127.0.0.1, port 0."""
    fake = FakeBridge()
    config = uvicorn.Config(
        fake.app, host="127.0.0.1", port=0, log_level="error", lifespan="off",
        ws="websockets-sansio",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    server.should_exit = True
    await task


def make_caller(bridge: FakeBridge, **kwargs: Any) -> FakeTwilioCaller:
    """A caller pointed at the bridge, configured as the bridge's public URL."""
    return FakeTwilioCaller(bridge.url, PUBLIC_URL, TOKEN, **kwargs)


def media(stream_sid: str, audio: bytes) -> str:
    """A valid outbound `media` message."""
    payload = base64.b64encode(audio).decode()
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark(stream_sid: str, name: str) -> str:
    """A valid outbound `mark` message."""
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear(stream_sid: str) -> str:
    """A valid outbound `clear` message."""
    return json.dumps({"event": "clear", "streamSid": stream_sid})


def stream_sid_of(bridge: FakeBridge) -> str:
    """The streamSid the caller announced in `start`."""
    return str(bridge.events("start")[0][1]["streamSid"])


# ---- the webhook ------------------------------------------------------------------------------


async def test_dial_posts_a_signed_webhook_and_parses_the_twiml(bridge: FakeBridge) -> None:
    """The webhook carries Twilio's voice parameters, its signature verifies, the TwiML is read."""
    caller = make_caller(bridge, from_number="+15551230000")
    twiml = await caller.dial(extra_params={"StirVerstat": "TN-Validation-Passed-A"})
    assert bridge.webhook_signature is not None
    assert bridge.form["CallSid"] == caller.call_sid
    assert caller.call_sid.startswith("CA")
    assert bridge.form["From"] == bridge.form["Caller"] == "+15551230000"
    assert bridge.form["CallStatus"] == "ringing"
    assert bridge.form["Direction"] == "inbound"
    assert bridge.form["ApiVersion"] == "2010-04-01"
    assert bridge.form["StirVerstat"] == "TN-Validation-Passed-A"
    assert twiml.status == 200
    assert twiml.stream_url == STREAM_URL
    assert twiml.parameters == {"tenant": "acme", "token": "t-1"}
    assert twiml.say_texts_after_connect == ["Sorry, the agent is unavailable."]
    assert caller.violations == []


async def test_unsigned_dial_sends_no_signature_and_raises_call_refused(bridge: FakeBridge) -> None:
    """With sign_webhook=False no X-Twilio-Signature is sent; a 403 raises CallRefused."""
    caller = make_caller(bridge, sign_webhook=False)
    with pytest.raises(CallRefused) as refused:
        await caller.dial()
    assert refused.value.status == 403
    assert refused.value.body == "bad signature"
    assert bridge.webhook_signature is None


@pytest.mark.parametrize(
    ("served_as", "code"), [("application/json", "12300"), ("chunked", "12100")]
)
async def test_dial_rejects_twiml_twilio_could_not_read(
    bridge: FakeBridge, served_as: str, code: str
) -> None:
    """TwiML served as JSON, or with chunked transfer encoding, is refused as Twilio does."""
    bridge.media_type = served_as
    with pytest.raises(InvalidTwiML, match=code):
        await make_caller(bridge).dial()


# ---- the media stream -------------------------------------------------------------------------


async def test_upgrade_is_signed_over_the_public_wss_url_then_connected_and_start(
    bridge: FakeBridge,
) -> None:
    """The upgrade verifies over wss://public-host/media; exact `connected` and `start` follow."""
    async with make_caller(bridge) as caller:
        await caller.dial()
        await caller.connect()
        await bridge.wait_for("start")
        (_, connected), (_, start) = bridge.received[:2]
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start == {
        "event": "start", "sequenceNumber": "1",
        "start": {
            "accountSid": caller.account_sid, "streamSid": caller.stream_sid,
            "callSid": caller.call_sid, "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"tenant": "acme", "token": "t-1"},
        },
        "streamSid": caller.stream_sid,
    }


async def test_unsigned_upgrade_is_refused_with_its_http_status(bridge: FakeBridge) -> None:
    """With sign_upgrade=False no signature is sent; the server's 403 raises UpgradeRefused."""
    async with make_caller(bridge, sign_upgrade=False) as caller:
        await caller.dial()
        with pytest.raises(UpgradeRefused) as refused:
            await caller.connect()
    assert refused.value.status == 403
    assert bridge.upgrade_signature is None
    assert caller.fallback_said == ["Sorry, the agent is unavailable."]


async def test_frames_are_160_bytes_every_20_ms_with_twilio_counters(bridge: FakeBridge) -> None:
    """Every 20 ms a 160-byte `media` frame with rising sequenceNumber, chunk and timestamp."""
    async with make_caller(bridge) as caller:
        await caller.dial()
        await caller.connect()
        await bridge.wait_for("media", 25)
    frames = bridge.events("media")[:25]
    for k, (_, frame) in enumerate(frames):
        assert set(frame) == {"event", "sequenceNumber", "media", "streamSid"}
        assert frame["sequenceNumber"] == str(k + 2)
        assert frame["media"]["track"] == "inbound"
        assert frame["media"]["chunk"] == str(k + 1)
        assert frame["media"]["timestamp"] == str(20 * k)
        assert base64.b64decode(frame["media"]["payload"]) == bytes([SILENCE_BYTE]) * 160
    span = frames[-1][0] - frames[0][0]
    assert span == pytest.approx(24 * 0.020, abs=0.03)


async def test_a_mark_is_echoed_when_the_audio_before_it_has_played(bridge: FakeBridge) -> None:
    """A mark after 400 ms of audio comes back ~400 ms later; one with nothing queued at once."""
    sent_at: dict[str, float] = {}

    async def script(ws: WebSocket, bridge: FakeBridge) -> None:
        await bridge.wait_for("start")
        sid = stream_sid_of(bridge)
        loop = asyncio.get_running_loop()
        sent_at["idle"] = loop.time()
        await ws.send_text(mark(sid, "idle"))
        await bridge.wait_for("mark", 1)
        for _ in range(20):
            await ws.send_text(media(sid, tone(0.02)))
        sent_at["played"] = loop.time()
        await ws.send_text(mark(sid, "played"))

    bridge.script = script
    async with make_caller(bridge) as caller:
        await caller.dial()
        await caller.connect()
        await bridge.wait_for("mark", 2)
    (idle_at, idle), (played_at, played) = bridge.events("mark")
    assert idle["mark"] == {"name": "idle"}
    assert set(idle) == {"event", "sequenceNumber", "streamSid", "mark"}
    assert idle_at - sent_at["idle"] < 0.03
    assert played["mark"] == {"name": "played"}
    assert played_at - sent_at["played"] == pytest.approx(0.4, abs=0.06)
    assert [(name, ok) for _, name, ok in caller.marks_echoed] == [("idle", True), ("played", True)]
    assert caller.played_bytes == 3200
    assert caller.violations == []


async def test_clear_stops_what_is_heard_and_echoes_pending_marks_unplayed(
    bridge: FakeBridge,
) -> None:
    """After `clear` at ~300 ms of a 1 s reply, only ~300 ms were heard and the mark is unplayed."""
    async def script(ws: WebSocket, bridge: FakeBridge) -> None:
        await bridge.wait_for("start")
        sid = stream_sid_of(bridge)
        await ws.send_text(media(sid, tone(1.0)))
        await ws.send_text(mark(sid, "reply-end"))
        await asyncio.sleep(0.3)
        await ws.send_text(clear(sid))

    bridge.script = script
    async with make_caller(bridge) as caller:
        await caller.dial()
        await caller.connect()
        await bridge.wait_for("mark")
        await asyncio.sleep(0.1)
        segments = caller.heard_segments
        heard = caller.heard()
    assert len(caller.clears) == 1
    assert len(segments) == 1
    start, end = segments[0]
    assert end == pytest.approx(caller.clears[0], abs=1 / 8000)
    assert end - start == pytest.approx(0.3, abs=0.06)
    assert caller.played_bytes + caller.discarded_bytes == 8000
    assert heard[round(end * 8000):] == bytes([SILENCE_BYTE]) * (len(heard) - round(end * 8000))
    assert [(name, played) for _, name, played in caller.marks_echoed] == [("reply-end", False)]


async def test_messages_breaking_twilio_rules_are_recorded_and_not_played(
    bridge: FakeBridge,
) -> None:
    """Binary frames, a mark without `mark`, snake_case stream_sid: violations, and ignored."""
    async def script(ws: WebSocket, bridge: FakeBridge) -> None:
        await bridge.wait_for("start")
        sid = stream_sid_of(bridge)
        await ws.send_bytes(tone(0.02))
        await ws.send_text(json.dumps({"event": "mark", "streamSid": sid}))
        await ws.send_text(json.dumps({"event": "clear", "stream_sid": sid}))
        await ws.send_text(media(sid, tone(0.1)[:100]))

    bridge.script = script
    async with make_caller(bridge) as caller:
        await caller.dial()
        await caller.connect()
        await caller.wait_for_agent_audio(timeout=2.0)
        await caller.wait_until_agent_quiet(quiet_for=0.02, timeout=2.0)
    codes = [v.split()[0] for v in caller.violations]
    assert codes == ["31950", "31951", "31951", "31951"]
    assert caller.marks_echoed == []
    assert caller.clears == []
    assert caller.played_bytes == 100
    assert caller.warnings == ["media.payload is 100 bytes, not a multiple of 160"]


async def test_a_server_close_runs_the_twiml_after_connect(bridge: FakeBridge) -> None:
    """When the server closes the stream, the caller 'hears' the `<Say>` after `</Connect>`."""
    async def script(ws: WebSocket, bridge: FakeBridge) -> None:
        await bridge.wait_for("media", 5)
        await ws.close(code=1000)

    bridge.script = script
    async with make_caller(bridge) as caller:
        await caller.dial()
        await caller.connect()
        await caller.wait_closed(timeout=2.0)
    assert caller.fallback_said == ["Sorry, the agent is unavailable."]
    assert caller.closed_by_server_at == pytest.approx(0.1, abs=0.06)
    assert caller.fallback_at == caller.closed_by_server_at
    assert caller.close_code == 1000
    assert bridge.events("stop") == []


async def test_hang_up_sends_stop_and_closes_normally(bridge: FakeBridge) -> None:
    """hang_up() sends the exact `stop` then closes with 1000; dtmf and raw frames are counted."""
    async with make_caller(bridge) as caller:
        await caller.dial()
        await caller.connect()
        await caller.send_dtmf("7")
        await caller.send_raw("{not json")
        await caller.hang_up()
        await caller.hang_up()
        await asyncio.wait_for(bridge.disconnected.wait(), 2.0)
    messages = [m for _, m in bridge.received[1:] if "raw" not in m]
    numbers = [int(m["sequenceNumber"]) for m in messages]
    dtmf = next(m for m in messages if m["event"] == "dtmf")
    assert dtmf["dtmf"] == {"track": "inbound_track", "digit": "7"}
    assert [m for _, m in bridge.received if "raw" in m] == [{"event": None, "raw": "{not json"}]
    assert messages[-1] == {
        "event": "stop", "sequenceNumber": messages[-1]["sequenceNumber"],
        "stop": {"accountSid": caller.account_sid, "callSid": caller.call_sid},
        "streamSid": caller.stream_sid,
    }
    assert numbers[-1] == len(messages) + 1  # the raw frame used one number without arriving
    assert caller.close_code == 1000
    assert caller.closed_by_server_at is None
    assert caller.fallback_said == []


async def test_speed_four_sends_a_one_second_utterance_in_a_quarter_second(
    bridge: FakeBridge,
) -> None:
    """At speed=4.0 a 1 s utterance takes ~0.25 s of wall time and ends 1 s into the call clock."""
    async with make_caller(bridge, speed=4.0) as caller:
        await caller.dial()
        await caller.connect()
        loop = asyncio.get_running_loop()
        began = loop.time()
        await caller.say(speechlike(1.0, seed=3))
        took = loop.time() - began
    assert took == pytest.approx(0.25, abs=0.06)
    start, end = caller.utterances[0]
    assert end - start == pytest.approx(1.0)


async def test_turn_latency_and_heard_timeline_follow_the_agent_reply(bridge: FakeBridge) -> None:
    """A reply sent 100 ms after the caller stops is heard where it played; latency is measured."""
    reply = speechlike(0.3, seed=7)

    async def script(ws: WebSocket, bridge: FakeBridge) -> None:
        await bridge.wait_for("start")
        sid = stream_sid_of(bridge)
        while True:  # wait for speech, then for the silence after it
            await bridge.wait_for("media", len(bridge.events("media")) + 1)
            payloads = [m["media"]["payload"] for _, m in bridge.events("media")]
            spoke = [base64.b64decode(p) != bytes([SILENCE_BYTE]) * 160 for p in payloads]
            if any(spoke) and not spoke[-1]:
                break
        await asyncio.sleep(0.1)
        await ws.send_text(media(sid, reply))

    bridge.script = script
    async with make_caller(bridge, speed=2.0) as caller:
        await caller.dial()
        await caller.connect()
        await caller.say(speechlike(0.2, seed=1))
        onset = await caller.wait_for_agent_audio(timeout=2.0, after=caller.spoken_until)
        quiet_at = await caller.wait_until_agent_quiet(quiet_for=0.1, timeout=2.0)
    latency = onset - caller.spoken_until
    assert caller.turn_latencies == [pytest.approx(latency)]
    assert latency == pytest.approx(0.22, abs=0.1)  # 20 ms frame + 100 ms wall × 2 + delivery
    assert quiet_at >= onset + 0.3 + 0.1
    at = round(onset * 8000)
    assert caller.heard()[at : at + len(reply)] == reply
    assert caller.audio_received_after(caller.spoken_until) == reply


def test_caller_options_build_an_equivalent_caller() -> None:
    """from_options() takes every setting, SIDs included, from a CallerOptions."""
    options = CallerOptions(
        "http://127.0.0.1:1", PUBLIC_URL, TOKEN, account_sid="AC" + "1" * 32,
        call_sid="CA" + "2" * 32, stream_sid="MZ" + "3" * 32, speed=3.0,
    )
    caller = FakeTwilioCaller.from_options(options)
    assert caller.options == options
    assert caller.stream_sid == "MZ" + "3" * 32
    assert options.stream_urls("wss://voice.example.test/media?x=1") == (
        "wss://voice.example.test/media", "ws://127.0.0.1:1/media",
    )
