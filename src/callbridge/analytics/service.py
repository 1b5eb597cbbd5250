"""A worker wired to the settings: the model client, the webhook client, the queue, the runner.

Owns building and closing the clients a worker needs, for `callbridge worker` and for the
in-process worker of `callbridge serve --with-worker`, and the one start-up check that belongs to
analytics: the model needs `OPENAI_API_KEY` when `CALLBRIDGE_ANALYSIS_URL` is OpenAI's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
from openai import AsyncOpenAI

from callbridge.analytics.analyzer import Analyzer
from callbridge.analytics.delivery import WebhookSender
from callbridge.analytics.handlers import JobRunner
from callbridge.analytics.worker import Worker
from callbridge.config import Settings
from callbridge.errors import ConfigError
from callbridge.store.jobs import JobQueue, RetryPolicy
from callbridge.store.repository import CallStore

MODEL_TIMEOUT_S = 120.0

log = logging.getLogger("callbridge.analytics")


def check_settings(settings: Settings) -> None:
    """Raise a one-line ConfigError if the worker cannot do its job with `settings`."""
    if urlsplit(settings.analysis_url).hostname == "api.openai.com" and not (
            settings.openai_api_key):
        raise ConfigError("OPENAI_API_KEY is not set: the analytics worker needs it, or point "
                          "CALLBRIDGE_ANALYSIS_URL at another Chat Completions server")


@contextlib.asynccontextmanager
async def analytics_worker(settings: Settings, store: CallStore, *, name: str,
                           concurrency: int = 1, poll_s: float = 1.0,
                           retry: RetryPolicy | None = None,
                           lease_s: float = 60.0) -> AsyncIterator[Worker]:
    """A worker over `store`'s database; its clients are closed when the block exits."""
    check_settings(settings)
    async with contextlib.AsyncExitStack() as stack:
        model = AsyncOpenAI(api_key=settings.openai_api_key or "unused",
                            base_url=settings.analysis_url, max_retries=0,
                            timeout=MODEL_TIMEOUT_S)
        stack.push_async_callback(model.close)
        http = await stack.enter_async_context(httpx.AsyncClient(trust_env=False))
        runner = JobRunner(store, settings.directory,
                           Analyzer(model, settings.analysis_model), WebhookSender(http))
        queue = JobQueue(store.engine, lease_s=lease_s,
                         retry=retry or RetryPolicy(attempts=settings.job_attempts))
        yield Worker(queue, runner, name=name, concurrency=concurrency, poll_s=poll_s)


class BackgroundWorker:
    """A worker task in the server's own event loop (`callbridge serve --with-worker`)."""

    def __init__(self, settings: Settings, store: CallStore, *, name: str) -> None:
        self.settings = settings
        self.store = store
        self.name = name
        self.worker: Worker | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stack = contextlib.AsyncExitStack()

    async def start(self) -> None:
        self.worker = await self._stack.enter_async_context(
            analytics_worker(self.settings, self.store, name=self.name))
        self._task = asyncio.create_task(self.worker.run(self._stop), name="analytics-worker")

    async def stop(self, within: float = 10.0) -> None:
        """Let running jobs finish (for up to `within` seconds; a job cut short is re-run later
        by any worker, when its lease runs out), then close the clients."""
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, within)
            except TimeoutError:
                log.warning("analytics jobs still running after %.0f s were cut short", within)
        await self._stack.aclose()
