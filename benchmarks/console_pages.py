"""The console's server time on a big record: `python -m benchmarks.console_pages
[--postgres URL] [--calls 10000] [--turns-per-call 20] [--repeat 30]`.

Fills a fresh PostgreSQL database with `--calls` calls (spread over 30 days, 5 agents, 3
directions), `--turns-per-call` transcript turns each, 10 events, 4 usage rows, a tool call and an
analysis per call; serves it with the real app over loopback; signs in; then times each console
request inside the ASGI app (from the request's arrival to the last byte of the response body) —
the server time, without the client — and over the socket. Prints a table with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import re
import statistics
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from callbridge.config import load_settings
from callbridge.server.app import create_app
from callbridge.server.runner import running
from callbridge.store.migrate import upgrade_async

TOKEN = "bench-console-token"
BUDGET_MS = 200.0
AGENTS = ("front-desk", "sales", "support", "billing", "after-hours")
DIRECTIONS = ("inbound", "outbound-api", "browser")
WORDS = ("appointment", "refund", "table", "invoice", "delivery", "password", "weekend", "price")


class ServerClock:
    """ASGI middleware that times each HTTP request inside the app, by route label."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.label = ""
        self.times: dict[str, list[float]] = defaultdict(list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        await self.app(scope, receive, send)
        if self.label:
            self.times[self.label].append((time.perf_counter() - started) * 1000)


async def fill(url: str, calls: int, turns_per_call: int, seed: int = 7) -> None:
    """Bulk-load the record with COPY (the writer's path is measured elsewhere)."""
    import asyncpg

    rng = random.Random(seed)
    now = datetime.now(UTC)
    call_rows, turn_rows, event_rows, usage_rows, tool_rows, analysis_rows = [], [], [], [], [], []
    for n in range(calls):
        sid = f"CA{n:032x}"
        created = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
        duration = rng.uniform(20, 400)
        call_rows.append((sid, rng.choice(DIRECTIONS), f"+1555{rng.randrange(10**7):07d}",
                          "+15550002222", rng.choice(AGENTS), "completed", 4, created,
                          created + timedelta(seconds=1), created + timedelta(seconds=duration),
                          duration, "caller hung up", "gpt-realtime-2.1", "marin",
                          round(duration * 0.002, 4), "bench"))
        for t in range(turns_per_call):
            role = "caller" if t % 2 else "agent"
            text = " ".join(rng.choice(WORDS) if rng.random() < 0.1 else "word"
                            for _ in range(rng.randint(6, 24)))
            start = int(t * duration * 1000 / turns_per_call)
            turn_rows.append((sid, f"item_{n}_{t}", role, text, text, False, start, start + 900))
        for e in range(10):
            kind = "turn_latency" if e < 6 else rng.choice(("barge_in", "upstream_ready", "dtmf"))
            detail = json.dumps({"ms": rng.randint(400, 1400), "model_ms": rng.randint(200, 900)}
                                if kind == "turn_latency" else {})
            event_rows.append((sid, e + 1, kind, detail, created + timedelta(seconds=e * 5)))
        for u in range(4):
            usage_rows.append((sid, f"resp_{n}_{u}", 900, 300, 100, 800, 0, 20, 280, 0.004,
                               "{}"))
        tool_rows.append((sid, f"call_{n}", "lookup_order", '{"order_id": "A-17"}',
                          '{"status": "shipped"}', None, 120, created))
        analysis_rows.append((sid, "gpt-5.4-mini", "The caller asked about an order.", 0.4,
                              "order status", 55, "[]", "{}", None, created))
    connection = await asyncpg.connect(url)
    try:
        await connection.copy_records_to_table("calls", records=call_rows, columns=[
            "call_sid", "direction", "from_number", "to_number", "agent", "status",
            "status_rank", "created_at", "answered_at", "ended_at", "duration_s", "end_reason",
            "model", "voice", "cost_usd", "instance"])
        await connection.copy_records_to_table("turns", records=turn_rows, columns=[
            "call_sid", "item_id", "role", "text", "heard", "interrupted", "started_ms",
            "ended_ms"])
        await connection.copy_records_to_table("call_events", records=event_rows, columns=[
            "call_sid", "seq", "kind", "detail", "at"])
        await connection.copy_records_to_table("usage", records=usage_rows, columns=[
            "call_sid", "response_id", "input_tokens", "output_tokens", "input_text_tokens",
            "input_audio_tokens", "input_cached_tokens", "output_text_tokens",
            "output_audio_tokens", "cost_usd", "detail"])
        await connection.copy_records_to_table("tool_calls", records=tool_rows, columns=[
            "call_sid", "call_id", "name", "arguments", "result", "error", "duration_ms",
            "created_at"])
        await connection.copy_records_to_table("analyses", records=analysis_rows, columns=[
            "call_sid", "model", "summary", "sentiment", "intent", "lead_score",
            "action_items", "custom", "note", "created_at"])
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def requests(calls: int, rng: random.Random) -> list[tuple[str, Any]]:
    """(label, path or path factory) of each measured request."""
    def call_page() -> str:
        return f"/console/calls/CA{rng.randrange(calls):032x}"
    return [
        ("call list, first page", "/console/calls"),
        ("call list, page 100", f"/console/calls?before={max(1, calls - 100 * 50)}"),
        ("call list, agent + direction", "/console/calls?agent=sales&direction=inbound"),
        ("call list, number", "/console/calls?number=%2B15550002222"),
        ("call list, 7 days", "/console/calls?from=" +
         (datetime.now(UTC) - timedelta(days=7)).date().isoformat()),
        ("call list, a common word", "/console/calls?words=refund"),
        ("call list, two words", "/console/calls?words=refund+weekend"),
        ("call list, a word nobody said", "/console/calls?words=zebra"),
        ("call page (random call)", call_page),
        ("overview, 14 days", "/console/overview"),
    ]


async def measure(url: str, calls: int, repeat: int) -> tuple[ServerClock, dict[str, list[float]]]:
    settings = load_settings({"CALLBRIDGE_PUBLIC_URL": "https://bench.callbridge.invalid",
                              "TWILIO_AUTH_TOKEN": "bench", "OPENAI_API_KEY": "sk-bench",
                              "CALLBRIDGE_OPENAI_URL": "ws://127.0.0.1:9/v1/realtime",
                              "DATABASE_URL": url, "CALLBRIDGE_API_TOKEN": TOKEN,
                              "CALLBRIDGE_JOURNAL": f"/tmp/{uuid.uuid4().hex}.jsonl"})
    app = create_app(settings)
    clock = ServerClock(app)
    wall: dict[str, list[float]] = defaultdict(list)
    rng = random.Random(11)
    async with (running(clock, log_level="error") as server,  # type: ignore[arg-type]
                httpx.AsyncClient(base_url=server.url, trust_env=False) as client):
        form = await client.get("/console/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        await client.post("/console/sign-in", data={"csrf": csrf.group(1), "token": TOKEN})
        plan = requests(calls, rng)
        for _ in range(2):  # warm the connection pool and PostgreSQL's caches
            for _label, path in plan:
                await client.get(path() if callable(path) else path)
        for _ in range(repeat):
            for label, path in plan:
                clock.label = label
                started = time.perf_counter()
                response = await client.get(path() if callable(path) else path)
                wall[label].append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"{label}: HTTP {response.status_code}")
                clock.label = ""
    return clock, wall


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(postgres: str, calls: int, turns_per_call: int,
              repeat: int) -> tuple[float, ServerClock, dict[str, list[float]]]:
    """Fill a fresh database, measure, drop it; returns the load time and the timings."""
    import asyncpg

    name = f"callbridge_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(f"{postgres}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = f"{postgres}/{name}"
    try:
        await upgrade_async(url)
        started = time.perf_counter()
        await fill(url, calls, turns_per_call)
        filled = time.perf_counter() - started
        clock, wall = await measure(url, calls, repeat)
    finally:
        admin = await asyncpg.connect(f"{postgres}/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return filled, clock, wall


def table(clock: ServerClock, wall: dict[str, list[float]]) -> list[str]:
    lines = [f"{'request':34} {'server p50':>10} {'p95':>7} {'max':>7} {'wall p50':>9}  budget"]
    for label, times in clock.times.items():
        p95 = pct(times, 0.95)
        lines.append(f"{label:34} {statistics.median(times):10.1f} {p95:7.1f} "
                     f"{max(times):7.1f} {statistics.median(wall[label]):9.1f}  "
                     f"{'ok' if p95 < BUDGET_MS else 'OVER'}")
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--turns-per-call", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    filled, clock, wall = await run(args.postgres, args.calls, args.turns_per_call, args.repeat)
    print(f"machine: {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}, PostgreSQL at {args.postgres} (local)")
    print(f"record: {args.calls:,} calls, {args.calls * args.turns_per_call:,} turns, "
          f"{args.calls * 10:,} events, {args.calls * 4:,} usage rows (loaded in {filled:.1f} s)")
    print(f"{args.repeat} requests each; server time = inside the ASGI app, to the last byte; "
          f"budget {BUDGET_MS:.0f} ms")
    print("\n".join(table(clock, wall)))


if __name__ == "__main__":
    asyncio.run(main())
