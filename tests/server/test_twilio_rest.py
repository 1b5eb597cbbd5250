"""The Twilio REST client against the fake Twilio REST API, over real loopback sockets."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from callbridge.errors import CallbridgeError
from callbridge.server.twilio_rest import CallPacer, CallResource, TwilioRest, TwilioRestError
from callbridge.testing.fake_twilio_rest import FakeTwilioRest

ACCOUNT = "AC" + "a" * 32
TOKEN = "test-auth-token"
PUBLIC = "https://voice.example.test"
TWIML = "<Response><Say>Hello</Say></Response>"


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def served() -> AsyncIterator[FakeTwilioRest]:
    """One fake Twilio REST API on 127.0.0.1, port 0, for the module (uvicorn stops slowly)."""
    async with FakeTwilioRest(ACCOUNT, TOKEN) as fake:
        yield fake


@pytest_asyncio.fixture(loop_scope="module")
async def fake(served: FakeTwilioRest) -> FakeTwilioRest:
    """The module's fake, reset to a blank account."""
    await served.reset()
    return served


@pytest_asyncio.fixture(loop_scope="module")
async def rest(fake: FakeTwilioRest) -> AsyncIterator[TwilioRest]:
    """A client of the fake, unpaced in effect, with millisecond retry backoff."""
    async with TwilioRest(fake.url, ACCOUNT, TOKEN, cps=1000, backoff=0.01) as client:
        yield client


async def answered_call(fake: FakeTwilioRest, rest: TwilioRest) -> str:
    """The SID of an outbound call the callee has picked up."""
    call = await rest.create_call("+15550001111", "+15550002222", twiml=TWIML)
    caller = await fake.answer(call.sid)
    await caller.aclose()
    return call.sid


# ---- calls ------------------------------------------------------------------------------------


