"""The fake Twilio REST API: its API over raw HTTP, then what it makes Twilio do to a tiny app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from twilio.request_validator import RequestValidator

from callbridge.server.runner import running
from callbridge.server.twilio_rest import TwilioRest
from callbridge.testing.caller_config import CallRefused, CallState
from callbridge.testing.fake_twilio_rest import FakeTwilioRest

ACCOUNT = "AC" + "b" * 32
TOKEN = "test-auth-token"
PUBLIC = "https://voice.example.test"
STREAM_TWIML = (
    '<Response><Connect><Stream url="wss://voice.example.test/twilio/stream">'
    '<Parameter name="campaign" value="7" /></Stream></Connect></Response>'
)
SAY_TWIML = "<Response><Say>Hello from the app</Say></Response>"


@dataclass
class Hit:
    """One webhook the app received, and whether its signature matched the public URL."""

    path: str
    query: str
    form: dict[str, str]
    signed_ok: bool


@dataclass
class VoiceApp:
    """A tiny stand-in for callbridge's server: signed webhooks, and a signed media socket."""

    twiml: str = STREAM_TWIML
    hits: list[Hit] = field(default_factory=list)
    starts: list[dict[str, Any]] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    stream_closed: asyncio.Event = field(default_factory=asyncio.Event)
    validator: RequestValidator = field(default_factory=lambda: RequestValidator(TOKEN))
    url: str = ""

    async def webhook(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        query = request.url.query
        signed = f"{PUBLIC}{request.url.path}" + (f"?{query}" if query else "")
        signature = request.headers.get("x-twilio-signature", "")
        ok = bool(self.validator.validate(signed, form, signature))
        self.hits.append(Hit(request.url.path, query, form, ok))
        if request.url.path == "/twilio/outbound":
            return Response(self.twiml, media_type="text/xml")
        return Response(status_code=204)

    async def stream(self, ws: WebSocket) -> None:
        signature = ws.headers.get("x-twilio-signature", "")
        if not self.validator.validate(f"wss://voice.example.test{ws.url.path}", {}, signature):
            await ws.close(code=1008)  # before accept: HTTP 403
            return
        await ws.accept()
        closed, started, starts = self.stream_closed, self.started, self.starts  # this test's
        try:
            while True:
                message = json.loads(await ws.receive_text())
                if message["event"] == "start":
                    starts.append(message["start"])
                    started.set()
        except WebSocketDisconnect:
            closed.set()

    def reset(self) -> None:
        """Forget what was received; answer the stream TwiML again."""
        self.twiml = STREAM_TWIML
        self.hits = []
        self.starts = []
        self.started = asyncio.Event()
        self.stream_closed = asyncio.Event()

    def hits_to(self, path: str) -> list[Hit]:
        """Webhooks received on `path`, in order."""
        return [hit for hit in self.hits if hit.path == path]


pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Served:
    """The module's VoiceApp and fake Twilio (uvicorn takes ~0.15 s to stop, so start them once)."""

    app: VoiceApp
    fake: FakeTwilioRest


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def served() -> AsyncIterator[Served]:
    """A VoiceApp on 127.0.0.1 and a fake Twilio whose callbacks to the public URL reach it."""
    voice = VoiceApp()
    starlette = Starlette(routes=[
        Route("/twilio/{name}", voice.webhook, methods=["POST"]),
        WebSocketRoute("/twilio/stream", voice.stream),
    ])
    async with running(starlette) as server:
        voice.url = server.url
        async with FakeTwilioRest(ACCOUNT, TOKEN, server_url=server.url, public_url=PUBLIC) as fake:
            yield Served(voice, fake)


@pytest_asyncio.fixture(loop_scope="module")
async def fake(served: Served) -> FakeTwilioRest:
    """The module's fake Twilio, reset to a blank account."""
    await served.fake.reset()
    return served.fake


@pytest_asyncio.fixture(loop_scope="module")
async def app(served: Served, fake: FakeTwilioRest) -> VoiceApp:
    """The module's VoiceApp, with nothing received and the stream TwiML to answer."""
    served.app.reset()
    return served.app


@pytest_asyncio.fixture(loop_scope="module")
async def rest(fake: FakeTwilioRest) -> AsyncIterator[TwilioRest]:
    """callbridge's REST client pointed at the fake."""
    async with TwilioRest(fake.url, ACCOUNT, TOKEN, cps=1000) as client:
        yield client


# ---- the API ----------------------------------------------------------------------------------


async def test_an_unauthenticated_request_gets_twilios_401_and_is_still_recorded(
    fake: FakeTwilioRest,
) -> None:
    """No Basic auth: 401 with Twilio's JSON error body; the request is on the record."""
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{fake.url}/2010-04-01/Accounts/{ACCOUNT}/Calls.json",
                                     data={"To": "+15550001111"})
    assert response.status_code == 401
    assert response.json() == {
        "code": 20003, "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401,
    }
    assert [(r.method, r.form, r.authorized) for r in fake.requests] == [
        ("POST", {"To": ["+15550001111"]}, False)
    ]


