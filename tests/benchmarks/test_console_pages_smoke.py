"""A small run of the console benchmark, so it does not rot (the figures mean nothing here)."""

from __future__ import annotations

import os
import random

import pytest
from benchmarks.console_pages import requests, run, table

from tests.databases import PG_SERVER, postgres_available


async def test_the_console_benchmark_measures_every_request_on_a_small_record() -> None:
    """50 calls, 4 turns each, one round: every request answered 200 and timed in the app."""
    reason = await postgres_available()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
    _filled, clock, wall = await run(PG_SERVER, calls=50, turns_per_call=4, repeat=1)
    labels = [label for label, _ in requests(50, random.Random(0))]
    assert list(clock.times) == labels
    assert all(len(clock.times[label]) == 1 and len(wall[label]) == 1 for label in labels)
    assert len(table(clock, wall)) == len(labels) + 1
