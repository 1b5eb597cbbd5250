"""`callbridge worker` and `callbridge jobs`: running and inspecting the post-call jobs.

Owns those commands: the worker process (until SIGTERM or SIGINT, which let the running jobs
finish; `--once` stops when nothing is due) and the operator's view of the queue (pending, dead,
retry). Both need the call record's database at the current schema. SQLite supports one worker
process; PostgreSQL any number.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from typing import Any

from callbridge.config import Settings, load_settings
from callbridge.errors import ConfigError
from callbridge.store.database import describe
from callbridge.store.jobs import JobQueue, JobState
from callbridge.store.migrate import require_current_schema
from callbridge.store.repository import CallStore

STATES = tuple(state.value for state in JobState)


def add_commands(commands: Any) -> None:
    """Add `worker` and `jobs` to the CLI's subcommands."""
    worker = commands.add_parser("worker", help="run post-call analytics and webhook jobs")
    worker.add_argument("--once", action="store_true",
                        help="run the jobs that are due, then exit")
    worker.add_argument("--concurrency", type=int, default=4,
                        help="jobs run at the same time (default 4)")
    jobs = commands.add_parser("jobs", help="list post-call jobs, or retry failed ones")
    jobs.add_argument("--state", choices=STATES, help="only jobs in this state")
    jobs.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    retry = jobs.add_mutually_exclusive_group()
    retry.add_argument("--retry", type=int, metavar="ID",
                       help="make this dead or waiting job due now, with fresh attempts")
    retry.add_argument("--retry-dead", action="store_true",
                       help="make every dead job due now, with fresh attempts")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(serving=False)
    if settings.database_url is None:
        raise ConfigError("DATABASE_URL=none: post-call jobs live in the call record's database")
    if args.command == "worker":
        if args.concurrency < 1:
            raise ConfigError("--concurrency must be at least 1")
        from callbridge.analytics.service import check_settings

        check_settings(settings)
        return asyncio.run(_work(settings, settings.database_url, args.once, args.concurrency))
    return asyncio.run(_jobs(settings.database_url, args))


async def _work(settings: Settings, url: str, once: bool, concurrency: int) -> int:
    from callbridge.analytics.service import analytics_worker

    await require_current_schema(url)
    store = CallStore(url)
    try:
        async with analytics_worker(settings, store, name=settings.instance_id,
                                    concurrency=concurrency) as worker:
            if once:
                ran = await worker.run_until_idle()
                print(f"ran {ran} job(s)")
                return 0
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            print(f"callbridge worker: {concurrency} at a time on {describe(url)}; "
                  "SIGTERM or Ctrl-C stops after the running jobs", flush=True)
            await worker.run(stop)
            return 0
    finally:
        await store.close()


async def _jobs(url: str, args: argparse.Namespace) -> int:
    await require_current_schema(url)
    store = CallStore(url)
    queue = JobQueue(store.engine)
    try:
        if args.retry is not None:
            if not await queue.retry_job(args.retry, time.time()):
                raise ConfigError(f"job {args.retry} is not dead or waiting (see callbridge jobs)")
            print(f"job {args.retry} is due now")
            return 0
        if args.retry_dead:
            print(f"{await queue.retry_dead(time.time())} dead job(s) are due now")
            return 0
        _print_jobs(await queue.list(args.state, args.limit), await queue.counts())
        return 0
    finally:
        await store.close()


def _print_jobs(rows: list[dict[str, Any]], counts: dict[str, int]) -> None:
    print("  ".join(f"{state} {counts.get(state, 0)}" for state in STATES))
    if not rows:
        return
    print(f"{'id':>6}  {'state':<8}{'kind':<24}{'tries':>5}  {'call':<36}{'run after':<21}error")
    for row in rows:
        run_after = row["run_after"].strftime("%Y-%m-%d %H:%M:%S")
        error = (row["last_error"] or "").splitlines()[0][:80] if row["last_error"] else ""
        print(f"{row['id']:>6}  {row['state']:<8}{row['kind']:<24}{row['attempts']:>5}  "
              f"{row['call_sid']:<36}{run_after:<21}{error}")
