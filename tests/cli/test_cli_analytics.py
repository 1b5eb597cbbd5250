"""`callbridge worker` and `callbridge jobs`, as a user runs them, on a SQLite record."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from callbridge.cli import main
from callbridge.store.jobs import JobQueue, RetryPolicy
from callbridge.store.migrate import upgrade_async
from callbridge.store.outcomes import Failed
from callbridge.store.repository import CallStore
from callbridge.testing.fake_openai_http import FakeOpenAIHTTP
from tests.analytics.conftest import a_call


async def cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run `callbridge …` without blocking the loop the fakes run in."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("CALLBRIDGE_", "TWILIO_", "OPENAI_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callbridge", "--log-level", "warning", *args,
        env={**base, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def a_record_with_calls(tmp_path: Path, count: int) -> str:
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    await upgrade_async(url)
    store = CallStore(url)
    for n in range(count):
        await store.apply(a_call(f"CA{n}", at=time.time() - 60))
    await store.close()
    return url


async def test_worker_once_runs_every_due_job_and_exits(tmp_path: Path) -> None:
    """`worker --once` analyses the ended calls, sends what there is to send, and stops."""
    url = await a_record_with_calls(tmp_path, 2)
    async with FakeOpenAIHTTP() as model:
        code, out, err = await cli("worker", "--once", env={
            "DATABASE_URL": url, "CALLBRIDGE_ANALYSIS_URL": model.url})
    assert (code, out.strip(), err) == (0, "ran 6 job(s)", "")
    assert len(model.requests) == 2
    store = CallStore(url)
    call = await store.get_call("CA1")
    await store.close()
    assert call is not None
    assert call["analysis"]["summary"] == "example"


async def test_the_worker_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """A running worker takes SIGTERM as "finish what you are doing and exit 0"."""
    url = await a_record_with_calls(tmp_path, 1)
    async with FakeOpenAIHTTP() as model:
        base = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callbridge", "worker", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**base, "DATABASE_URL": url, "CALLBRIDGE_ANALYSIS_URL": model.url})
        await model.wait_for_requests(1, within=30)
        process.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    assert b"SIGTERM or Ctrl-C stops after the running jobs" in out


def test_jobs_lists_by_state_and_retries_dead_ones(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts, the dead with their errors, `--retry ID` and `--retry-dead`."""
    url = asyncio.run(a_record_with_calls(tmp_path, 2))
    for name in [n for n in os.environ if n.startswith(("CALLBRIDGE_", "OPENAI_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", url)

    def jobs(*args: str) -> tuple[int, str, str]:
        code = main(["--log-level", "warning", "jobs", *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, _ = jobs()
    assert code == 0
    assert out.splitlines()[0] == "pending 4  running 0  done 0  dead 0"
    asyncio.run(_bury_all(url))
    code, out, _ = jobs("--state", "dead")
    lines = out.splitlines()
    assert lines[0] == "pending 0  running 0  done 0  dead 4"
    assert len(lines) == 6
    assert lines[2].split()[1:4] == ["dead", "analyze", "1"]
    assert lines[2].endswith("HTTP 500")
    dead_id = lines[2].split()[0]
    assert jobs("--retry", dead_id)[:2] == (0, f"job {dead_id} is due now\n")
    assert jobs("--retry-dead")[1] == "3 dead job(s) are due now\n"
    assert jobs("--retry", "999")[::2] == (
        2, "callbridge: job 999 is not dead or waiting (see callbridge jobs)\n")


async def _bury_all(url: str) -> None:
    """Fail every job once, with a queue that allows one attempt."""
    store = CallStore(url)
    queue = JobQueue(store.engine, retry=RetryPolicy(attempts=1))
    while (job := await queue.claim("t", time.time())) is not None:
        await queue.finish(job, Failed("the analysis request failed: HTTP 500"), time.time())
    await store.close()
