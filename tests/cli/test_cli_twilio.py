"""`callbridge call` and `callbridge numbers` against the fake Twilio REST API."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from callbridge.testing.fake_twilio_rest import FakeTwilioRest

ACCOUNT = "AC" + "3" * 32
TOKEN = "rest-token"


async def cli(rest: FakeTwilioRest, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CALLBRIDGE_", "TWILIO_", "OPENAI_"))}
    env |= {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN,
            "CALLBRIDGE_TWILIO_API_URL": rest.url, "DATABASE_URL": "none",
            "CALLBRIDGE_PUBLIC_URL": "https://voice.example.com",
            "CALLBRIDGE_FALLBACK_URL": "https://fallback.example.com/voice",
            "CALLBRIDGE_CALLER_ID": "+15550009999"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callbridge", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def rest() -> FakeTwilioRest:
    async with FakeTwilioRest(ACCOUNT, TOKEN) as fake:
        yield fake  # type: ignore[misc]


async def test_call_places_an_outbound_call_with_async_amd(rest: FakeTwilioRest) -> None:
    """`callbridge call +1…` POSTs Calls.json with the outbound URL and async AMD."""
    code, out, err = await cli(rest, "call", "+15557654321")
    assert code == 0, err
    [create] = rest.calls_created
    assert (create.value("To"), create.value("From")) == ("+15557654321", "+15550009999")
    assert create.value("Url") == "https://voice.example.com/twilio/outbound?agent=default&amd=1"
    assert create.value("AsyncAmdStatusCallback") == "https://voice.example.com/twilio/amd"
    assert create.value("StatusCallback") == "https://voice.example.com/twilio/status"
    assert out.startswith("calling +15557654321: CA")


async def test_numbers_buy_and_configure_point_numbers_at_this_server(
    rest: FakeTwilioRest,
) -> None:
    """buy picks an available number; configure re-points an owned one; list shows both."""
    owned = rest.add_number("+15550002222", voice_url="https://old.example.com/voice")
    code, out, err = await cli(rest, "numbers", "buy", "--area-code", "415")
    assert code == 0, err
    assert "calls go to https://voice.example.com/voice" in out
    code, out, err = await cli(rest, "numbers", "configure", "+15550002222")
    assert code == 0, err
    assert rest.numbers[owned.sid].voice_url == "https://voice.example.com/voice"
    assert rest.numbers[owned.sid].voice_fallback_url == "https://fallback.example.com/voice"
    assert rest.numbers[owned.sid].status_callback == "https://voice.example.com/twilio/status"
    code, out, _ = await cli(rest, "numbers", "list")
    assert code == 0
    assert len(out.strip().splitlines()) == 2


async def test_configuring_a_number_the_account_does_not_own_is_one_clear_line(
    rest: FakeTwilioRest,
) -> None:
    """An unknown number: exit 2 and a one-line message, no traceback."""
    code, _, err = await cli(rest, "numbers", "configure", "+15550000000")
    assert code == 2
    assert err.strip() == "callbridge: +15550000000 is not one of the account's numbers"