async def test_updating_an_unknown_or_completed_call_answers_404_with_code_20404(
    fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """Like Twilio, a call that has ended (or never was) is not found."""
    auth = httpx.BasicAuth(ACCOUNT, TOKEN)
    async with httpx.AsyncClient(base_url=fake.url, auth=auth) as client:
        unknown = await client.post(f"/2010-04-01/Accounts/{ACCOUNT}/Calls/CA{'0' * 32}.json",
                                    data={"Status": "completed"})
        call = await rest.create_call("+15550001111", "+15550002222", twiml=SAY_TWIML)
        path = f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{call.sid}.json"
        first = await client.post(path, data={"Status": "completed"})
        second = await client.post(path, data={"Status": "completed"})
    assert (unknown.status_code, unknown.json()["code"]) == (404, 20404)
    assert (first.status_code, first.json()["status"]) == (200, "completed")
    assert (second.status_code, second.json()["code"]) == (404, 20404)


# ---- what Twilio then does ----------------------------------------------------------------------


async def test_answer_posts_signed_voice_params_and_opens_the_signed_stream(
    app: VoiceApp, fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """The TwiML URL (with its query) is signed as configured; `<Connect><Stream>` connects."""
    call = await rest.create_call("+15550001111", "+15550002222",
                                  url=f"{PUBLIC}/twilio/outbound?leg=a")
    caller = await fake.answer(call.sid)
    [hit] = app.hits_to("/twilio/outbound")
    assert hit.signed_ok
    assert hit.query == "leg=a"
    assert {k: hit.form[k] for k in ("CallSid", "AccountSid", "CallStatus", "Direction")} == {
        "CallSid": call.sid, "AccountSid": ACCOUNT, "CallStatus": "in-progress",
        "Direction": "outbound-api",
    }
    assert (hit.form["From"], hit.form["To"], hit.form["ApiVersion"]) == (
        "+15550002222", "+15550001111", "2010-04-01",
    )
    assert caller.state is CallState.STREAMING
    async with asyncio.timeout(3):
        await app.started.wait()
    assert app.starts[0]["callSid"] == call.sid
    assert app.starts[0]["customParameters"] == {"campaign": "7"}


async def test_hanging_up_through_the_api_ends_the_answered_calls_stream(
    app: VoiceApp, fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """Status=completed completes the call and closes its media stream."""
    call = await rest.create_call("+15550001111", "+15550002222", url=f"{PUBLIC}/twilio/outbound")
    caller = await fake.answer(call.sid)
    await rest.hang_up(call.sid)
    await caller.wait_closed(timeout=3)
    async with asyncio.timeout(3):
        await app.stream_closed.wait()
    assert fake.calls[call.sid].status == "completed"


async def test_an_inline_twiml_call_is_answered_without_a_webhook(
    app: VoiceApp, fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """Inline `Twiml` is run as is: nothing is fetched, and `<Say>` opens no stream."""
    call = await rest.create_call("+15550001111", "+15550002222", twiml=SAY_TWIML)
    caller = await fake.answer(call.sid)
    assert app.hits == []
    assert caller.twiml is not None
    assert [(v.verb, v.content) for v in caller.twiml.verbs] == [("Say", "Hello from the app")]
    assert caller.state is CallState.DIALED


async def test_async_amd_posts_answered_by_signed_after_the_delay(
    app: VoiceApp, fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """AsyncAmd: AnsweredBy and MachineDetectionDuration arrive, signed, `amd_delay` later."""
    app.twiml = SAY_TWIML
    call = await rest.create_call(
        "+15550001111", "+15550002222", url=f"{PUBLIC}/twilio/outbound",
        machine_detection="DetectMessageEnd", async_amd=True,
        async_amd_status_callback=f"{PUBLIC}/twilio/amd?attempt=1",
    )
    loop = asyncio.get_running_loop()
    answered_at = loop.time()
    await fake.answer(call.sid, answered_by="machine_end_beep", amd_delay=0.2)
    assert "AnsweredBy" not in app.hits_to("/twilio/outbound")[0].form  # not synchronous AMD
    delivery = await fake.wait_for_delivery("amd", call.sid)
    assert loop.time() - answered_at >= 0.2
    [hit] = app.hits_to("/twilio/amd")
    assert hit.signed_ok
    assert delivery.url == f"{PUBLIC}/twilio/amd?attempt=1"
    assert delivery.status == 204
    assert hit.form == {"CallSid": call.sid, "AccountSid": ACCOUNT,
                        "AnsweredBy": "machine_end_beep", "MachineDetectionDuration": "200"}


async def test_answer_refuses_an_answered_by_the_detection_mode_cannot_give(
    fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """`Enable` detection never reports machine_end_beep."""
    call = await rest.create_call("+15550001111", "+15550002222", twiml=SAY_TWIML,
                                  machine_detection="Enable", async_amd=True)
    with pytest.raises(ValueError, match="machine_end_beep"):
        await fake.answer(call.sid, answered_by="machine_end_beep")


async def test_send_status_posts_a_signed_status_callback_and_moves_the_call(
    app: VoiceApp, fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """A signed `completed` callback arrives; the call is then over for the API too."""
    call = await rest.create_call("+15550001111", "+15550002222", twiml=SAY_TWIML,
                                  status_callback=f"{PUBLIC}/twilio/status")
    await fake.answer(call.sid)
    delivery = await fake.send_status(call.sid, "completed", CallDuration="12")
    [hit] = app.hits_to("/twilio/status")
    assert hit.signed_ok
    assert delivery.status == 204
    assert (hit.form["CallSid"], hit.form["CallStatus"], hit.form["CallDuration"]) == (
        call.sid, "completed", "12",
    )
    assert hit.form["CallbackSource"] == "call-progress-events"
    await rest.hang_up(call.sid)  # 20404 from the fake, success for the client
    assert fake.calls[call.sid].status == "completed"


async def test_complete_recording_posts_a_signed_recording_callback(
    app: VoiceApp, fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """A recording started over the API completes with Twilio's recording callback fields."""
    call = await rest.create_call("+15550001111", "+15550002222", twiml=SAY_TWIML)
    await fake.answer(call.sid)
    recording_sid = await rest.start_recording(call.sid,
                                               status_callback=f"{PUBLIC}/twilio/recording")
    await fake.complete_recording(call.sid, duration=7)
    [hit] = app.hits_to("/twilio/recording")
    assert hit.signed_ok
    expected = {
        "AccountSid": ACCOUNT, "CallSid": call.sid, "RecordingSid": recording_sid,
        "RecordingStatus": "completed", "RecordingDuration": "7", "RecordingChannels": "2",
    }
    assert {k: hit.form[k] for k in expected} == expected
    assert hit.form["RecordingUrl"].endswith(f"/Recordings/{recording_sid}")


async def test_an_inbound_caller_is_known_to_the_api(
    app: VoiceApp, fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """A fake caller made by the fake can be hung up and recorded through the API."""
    caller = fake.inbound_caller()
    assert fake.calls[caller.call_sid].direction == "inbound"
    await rest.start_recording(caller.call_sid, status_callback=f"{PUBLIC}/twilio/recording")
    await rest.hang_up(caller.call_sid)
    assert fake.calls[caller.call_sid].status == "completed"


async def test_answer_raises_call_refused_when_the_twiml_url_fails(
    fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """A non-2xx answer to the TwiML request is CallRefused, with its status."""
    call = await rest.create_call("+15550001111", "+15550002222", url=f"{PUBLIC}/nowhere")
    with pytest.raises(CallRefused) as caught:
        await fake.answer(call.sid)
    assert caught.value.status == 404
    assert fake.deliveries[0].target.endswith("/nowhere")
