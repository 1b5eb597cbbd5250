"""Analytics tests run against SQLite and a real PostgreSQL, with a fake model and a local
webhook receiver over loopback; time is a clock the test moves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable

import httpx
import pytest
from openai import AsyncOpenAI

from callbridge.agents import AgentDirectory, load_directory
from callbridge.analytics.analyzer import Analyzer
from callbridge.analytics.delivery import WebhookSender
from callbridge.analytics.handlers import JobRunner
from callbridge.analytics.worker import Runner, Worker
from callbridge.store.jobs import JobQueue, RetryPolicy
from callbridge.store.records import CallEnded, CallOpened, Record, TurnRecorded
from callbridge.store.repository import CallStore
from callbridge.testing.fake_openai_http import FakeOpenAIHTTP

T0 = 1_790_000_000.0
SECRET = "whsec_test"
MODEL = "gpt-test-mini"
FIELDS = {"budget": {"type": "number", "description": "The caller's budget in dollars."},
          "callback": {"type": "boolean", "description": "Whether the caller wants a call."}}


class Clock:
    """Wall time for workers, moved by the test."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def model() -> AsyncIterator[FakeOpenAIHTTP]:
    async with FakeOpenAIHTTP(api_key="sk-test") as fake:
        yield fake


def a_call(sid: str, *, agent: str = "default", at: float = T0) -> list[Record]:
    """A short finished call: opened, two turns, ended."""
    return [
        CallOpened(sid, "inbound", "+15550001111", "+15550002222", agent, "gpt-realtime-2.1",
                   "marin", "pod-a", at),
        TurnRecorded(sid, "item_1", "agent", "Ada's Bakery, how can I help?",
                     "Ada's Bakery, how can I help?", False, 0, 2000),
        TurnRecorded(sid, "item_2", "caller", "I'd like a wedding cake for 200 guests.",
                     "I'd like a wedding cake for 200 guests.", False, 2500, 5000),
        CallEnded(sid, at + 30, "caller hung up", 30.0, 0.01),
    ]


def directory(webhook_url: str | None = None, fields: dict[str, object] | None = None,
              ) -> AgentDirectory:
    table: dict[str, object] = {"analysis_fields": FIELDS if fields is None else fields}
    if webhook_url is not None:
        table.update(webhook_url=webhook_url, webhook_secret=SECRET)
    return load_directory(table, {})


@contextlib.asynccontextmanager
async def job_runner(store: CallStore, model: FakeOpenAIHTTP, agents: AgentDirectory,
                     budget_chars: int = 48_000) -> AsyncIterator[JobRunner]:
    """The real runner: the fake model, a real HTTP client for webhooks."""
    client = AsyncOpenAI(api_key="sk-test", base_url=model.url, max_retries=0)
    async with client, httpx.AsyncClient(trust_env=False) as http:
        yield JobRunner(store, agents, Analyzer(client, MODEL, budget_chars),
                        WebhookSender(http))


def worker(store: CallStore, runner: Runner, clock: Clock, *, name: str = "w1",
           attempts: int = 5, lease_s: float = 60.0, concurrency: int = 1) -> Worker:
    queue = JobQueue(store.engine, lease_s=lease_s,
                     retry=RetryPolicy(attempts=attempts, base_s=5.0, cap_s=60.0))
    return Worker(queue, runner, name=name, concurrency=concurrency, poll_s=0.05, clock=clock)


async def job_states(store: CallStore, sid: str) -> dict[str, tuple[str, int]]:
    """(state, attempts) by job kind for one call."""
    rows = await JobQueue(store.engine).list(limit=500)
    return {r["kind"]: (r["state"], r["attempts"]) for r in rows if r["call_sid"] == sid}


def kinds(rows: Iterable[dict[str, object]]) -> list[str]:
    return sorted(str(r["kind"]) for r in rows)
