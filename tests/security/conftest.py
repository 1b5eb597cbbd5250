"""What an attack may leave behind, counted in this process: open file descriptors (sockets,
files) and asyncio tasks. Every security test takes a baseline once its server is warm and
checks that each refused attack gives everything back."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import httpx

from tests.e2e.harness import Harness


@dataclass(frozen=True)
class Resources:
    fds: int
    tasks: int


def resources() -> Resources:
    """Open file descriptors of this process and its unfinished asyncio tasks, now."""
    return Resources(len(os.listdir("/proc/self/fd")),
                     sum(1 for task in asyncio.all_tasks() if not task.done()))


async def settled_at(baseline: Resources, within: float = 5.0) -> Resources:
    """Wait until fds and tasks are back to `baseline` (or `within` s pass); the count then."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    now = resources()
    while (now.fds > baseline.fds or now.tasks > baseline.tasks) and loop.time() < deadline:
        await asyncio.sleep(0.05)
        now = resources()
    return now


async def warm_baseline(h: Harness) -> Resources:
    """The resource count once the server has answered a request (pools and lazy state made)."""
    async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
        assert (await client.get("/healthz")).status_code == 200
    await asyncio.sleep(0.1)
    return resources()


async def assert_nothing_leaked(h: Harness, baseline: Resources) -> None:
    """The process is healthy and holds no more sockets, files or tasks than at `baseline`."""
    async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
        assert (await client.get("/healthz")).status_code == 200
    after = await settled_at(baseline)
    assert after.fds <= baseline.fds, f"file descriptors: {baseline.fds} before, {after.fds} after"
    assert after.tasks <= baseline.tasks, f"tasks: {baseline.tasks} before, {after.tasks} after"
    assert len(h.state.calls) == 0, "no call is left open"
