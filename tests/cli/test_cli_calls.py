"""`callbridge calls ...` against a running server over real sockets."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from tests.e2e.harness import connected_call, harness

pytestmark = pytest.mark.e2e

TOKEN = "api-secret"


async def calls(url: str, *args: str, token: str | None = TOKEN) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CALLBRIDGE_", "TWILIO_", "OPENAI_"))}
    if token:
        env["CALLBRIDGE_API_TOKEN"] = token
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callbridge", "calls", "--server", url, *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_calls_live_say_and_hangup_from_the_command_line() -> None:
    """The live call is listed; say and hangup are accepted; an unknown call and a bad target
    are refused with the server's reason."""
    env = {"CALLBRIDGE_API_TOKEN": TOKEN, "CALLBRIDGE_GREETING": "Hello there.",
           "CALLBRIDGE_INSTANCE_ID": "cli-test"}
    async with harness(env=env) as h:
        caller = await connected_call(h)
        await caller.wait_until_agent_quiet(quiet_for=0.3, timeout=10.0)
        url, sid = h.server.url, caller.call_sid
        status, out, _ = await calls(url, "live")
        assert status == 0
        assert sid in out
        assert "cli-test" in out
        assert (await calls(url, "say", sid, "One moment please."))[0] == 0
        status, _, err = await calls(url, "say", "CA" + "0" * 32, "Hi")
        assert status == 1
        assert "no such live call" in err
        status, _, err = await calls(url, "transfer", sid, "not-a-number")
        assert status == 2
        assert "E.164" in err
        assert (await calls(url, "hangup", sid))[0] == 0
        await caller.wait_closed(timeout=5.0)
        await caller.aclose()


async def test_calls_without_a_token_is_a_one_line_error() -> None:
    """No CALLBRIDGE_API_TOKEN: exit 2 with one line naming it."""
    status, _, err = await calls("http://127.0.0.1:9", "live", token=None)
    assert status == 2
    assert "CALLBRIDGE_API_TOKEN" in err.strip()
