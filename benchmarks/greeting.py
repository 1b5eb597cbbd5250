"""The greeting asked for before Twilio's `start` or at it: `python -m benchmarks.greeting`.

The webhook opens the model session at once (the pre-opened socket, kept either way). The
question is when to ask for the greeting: as soon as that session is ready (before `start`), or
when `start` arrives. For each choice and each gap between the webhook's answer and `start`,
real calls over loopback (fake Twilio caller, our server, the fake model with a time to first
audio of `--ttfa-ms`) measure the **greeting delay**: `start` to the first agent audio the caller
hears. Calls whose media socket never arrives (`--orphans`) measure the **waste**: greetings
asked for and billed with nobody to hear them (the cost as the fake model reports usage).
Method and reading: docs/architecture.md, "The greeting before `start`".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
from collections.abc import AsyncIterator
from dataclasses import replace

from callbridge.config import load_settings
from callbridge.server.app import CallbridgeServer, create_app
from callbridge.server.runner import RunningServer, running
from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_realtime import FakeRealtimeServer, Reply

PUBLIC_URL = "https://voice.example.test"
AUTH_TOKEN = "bench-auth-token"
GREETING = "Thanks for calling the clinic. How can I help you today?"


@contextlib.asynccontextmanager
async def serving(before_start: bool, ttfa_ms: float
                  ) -> AsyncIterator[tuple[FakeRealtimeServer, RunningServer, CallbridgeServer]]:
    async with FakeRealtimeServer([Reply(text=GREETING)], speed=1.0, latency_ms=ttfa_ms) as fake:
        settings = load_settings({
            "CALLBRIDGE_PUBLIC_URL": PUBLIC_URL, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "CALLBRIDGE_OPENAI_URL": fake.url, "OPENAI_API_KEY": "sk-bench",
            "DATABASE_URL": "none", "CALLBRIDGE_GREETING": GREETING,
        })
        settings = replace(settings, timing=replace(settings.timing,
                                                    greet_before_start=before_start))
        app = create_app(settings)
        async with running(app) as server:
            yield fake, server, app.state.callbridge


async def greeting_delay(server: RunningServer, gap_s: float) -> float:
    """Seconds from `start` to the first agent audio heard, `gap_s` after the webhook."""
    caller = FakeTwilioCaller(server.url, PUBLIC_URL, AUTH_TOKEN)
    async with caller:
        await caller.dial()
        await asyncio.sleep(gap_s)
        await caller.connect()
        heard = await caller.wait_for_agent_audio(timeout=10.0)
        await caller.hang_up()
    return heard


async def orphans(fake: FakeRealtimeServer, server: RunningServer, state: CallbridgeServer,
                  count: int, wait_s: float) -> tuple[int, float]:
    """Dial `count` calls whose media socket never comes: greetings asked for, their cost."""
    callers = [FakeTwilioCaller(server.url, PUBLIC_URL, AUTH_TOKEN) for _ in range(count)]
    for caller in callers:
        await caller.dial()
    await asyncio.sleep(wait_s)
    asked = sum(1 for c in fake.connections for e in c.client_events
                if e["type"] == "response.create")
    bridges = [state.calls.get(c.call_sid) for c in callers]
    cost = sum(bridge.cost_usd for bridge in bridges if bridge is not None)
    for caller in callers:
        await caller.aclose()
    return asked, cost


async def measure(gaps: list[float], calls: int, ttfa_ms: float, orphan_calls: int
                  ) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for before_start in (True, False):
        label = "before start" if before_start else "at start"
        async with serving(before_start, ttfa_ms) as (fake, server, state):
            for gap in gaps:
                delays = [await greeting_delay(server, gap) for _ in range(calls)]
                rows.append((label, f"{gap * 1000:.0f} ms",
                             f"{statistics.median(delays) * 1000:.0f} ms "
                             f"(min {min(delays) * 1000:.0f}, max {max(delays) * 1000:.0f})"))
            asked_before = sum(1 for c in fake.connections for e in c.client_events
                               if e["type"] == "response.create")
            asked, cost = await orphans(fake, server, state, orphan_calls, wait_s=8.0)
            asked -= asked_before
            rows.append((label, "no media socket",
                         f"{asked} of {orphan_calls} greetings asked for, ${cost:.4f} billed"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gaps", default="0.2,0.5,1.0",
                        help="seconds between the webhook's answer and `start`")
    parser.add_argument("--calls", type=int, default=5, help="calls per gap")
    parser.add_argument("--ttfa-ms", type=float, default=400.0,
                        help="the model's time to first audio")
    parser.add_argument("--orphans", type=int, default=5,
                        help="calls whose media socket never arrives")
    args = parser.parse_args()
    gaps = [float(g) for g in args.gaps.split(",")]
    rows = asyncio.run(measure(gaps, args.calls, args.ttfa_ms, args.orphans))
    print(f"model time to first audio: {args.ttfa_ms:.0f} ms; {args.calls} calls per row")
    print(f"{'greeting asked':<15} {'webhook → start':<16} start → greeting heard (median)")
    for mode, gap, result in rows:
        print(f"{mode:<15} {gap:<16} {result}")


if __name__ == "__main__":
    main()
