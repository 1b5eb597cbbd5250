"""The fault suite's bookkeeping: every test's injections go into one results file, and no test
may leave a task behind.

The results are written as JSON to pytest's temporary directory (`reliability.json`), also to
`$CALLBRIDGE_RELIABILITY_JSON` when set, and with `CALLBRIDGE_WRITE_RELIABILITY=1` the table in
docs/reliability.md is rewritten from them (`benchmarks/reliability_table.py` does both).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from benchmarks.reliability_table import commit, machine, update_doc

from tests.faults.rig import Injection, Scenario, inject


class ReliabilityLog:
    """Per fault: what was injected, how, and what each injection did."""

    def __init__(self) -> None:
        self.started = time.time()
        self.faults: dict[str, dict[str, Any]] = {}

    def record(self, key: str, fault: str, how: str, injections: list[Injection], *,
               bug: str | None = None) -> None:
        """Add the injections of one fault (a test may add to a fault another test started);
        `bug` names the known bug (an xfail test) the results show."""
        entry = self.faults.setdefault(key, {"key": key, "fault": fault, "how": how,
                                             "bug": bug, "injections": []})
        entry["injections"] += [dataclasses.asdict(i) for i in injections]

    async def measure(self, key: str, fault: str, how: str, tmp_path: Path, scenario: Scenario,
                      *, n: int) -> list[Injection]:
        """Inject the fault `n` times at once (`rig.inject`) and record what each did."""
        results = await inject(n, tmp_path, scenario)
        self.record(key, fault, how, results)
        return results

    def as_json(self) -> dict[str, Any]:
        """The results with when, on what and at which commit the suite ran."""
        return {"started": self.started, "finished": time.time(), "machine": machine(),
                "commit": commit(), "faults": list(self.faults.values())}


@pytest.fixture(scope="session")
def reliability(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReliabilityLog]:
    log = ReliabilityLog()
    yield log
    results = log.as_json()
    text = json.dumps(results, indent=2)
    (tmp_path_factory.getbasetemp() / "reliability.json").write_text(text)
    if target := os.environ.get("CALLBRIDGE_RELIABILITY_JSON"):
        Path(target).write_text(text)
    if os.environ.get("CALLBRIDGE_WRITE_RELIABILITY") == "1":
        update_doc(results, command="CALLBRIDGE_WRITE_RELIABILITY=1 python -m pytest tests/faults")


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Every task a test started (servers, calls, sockets, proxies) is gone after it."""
    before = {task for task in asyncio.all_tasks() if not task.done()}
    yield
    for _ in range(150):
        left = [t for t in asyncio.all_tasks() if not t.done() and t not in before
                and t is not asyncio.current_task()]
        if not left:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"{len(left)} task(s) leaked: {sorted(t.get_name() for t in left)}")
