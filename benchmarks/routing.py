"""`python -m benchmarks.routing`: how long a request for a call takes to reach the instance
carrying it, when it lands on another one.

Two real `callbridge serve` processes (A and B) on a fresh PostgreSQL database, a fake Realtime
server in this process, and calls whose webhook went to A and whose media stream went to B (so B
carries them). Then, each measured from the request's start to the owner acting:

- **API action**: `POST /api/calls/{sid}/context` until the fake model receives the note
  (`conversation.item.create`) — sent to A (routed over LISTEN/NOTIFY) and, for comparison, to B;
- **status callback**: a signed `completed` status callback until the caller's media socket is
  closed — sent to A (routed) and to B.

Prints p50/p99 per row, in milliseconds. The difference between the rows is what routing costs.
Needs PostgreSQL at 127.0.0.1:5432 (`CALLBRIDGE_TEST_PG` overrides). Everything shares this
machine's cores: state the load when quoting the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
from twilio.request_validator import RequestValidator

from callbridge.store.migrate import upgrade_async
from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_realtime import FakeRealtimeServer, Reply

PG = os.environ.get("CALLBRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
PUBLIC_URL = "https://routing.callbridge.invalid"
AUTH_TOKEN = "routing-bench-token"
API_TOKEN = "routing-bench-api"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def _database() -> AsyncIterator[str]:
    name = f"callbridge_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(f"{PG}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = f"{PG}/{name}"
    try:
        await upgrade_async(url)
        yield url
    finally:
        admin = await asyncpg.connect(f"{PG}/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _spawn(name: str, port: int, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    with (logs / f"{name}.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "callbridge", "--log-level", "warning", "serve", "--host",
             "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env, "CALLBRIDGE_INSTANCE_ID": name,
                 "CALLBRIDGE_JOURNAL": str(logs / f"{name}.jsonl")},
            stdout=log, stderr=log)


@contextlib.asynccontextmanager
async def _serve(name: str, env: dict[str, str], logs: Path) -> AsyncIterator[str]:
    port = _free_port()
    process = _spawn(name, port, env, logs)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"{name} did not start; see {logs}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


async def _until(predicate: object, within: float = 5.0) -> float:
    """Poll `predicate` every millisecond; the time it became true."""
    deadline = time.perf_counter() + within
    while not predicate():  # type: ignore[operator]
        if time.perf_counter() > deadline:
            raise TimeoutError("the owner did not act in time")
        await asyncio.sleep(0.001)
    return time.perf_counter()


async def _call(fake: FakeRealtimeServer, a: str, b: str) -> FakeTwilioCaller:
    """A call answered by A's webhook whose media stream B carries."""
    dialer = FakeTwilioCaller(a, PUBLIC_URL, AUTH_TOKEN)
    twiml = await dialer.dial()
    assert twiml.stream_url is not None
    caller = FakeTwilioCaller(b, PUBLIC_URL, AUTH_TOKEN, call_sid=dialer.call_sid)
    await caller.connect(twiml.stream_url, parameters=twiml.parameters)
    await caller.wait_for_agent_audio(timeout=5.0)
    await dialer.aclose()
    return caller


def _noted(fake: FakeRealtimeServer, text: str) -> bool:
    return any(event.get("type") == "conversation.item.create"
               and event.get("item", {}).get("content", [{}])[0].get("text") == text
               for connection in fake.connections for event in connection.client_events)


async def _api_latencies(fake: FakeRealtimeServer, caller: FakeTwilioCaller, url: str,
                         n: int, tag: str) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=10) as client:
        for i in range(n):
            text = f"{tag} note {i}"
            began = time.perf_counter()
            response = await client.post(f"/api/calls/{caller.call_sid}/context",
                                         json={"text": text},
                                         headers={"Authorization": f"Bearer {API_TOKEN}"})
            assert response.status_code == 202, response.text
            acted = await _until(lambda text=text: _noted(fake, text))
            latencies.append((acted - began) * 1000)
    return latencies


async def _status_latency(fake: FakeRealtimeServer, a: str, b: str, target: str) -> float:
    caller = await _call(fake, a, b)
    params = {"CallSid": caller.call_sid, "CallStatus": "completed"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        f"{PUBLIC_URL}/twilio/status", params)
    async with httpx.AsyncClient(base_url=target, trust_env=False, timeout=10) as client:
        began = time.perf_counter()
        response = await client.post("/twilio/status", data=params,
                                     headers={"X-Twilio-Signature": signature})
        assert response.status_code == 204
        await caller.wait_closed(timeout=5.0)
        ended = time.perf_counter()
    await caller.aclose()
    return (ended - began) * 1000


def _row(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (f"| {name:<44} | {len(values):>5} | {statistics.median(ordered):>8.1f} "
            f"| {p99:>8.1f} |")


async def run(actions: int, callbacks: int) -> None:
    with tempfile.TemporaryDirectory() as logs_dir:
        logs = Path(logs_dir)
        async with contextlib.AsyncExitStack() as stack:
            url = await stack.enter_async_context(_database())
            fake = await stack.enter_async_context(FakeRealtimeServer([Reply()]))
            env = {"CALLBRIDGE_PUBLIC_URL": PUBLIC_URL, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                   "CALLBRIDGE_OPENAI_URL": fake.url, "OPENAI_API_KEY": "sk-bench",
                   "DATABASE_URL": url, "CALLBRIDGE_API_TOKEN": API_TOKEN,
                   "CALLBRIDGE_GREETING": "Hello."}
            a = await stack.enter_async_context(_serve("bench-a", env, logs))
            b = await stack.enter_async_context(_serve("bench-b", env, logs))
            caller = await _call(fake, a, b)
            await _api_latencies(fake, caller, a, 10, "warm-up")
            owner = await _api_latencies(fake, caller, b, actions, "owner")
            routed = await _api_latencies(fake, caller, a, actions, "routed")
            await caller.hang_up()
            await caller.aclose()
            status_owner = [await _status_latency(fake, a, b, b) for _ in range(callbacks)]
            status_routed = [await _status_latency(fake, a, b, a) for _ in range(callbacks)]
    print(f"routing latency, 2 instances on one PostgreSQL, {os.cpu_count()} cores (ms)")
    print("| request                                      |     n |      p50 |      p99 |")
    print("|---|---:|---:|---:|")
    print(_row("API context on the owner (no routing)", owner))
    print(_row("API context on the other instance (routed)", routed))
    print(_row("completed callback on the owner", status_owner))
    print(_row("completed callback on the other (routed)", status_routed))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.routing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", type=int, default=200, help="API actions per row (200)")
    parser.add_argument("--callbacks", type=int, default=20, help="calls per callback row (20)")
    args = parser.parse_args(argv)
    asyncio.run(run(args.actions, args.callbacks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
