"""The routing benchmark (`python -m benchmarks.routing`) in a tiny run, so it does not rot."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from tests.databases import postgres_available

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


async def test_the_routing_benchmark_prints_its_four_rows() -> None:
    """Three actions and one callback per row: the table has p50 and p99 for each."""
    reason = await postgres_available()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.routing", "--actions", "3", "--callbacks", "1",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()[-2000:]
    rows = re.findall(r"^\| (.+?) +\| +(\d+) \| +([\d.]+) \| +([\d.]+) \|$", out.decode(),
                      re.MULTILINE)
    assert [name for name, *_ in rows] == [
        "API context on the owner (no routing)", "API context on the other instance (routed)",
        "completed callback on the owner", "completed callback on the other (routed)"]