async def test_create_call_sends_twilios_wire_fields_with_repeated_status_events(
    fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """create_call POSTs To/From/Url, StatusCallback, repeated StatusCallbackEvent and async AMD."""
    call = await rest.create_call(
        "+15550001111", "+15550002222", url=f"{PUBLIC}/twilio/outbound",
        status_callback=f"{PUBLIC}/twilio/status", machine_detection="DetectMessageEnd",
        async_amd=True, async_amd_status_callback=f"{PUBLIC}/twilio/amd", timeout=30,
        time_limit=600,
    )
    [request] = fake.calls_created
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
    assert request.form == {
        "To": ["+15550001111"], "From": ["+15550002222"], "Url": [f"{PUBLIC}/twilio/outbound"],
        "StatusCallback": [f"{PUBLIC}/twilio/status"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "MachineDetection": ["DetectMessageEnd"], "AsyncAmd": ["true"],
        "AsyncAmdStatusCallback": [f"{PUBLIC}/twilio/amd"], "Timeout": ["30"],
        "TimeLimit": ["600"],
    }
    assert call == CallResource(
        sid=call.sid, status="queued", to="+15550001111", from_="+15550002222",
        direction="outbound-api", uri=f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{call.sid}.json",
    )
    assert call.sid.startswith("CA")
    assert len(call.sid) == 34


async def test_create_call_with_inline_twiml_sends_twiml_and_no_url(
    fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """Inline TwiML goes as `Twiml`; without a status callback no StatusCallbackEvent is sent."""
    await rest.create_call("+15550001111", "+15550002222", twiml=TWIML)
    assert fake.calls_created[0].form == {
        "To": ["+15550001111"], "From": ["+15550002222"], "Twiml": [TWIML],
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"url": f"{PUBLIC}/a", "twiml": TWIML},
        {"twiml": "<Response>" + "x" * 4000 + "</Response>"},
        {"twiml": TWIML, "async_amd": True},
        {"twiml": TWIML, "machine_detection": "Maybe"},
    ],
)
async def test_create_call_refuses_impossible_arguments_before_sending(
    kwargs: dict[str, object],
) -> None:
    """No/both of url and twiml, TwiML over 4000 chars, or bad AMD options raise ValueError."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    transport = httpx.MockTransport(handler)
    async with TwilioRest("https://api.twilio.test", ACCOUNT, TOKEN, transport=transport) as rest:
        with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
            await rest.create_call("+15550001111", "+15550002222", **kwargs)  # type: ignore[arg-type]
    assert sent == []


async def test_update_call_posts_new_twiml_for_a_transfer(
    fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """A transfer POSTs `Twiml` to Calls/{CA}.json and the fake keeps the document."""
    sid = await answered_call(fake, rest)
    transfer = '<Response><Dial answerOnBridge="true">+15551234567</Dial></Response>'
    await rest.update_call(sid, twiml=transfer)
    assert [r.form for r in fake.updates(sid)] == [{"Twiml": [transfer]}]
    assert fake.calls[sid].twiml_updates == [transfer]


async def test_update_call_refuses_twiml_and_url_together(rest: TwilioRest) -> None:
    """`twiml` and `url` are mutually exclusive."""
    with pytest.raises(ValueError, match="mutually exclusive"):
        await rest.update_call("CA" + "0" * 32, twiml=TWIML, url=f"{PUBLIC}/next")


async def test_hang_up_completes_the_call_and_a_second_hang_up_is_success(
    fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """Status=completed ends the call; hanging up an ended call (404/20404) returns normally."""
    sid = await answered_call(fake, rest)
    await rest.hang_up(sid)
    await rest.hang_up(sid)
    assert [r.form for r in fake.updates(sid)] == [{"Status": ["completed"]}] * 2
    assert fake.calls[sid].status == "completed"


async def test_redirecting_an_ended_call_raises_not_found(
    fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """A transfer of an ended call did not happen, so its 404/20404 is raised."""
    sid = await answered_call(fake, rest)
    await rest.hang_up(sid)
    with pytest.raises(TwilioRestError) as caught:
        await rest.update_call(sid, twiml=TWIML)
    assert (caught.value.status, caught.value.code, caught.value.not_found) == (404, 20404, True)


async def test_start_recording_posts_dual_channel_fields_and_returns_the_recording_sid(
    fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """start_recording POSTs RecordingChannels/Track/StatusCallback(+Event) and returns `RE…`."""
    sid = await answered_call(fake, rest)
    recording_sid = await rest.start_recording(sid, status_callback=f"{PUBLIC}/twilio/recording")
    request = fake.requests[-1]
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}/Recordings.json"
    assert request.form == {
        "RecordingChannels": ["dual"], "RecordingTrack": ["both"],
        "RecordingStatusCallback": [f"{PUBLIC}/twilio/recording"],
        "RecordingStatusCallbackEvent": ["completed", "absent"],
    }
    assert recording_sid == fake.calls[sid].recordings[0].sid
    assert recording_sid.startswith("RE")


# ---- errors and retries -----------------------------------------------------------------------


async def test_a_wrong_auth_token_raises_401_with_twilios_code(fake: FakeTwilioRest) -> None:
    """Basic auth is checked; the 401 body's code and message land on the error."""
    async with TwilioRest(fake.url, ACCOUNT, "wrong-token") as rest:
        with pytest.raises(TwilioRestError) as caught:
            await rest.list_numbers()
    error = caught.value
    assert (error.status, error.code, error.message) == (401, 20003, "Authenticate")
    assert isinstance(error, CallbridgeError)
    assert fake.requests[0].authorized is False


async def test_a_transient_503_is_retried_on_update(fake: FakeTwilioRest, rest: TwilioRest) -> None:
    """Two 503s then success: the hang-up succeeds on its third attempt."""
    sid = await answered_call(fake, rest)
    fake.reject_next(2, status=503)
    await rest.hang_up(sid)
    assert len(fake.updates(sid)) == 3
    assert fake.calls[sid].status == "completed"


async def test_retries_give_up_after_two_and_raise_the_last_error(
    fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """Three 503s in a row exhaust the two retries."""
    fake.reject_next(3, status=503)
    with pytest.raises(TwilioRestError) as caught:
        await rest.hang_up("CA" + "0" * 32)
    assert (caught.value.status, caught.value.code) == (503, 20503)
    assert len(fake.requests) == 3


async def test_create_call_is_never_retried(fake: FakeTwilioRest, rest: TwilioRest) -> None:
    """A 503 on create raises at once: a retried create could place two calls."""
    fake.reject_next(1, status=503)
    with pytest.raises(TwilioRestError) as caught:
        await rest.create_call("+15550001111", "+15550002222", twiml=TWIML)
    assert caught.value.status == 503
    assert len(fake.calls_created) == 1
    assert fake.calls == {}


async def test_a_refused_connection_is_a_twilio_rest_error_chained_to_httpx() -> None:
    """Transport failures are translated at the boundary, with no HTTP status."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with TwilioRest(f"http://127.0.0.1:{port}", ACCOUNT, TOKEN, backoff=0.01) as rest:
        with pytest.raises(TwilioRestError) as caught:
            await rest.hang_up("CA" + "0" * 32)
    assert caught.value.status is None
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


# ---- pacing -----------------------------------------------------------------------------------


async def test_three_creates_at_five_cps_take_about_four_tenths_of_a_second(
    fake: FakeTwilioRest,
) -> None:
    """The pacer spaces creates 1/cps apart: the first at once, the third 0.4 s later."""
    loop = asyncio.get_running_loop()
    async with TwilioRest(fake.url, ACCOUNT, TOKEN, cps=5) as rest:
        start = loop.time()
        await asyncio.gather(*(
            rest.create_call("+15550001111", "+15550002222", twiml=TWIML) for _ in range(3)
        ))
        elapsed = loop.time() - start
    assert elapsed == pytest.approx(0.4, abs=0.1)
    assert len(fake.calls) == 3


async def test_the_pacer_is_first_come_first_served_and_skips_cancelled_waiters() -> None:
    """Waiters go in arrival order; one cancelled while queued does not use up a slot."""
    loop = asyncio.get_running_loop()
    pacer = CallPacer(cps=20)
    released: list[tuple[int, float]] = []

    async def waiter(n: int) -> None:
        await pacer.wait()
        released.append((n, loop.time()))

    tasks = [asyncio.create_task(waiter(n)) for n in range(4)]
    await asyncio.sleep(0)
    tasks[1].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert [n for n, _ in released] == [0, 2, 3]
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(released)]
    assert gaps == [pytest.approx(0.05, abs=0.02)] * 2


async def test_a_pacer_needs_a_positive_rate() -> None:
    """cps must be above zero."""
    with pytest.raises(ValueError, match="positive"):
        CallPacer(cps=0)


# ---- phone numbers ----------------------------------------------------------------------------


async def test_list_numbers_follows_next_page_uri_to_the_last_page(
    fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """Five numbers two to a page: three GETs, every number once, in order."""
    added = [fake.add_number(f"+1415555020{n}", voice_url=f"{PUBLIC}/voice") for n in range(5)]
    numbers = await rest.list_numbers(page_size=2)
    assert [n.sid for n in numbers] == [n.sid for n in added]
    assert numbers[0].phone_number == "+14155550200"
    assert numbers[0].voice_url == f"{PUBLIC}/voice"
    assert numbers[0].friendly_name == "(415) 555-0200"
    assert [r.query.get("Page") for r in fake.requests] == [None, ["1"], ["2"]]


async def test_find_available_filters_by_area_code_and_limits(
    fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """AreaCode, VoiceEnabled and PageSize go on the query; E.164 numbers come back."""
    found = await rest.find_available("US", area_code=212, limit=2)
    assert found == ["+12125550100", "+12125550101"]
    request = fake.requests[0]
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT}/AvailablePhoneNumbers/US/Local.json"
    assert request.query == {"AreaCode": ["212"], "VoiceEnabled": ["true"], "PageSize": ["2"]}


async def test_buy_then_configure_a_number_sets_every_voice_url_with_post(
    fake: FakeTwilioRest, rest: TwilioRest
) -> None:
    """buy_number and configure_number send VoiceUrl/FallbackUrl/StatusCallback, all POST."""
    bought = await rest.buy_number("+14155550100", voice_url=f"{PUBLIC}/voice")
    assert bought.sid.startswith("PN")
    assert (bought.phone_number, bought.voice_url) == ("+14155550100", f"{PUBLIC}/voice")
    configured = await rest.configure_number(
        bought.sid, voice_url=f"{PUBLIC}/v2", voice_fallback_url="https://fallback.test/voice",
        status_callback=f"{PUBLIC}/twilio/status",
    )
    assert fake.requests[-1].path.endswith(f"/IncomingPhoneNumbers/{bought.sid}.json")
    assert fake.requests[-1].form == {
        "VoiceUrl": [f"{PUBLIC}/v2"], "VoiceMethod": ["POST"],
        "VoiceFallbackUrl": ["https://fallback.test/voice"], "VoiceFallbackMethod": ["POST"],
        "StatusCallback": [f"{PUBLIC}/twilio/status"], "StatusCallbackMethod": ["POST"],
    }
    assert (configured.voice_url, configured.voice_fallback_url, configured.status_callback) == (
        f"{PUBLIC}/v2", "https://fallback.test/voice", f"{PUBLIC}/twilio/status",
    )
    assert "+14155550100" not in await rest.find_available(area_code=415)
