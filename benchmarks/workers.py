"""`python -m benchmarks.workers`: calls carried by `callbridge serve --workers 2` against one
process, on this machine.

For each worker count, a fresh PostgreSQL database, the load harness (`benchmarks.load`, its
callers, echo upstream and relay baseline, unpinned) and `callbridge serve --workers N` pointed
at the harness's echo upstream; the harness ramps `--steps` and stops where p99 bridge-added
latency breaks `--budget-ms` or a frame is lost. Prints, per worker count, the largest N that
held, and the CPU the load generator (harness, callers, echo upstream, relay) and the server
used, as a share of all the machine's cores over the run. On a 2-core machine the load generator
takes a large share itself, so the figure is what the server carried beside it, not alone.
Needs PostgreSQL at 127.0.0.1:5432 (`CALLBRIDGE_TEST_PG` overrides).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from callbridge.store.migrate import upgrade

PG = os.environ.get("CALLBRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _admin(sql: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(f"{PG}/postgres")
        try:
            await connection.execute(sql)
        finally:
            await connection.close()
    asyncio.run(run())


def one_run(workers: int, steps: str, hold: float, out: Path,
            quiet_wait: float) -> dict[str, Any]:
    name = f"callbridge_bench_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}"')
    url = f"{PG}/{name}"
    try:
        upgrade(url)
        port, echo_port, token = _free_port(), _free_port(), secrets.token_hex(8)
        stem = f"workers-{workers}"
        began, cpu0 = time.monotonic(), _children_cpu()
        harness = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.load", "--no-pin", "--target-url",
             f"http://127.0.0.1:{port}", "--target-name", stem, "--auth-token", token,
             "--echo-port", str(echo_port), "--steps", steps, "--hold", str(hold),
             "--healthz-path", "/healthz", "--out", str(out), "--stem", stem,
             "--quiet-wait", str(quiet_wait)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = subprocess.Popen(
            [sys.executable, "-m", "callbridge", "--log-level", "warning", "serve", "--host",
             "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env={**os.environ, "CALLBRIDGE_PUBLIC_URL": f"http://127.0.0.1:{port}",
                 "TWILIO_AUTH_TOKEN": token, "OPENAI_API_KEY": "sk-bench",
                 "CALLBRIDGE_OPENAI_URL": f"ws://127.0.0.1:{echo_port}/v1/realtime",
                 "DATABASE_URL": url, "CALLBRIDGE_CHUNK_MS": "20", "CALLBRIDGE_LEAD_MS": "5000",
                 "CALLBRIDGE_INSTANCE_ID": "bench", "CALLBRIDGE_JOURNAL": str(out / "j.jsonl")},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if harness.wait() not in (0, 1):  # 1: the ramp broke the budget, which is the point
            raise RuntimeError(f"the load harness failed (status {harness.returncode})")
        harness_cpu = _children_cpu() - cpu0
        wall = time.monotonic() - began
        server.terminate()
        server.wait(timeout=60)
        server_cpu = _children_cpu() - cpu0 - harness_cpu
        result = json.loads((out / f"{stem}.json").read_text())
        held = [s["n"] for s in result["bridge"] if s["verdict"] == "ok"]
        cores = os.cpu_count() or 1
        return {"workers": workers, "held": max(held) if held else 0,
                "broke": next((f"{s['n']} ({s['verdict']})" for s in result["bridge"]
                               if s["verdict"] != "ok"), "-"),
                "harness_share": harness_cpu / (wall * cores),
                "server_share": server_cpu / (wall * cores)}
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="50,100,150,200,250,300")
    parser.add_argument("--hold", type=float, default=4.0)
    parser.add_argument("--quiet-wait", type=float, default=0.0,
                        help="seconds each window may wait for the machine to quiet down "
                             "(benchmarks.load; default 0: measure beside whatever runs)")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            rows.append(one_run(workers, args.steps, args.hold, Path(tmp), args.quiet_wait))
    print(f"calls carried within the latency budget, {os.cpu_count()} cores, unpinned")
    print("| server | largest N that held | first N that broke | load generator CPU "
          "| server CPU |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| serve --workers {row['workers']} | {row['held']} | {row['broke']} "
              f"| {row['harness_share']:.0%} | {row['server_share']:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
