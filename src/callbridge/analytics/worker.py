"""The worker loop: claim a due job, run it, write its outcome — N at a time, until told to stop.

Owns concurrency, polling, keeping a claim's lease alive while its job runs, and stopping
gracefully: once `stop` is set no job is claimed, and jobs already running finish and are written.
A job's runner that raises is a failed attempt (recorded in `last_error`, retried, then dead),
never a dead worker. A database that does not answer makes the loop wait a poll and try again; a
job it could not finish is claimed again when its lease runs out. Reads the wall clock (leases are
compared across processes) and makes the claim tokens; everything else is the queue's and the
runner's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from callbridge.store.jobs import Job, JobQueue, JobState
from callbridge.store.outcomes import Failed, Outcome
from callbridge.store.writer import DB_ERRORS

log = logging.getLogger("callbridge.analytics")

Runner = Callable[[Job, float], Awaitable[Outcome]]


@dataclass
class WorkerStats:
    claimed: int = 0
    done: int = 0
    retrying: int = 0
    dead: int = 0
    lost: int = 0  # finished after another worker had taken the job over: discarded


class Worker:
    """Runs jobs from `queue` with `runner`, `concurrency` at a time."""

    def __init__(self, queue: JobQueue, runner: Runner, *, name: str = "worker",
                 concurrency: int = 1, poll_s: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.queue = queue
        self.runner = runner
        self.name = name
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.clock = clock
        self.stats = WorkerStats()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; then let the running jobs finish and return."""
        await asyncio.gather(*(self._loop(stop, until_idle=False)
                               for _ in range(self.concurrency)))

    async def run_until_idle(self) -> int:
        """Work until no job is due (`callbridge worker --once`); returns how many ran."""
        counts = await asyncio.gather(*(self._loop(asyncio.Event(), until_idle=True)
                                        for _ in range(self.concurrency)))
        return sum(counts)

    async def _loop(self, stop: asyncio.Event, *, until_idle: bool) -> int:
        ran = 0
        while not stop.is_set():
            try:
                worked = await self.step()
            except DB_ERRORS as exc:
                log.warning("job queue unavailable (%s); retrying in %.1f s",
                            str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__,
                            self.poll_s)
                worked = False
                if until_idle:
                    return ran
            if worked:
                ran += 1
                continue
            if until_idle:
                return ran
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_s)
        return ran

    async def step(self) -> bool:
        """Claim and run one job; False when none is due."""
        job = await self.queue.claim(f"{self.name}/{uuid.uuid4().hex[:12]}", self.clock())
        if job is None:
            return False
        self.stats.claimed += 1
        keeper = asyncio.create_task(self._keep_lease(job), name=f"lease-{job.id}")
        try:
            outcome = await self._run(job)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        state = await self.queue.finish(job, outcome, self.clock())
        self._count(job, outcome, state)
        return True

    async def _run(self, job: Job) -> Outcome:
        try:
            return await self.runner(job, self.clock())
        except Exception as exc:  # a bug or an unexpected failure: this attempt failed, recorded
            log.exception("job %d (%s, %s) raised", job.id, job.kind, job.call_sid)
            return Failed(f"{type(exc).__name__}: {exc}"[:500])

    async def _keep_lease(self, job: Job) -> None:
        while True:
            await asyncio.sleep(self.queue.lease_s / 3)
            try:
                if not await self.queue.extend(job, self.clock()):
                    return  # taken over; finishing will be refused
            except DB_ERRORS:
                continue

    def _count(self, job: Job, outcome: Outcome, state: JobState | None) -> None:
        if state is None:
            self.stats.lost += 1
            log.warning("job %d (%s, %s) was taken over after its lease expired; its outcome "
                        "was discarded", job.id, job.kind, job.call_sid)
        elif state == JobState.DONE:
            self.stats.done += 1
        elif state == JobState.PENDING:
            self.stats.retrying += 1
            log.info("job %d (%s, %s) attempt %d failed, will retry: %s", job.id, job.kind,
                     job.call_sid, job.attempts, _error(outcome))
        else:
            self.stats.dead += 1
            log.error("job %d (%s, %s) is dead after %d attempts: %s", job.id, job.kind,
                      job.call_sid, job.attempts, _error(outcome))


def _error(outcome: Outcome) -> str:
    return outcome.error if isinstance(outcome, Failed) else ""
