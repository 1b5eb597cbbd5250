"""OpenAI answers with `error` events mid-reply (a rate limit, a server error), or with an event
whose fields have the wrong type (which killed the call until fac2905): the call goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.testing.fake_realtime import Reply
from callbridge.testing.speech import speechlike
from tests.faults.conftest import ReliabilityLog
from tests.faults.rig import (
    CONTINUED,
    Injection,
    assert_survived,
    audible_gap,
    client_events,
    conclude,
    into_a_reply,
    rig,
    settle_and_turn,
    turn,
    until,
)

pytestmark = pytest.mark.e2e

N = 3
REPLY = Reply(text="We open at nine tomorrow.", audio=speechlike(1.5, seed=6))


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [("rate_limit_exceeded", "Rate limit reached for requests per minute.", "rate_limit_error"),
     ("server_error", "The server had an error while processing your request.", "server_error")],
    ids=["rate-limit", "server-error"],
)
async def test_an_error_event_mid_reply_is_counted_and_the_call_goes_on(
    code: str, message: str, kind: str, tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """An `error` event while the agent speaks is counted; the reply and the next turn are heard."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [REPLY], speed=2.0) as r:
            caller = await r.call()
            fault_at = await into_a_reply(caller, seed=500 + i)
            await r.fake.send_error(code, message, kind)
            gap, went_on = await settle_and_turn(caller, since=fault_at, seed=i)
            stats = r.h.bridge_of(caller).session.stats
            assert stats.upstream_errors == 1
            return await conclude(r, caller, went_on=went_on, gap=gap)

    results = await reliability.measure(
        f"upstream-error-{code}", f"upstream `error` event `{code}` mid-reply",
        f"`send_error('{code}', …)`", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=0.5)


@pytest.mark.parametrize("usage", [
    pytest.param("unavailable", id="usage-a-string"),
    pytest.param({"input_token_details": 5}, id="token-details-a-number"),
])
async def test_an_upstream_event_with_a_wrongly_typed_field_is_dropped_and_the_call_goes_on(
    usage: object, tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """A `response.done` with a malformed `usage` is dropped; the next turn is answered as usual."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [REPLY], speed=2.0) as r:
            caller = await r.call()
            await until(lambda: bool(client_events(r, "session.update")))
            await r.fake.connections[0].emit({"type": "response.done", "response": {
                "id": f"resp_malformed{i}", "status": "completed", "usage": usage}})
            went_on = await turn(caller, seed=i)
            gap = (audible_gap(caller.heard_segments, caller.utterances[-1][1], caller.now())
                   if went_on else None)
            return await conclude(r, caller, went_on=went_on, gap=gap)

    key, shape = (("usage-string", "`usage` a string") if isinstance(usage, str)
                  else ("token-details-number", "its token details a number"))
    results = await reliability.measure(
        f"upstream-malformed-{key}", f"upstream `response.done` with {shape}",
        f"`emit(response.done, usage={usage!r})`", tmp_path, scenario, n=N)
    assert [r.outcome for r in results] == [CONTINUED] * N, results
