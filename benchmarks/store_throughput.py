"""The call record's cost: `python -m benchmarks.store_throughput [--postgres URL]`.

1. Writer throughput: turns per second through `StoreWriter` (queue → batched transactions) on
   SQLite and, when reachable, PostgreSQL.
2. The media path with persistence off vs on: concurrent simulated calls through the real server
   (fake caller → server → fake model), reporting caller-perceived turn latency and event-loop lag.
Prints a table with the machine it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from callbridge.config import load_settings
from callbridge.server.app import create_app
from callbridge.server.runner import running
from callbridge.store.journal import Journal
from callbridge.store.migrate import upgrade_async
from callbridge.store.records import CallOpened, TurnRecorded
from callbridge.store.repository import CallStore
from callbridge.store.writer import StoreWriter
from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_realtime import FakeRealtimeServer, Reply
from callbridge.testing.speech import speechlike

PUBLIC_URL = "https://bench.callbridge.invalid"
TOKEN = "bench-token"


@contextlib.asynccontextmanager
async def database(kind: str, pg_server: str, workdir: Path) -> AsyncIterator[str | None]:
    if kind == "off":
        yield None
        return
    if kind == "sqlite":
        url = f"sqlite:///{workdir / f'{uuid.uuid4().hex}.db'}"
        await upgrade_async(url)
        yield url
        return
    import asyncpg

    name = f"callbridge_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(f"{pg_server}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        url = f"{pg_server}/{name}"
        await upgrade_async(url)
        yield url
    finally:
        admin = await asyncpg.connect(f"{pg_server}/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def writer_throughput(url: str, workdir: Path, turns: int = 20_000) -> float:
    store = CallStore(url)
    writer = StoreWriter(store, Journal(workdir / "bench-journal.jsonl"))
    await writer.start()
    calls = 100
    for c in range(calls):
        writer.submit(CallOpened(f"CA{c}", "inbound", "+1", "+2", "a", "m", "v", "bench", 0.0))
    await writer.flush(within=60)
    started = time.perf_counter()
    for n in range(turns):
        if writer.queue_depth > 5_000:  # producers faster than any database: let it drain
            await writer.flush(within=60)
        writer.submit(TurnRecorded(f"CA{n % calls}", f"item{n}", "caller", "some words " * 8,
                                   "some words " * 8, False, n, n + 1))
    await writer.flush(within=120)
    elapsed = time.perf_counter() - started
    assert writer.stats.dropped == 0
    assert writer.stats.written == turns + calls
    await writer.close()
    await store.close()
    return turns / elapsed


async def loop_lags(stop: asyncio.Event) -> list[float]:
    """How late (seconds) the event loop woke a 10 ms sleeper, sample by sample, until `stop`;
    sorted. The durability test uses it too."""
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(0.01)
        lags.append(loop.time() - before - 0.01)
    return sorted(lags)


async def one_call(server_url: str, seed: int, turns: int) -> list[float]:
    async with FakeTwilioCaller(server_url, PUBLIC_URL, TOKEN) as caller:
        await caller.dial()
        await caller.connect()
        for turn in range(turns):
            await caller.say(speechlike(0.6, seed=seed * 100 + turn))
            await caller.wait_for_agent_audio(timeout=10.0, after=caller.spoken_until)
            await caller.wait_until_agent_quiet(quiet_for=0.3, timeout=20.0)
        await caller.hang_up()
        return [latency * 1000 for latency in caller.turn_latencies]


async def media_path(url: str | None, calls: int, turns: int) -> tuple[float, float, float]:
    """Median and p95 turn latency (ms) and p99 loop lag (ms) for concurrent calls."""
    reply = Reply(text="Okay.", audio=speechlike(0.8, seed=7))
    async with FakeRealtimeServer([reply]) as fake:
        settings = load_settings({
            "CALLBRIDGE_PUBLIC_URL": PUBLIC_URL, "TWILIO_AUTH_TOKEN": TOKEN,
            "CALLBRIDGE_OPENAI_URL": fake.url, "OPENAI_API_KEY": "sk-bench",
            "DATABASE_URL": url or "none",
            "CALLBRIDGE_JOURNAL": str(Path(tempfile.gettempdir()) / "bench-journal.jsonl"),
        })
        async with running(create_app(settings)) as server:
            stop = asyncio.Event()
            lag_task = asyncio.create_task(loop_lags(stop))
            results = await asyncio.gather(*(one_call(server.url, i, turns)
                                             for i in range(calls)))
            stop.set()
            lags = await lag_task
    latencies = sorted(x for per_call in results for x in per_call)
    p95 = latencies[int(len(latencies) * 0.95)]
    return statistics.median(latencies), p95, lags[int(len(lags) * 0.99)] * 1000


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


async def main(pg_server: str, calls: int, turns: int) -> None:
    import os

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        backends = ["sqlite"]
        try:
            import asyncpg

            (await asyncpg.connect(f"{pg_server}/postgres", timeout=3)).terminate()
            backends.append("postgresql")
        except Exception as exc:  # report and go on without PostgreSQL
            print(f"(PostgreSQL not measured: {exc})")
        print("\nwriter throughput (20,000 turns, 100 calls, batches of up to 256)")
        for kind in backends:
            async with database(kind, pg_server, workdir) as url:
                assert url is not None
                print(f"  {kind:<11} {await writer_throughput(url, workdir):>10,.0f} turns/s")
        print(f"\nmedia path, {calls} concurrent calls × {turns} turns "
              "(turn latency includes 500 ms of VAD silence)")
        print(f"  {'record':<11} {'median ms':>10} {'p95 ms':>8} {'loop lag p99 ms':>16}")
        for kind in ["off", *backends]:
            async with database(kind, pg_server, workdir) as url:
                median, p95, lag = await media_path(url, calls, turns)
            print(f"  {kind:<11} {median:>10.0f} {p95:>8.0f} {lag:>16.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--turns", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.postgres, args.calls, args.turns))
