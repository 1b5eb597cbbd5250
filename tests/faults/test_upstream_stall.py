"""The network to OpenAI stalls for 5 s mid-reply (a fault proxy stops forwarding both ways, no
FIN, no RST): what the caller hears, and whether anything notices.

Two things notice within 3 s (`CALLBRIDGE_UPSTREAM_STALL_S`), whichever comes first: the
session's own deadline (a reply is owed and no event came for 3 s) and the socket's keepalive
(its pings go unanswered; with websockets' defaults that took 20–40 s). The socket is given up as
lost. The caller hears the audio already sent to Twilio (≤ 300 ms), then silence until the
stall is noticed, then the comfort sound while a new session opens (through the same stalled
network, so it completes when the network resumes), then the rest of the reply.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.testing.fake_realtime import Reply
from callbridge.testing.speech import speechlike
from tests.faults.conftest import ReliabilityLog
from tests.faults.rig import (
    Injection,
    assert_survived,
    conclude,
    rig,
    through_a_stall,
)

pytestmark = pytest.mark.e2e

N = 3
STALL_S = 5.0
DEADLINE_S = 3.0  # CALLBRIDGE_UPSTREAM_STALL_S's default


async def test_a_5_second_upstream_stall_is_given_up_within_3_s_and_the_call_goes_on(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """Stalled 5 s as the reply starts: under 3 s of silence, the comfort sound while the
    session is replaced, then the reply; nothing lost."""
    replies = [Reply(text="Our opening hours are nine to five.", audio=speechlike(2.5, seed=5))]

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, replies, proxied=True, speed=1.0) as r:
            caller = await r.call()
            gap, went_on = await through_a_stall(r, caller, STALL_S, seed=i)
            bridge = r.h.bridge_of(caller)
            return await conclude(r, caller, went_on=went_on, gap=gap,
                                  upstream_lost=bridge.notes["upstream_lost"],
                                  stalled=bridge.notes["upstream_stalled"])

    results = await reliability.measure(
        "upstream-stall-5s", "upstream stalls 5 s mid-reply",
        "`FaultProxy.stall()`, `resume()` after 5 s", tmp_path, scenario, n=N)
    assert_survived(results)
    # Detected once, as a loss (by the deadline or the keepalive); the silence ends by the
    # deadline (the comfort sound follows).
    assert all(r.notes["upstream_lost"] == 1 and r.notes["stalled"] <= 1 for r in results), (
        results)
    assert all(DEADLINE_S - 1.0 < (r.gap_s or 0.0) < DEADLINE_S + 0.5 for r in results), results
