"""The queue of post-call jobs in the call record's database: claiming, leases, retries.

Owns every statement on the `jobs` table, including the outbox rows the call record writes in
the transaction that ends a call (`add_outbox`). A job's life, all of it here:

    (outbox) ─► pending ──claim──► running ──finish(Done)──────────────────► done
                   ▲                  │  └───finish(Failed), attempts = max ──► dead
                   └─finish(Failed)───┘        lease expired, attempts = max ──► dead
                     (run_after = now + backoff)       dead ──retry──► pending
    running, lease expired ──claim──► running (another worker, attempts + 1)

Claiming is one UPDATE of the row picked by `SELECT … FOR UPDATE SKIP LOCKED` (PostgreSQL: any
number of workers never claim the same job) or, on SQLite, the same statement under SQLite's
single writer lock — SQLite supports one worker process (or the in-process worker of `serve`).
A claim carries a token and a lease; the worker extends the lease while it runs the job. Finishing
is guarded by the token: a worker whose lease expired and whose job was claimed again cannot
finish it, and the outcome it brings is rolled back with that guard — so a job re-run after a
worker died or hung takes effect exactly once. (Only a webhook attempt such a worker made is
still recorded: the POST happened.) Time and tokens come in as arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from callbridge.errors import CallbridgeError
from callbridge.store import schema
from callbridge.store.outcomes import Done, Failed, Outcome, utc, write_outcome

jobs = schema.jobs


class JobKind(StrEnum):
    ANALYZE = "analyze"
    CALL_ENDED = "webhook:call.ended"
    CALL_ANALYZED = "webhook:call.analyzed"


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


# call.ended first: among jobs due at once, the lower id is claimed first
OUTBOX = (JobKind.CALL_ENDED.value, JobKind.ANALYZE.value)
LEASE_EXPIRED = "the worker's lease expired (it died or hung) on the last attempt"


async def add_outbox(connection: AsyncConnection, call_sids: Sequence[str], at: float) -> None:
    """Add the jobs every ended call gets, in the caller's transaction (the one that ends it)."""
    await _add(connection, call_sids, OUTBOX, at)


async def _add(connection: AsyncConnection, call_sids: Sequence[str], kinds: Sequence[str],
               at: float) -> None:
    """New, immediately due jobs: one per call and kind; a (call, kind) that exists is kept."""
    when = utc(at)
    rows = [{"call_sid": sid, "kind": kind, "state": JobState.PENDING.value, "attempts": 0,
             "run_after": when, "locked_by": None, "locked_until": None, "last_error": None,
             "created_at": when, "updated_at": when}
            for sid in call_sids for kind in kinds]
    if not rows:
        return
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    await connection.execute(insert(jobs).on_conflict_do_nothing(), rows)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Give up after `attempts`; wait `base_s` × 2^(attempt − 1), at most `cap_s`, between."""

    attempts: int = 5
    base_s: float = 5.0
    cap_s: float = 600.0

    def delay(self, attempt: int) -> float:
        return float(min(self.cap_s, self.base_s * 2 ** max(attempt - 1, 0)))


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job. `attempts` counts this one; `token` is the claim's."""

    id: int
    call_sid: str
    kind: str
    attempts: int
    token: str
    created_at: float


class LeaseLost(CallbridgeError):
    """The job was claimed again after this worker's lease expired; its outcome is discarded."""


class JobQueue:
    """Jobs in one database (the call record's engine)."""

    def __init__(self, engine: AsyncEngine, *, lease_s: float = 60.0,
                 retry: RetryPolicy | None = None) -> None:
        self.engine = engine
        self.lease_s = lease_s
        self.retry = retry or RetryPolicy()

    async def claim(self, token: str, now: float) -> Job | None:
        """Claim the job due longest ago for `token`, or None when nothing is due. A job whose
        lease expired on its last attempt is buried (dead) on the way."""
        while True:
            async with self.engine.begin() as connection:
                row = (await connection.execute(self._claim_statement(token, now))).first()
            if row is None:
                return None
            if row.state == JobState.RUNNING:
                return Job(row.id, row.call_sid, row.kind, row.attempts, token,
                           _timestamp(row.created_at))

    def _claim_statement(self, token: str, now: float) -> Any:
        candidate = jobs.alias("candidate")  # never correlated with the updated row
        pick = (select(candidate.c.id).where(_due(candidate, now))
                .order_by(candidate.c.run_after, candidate.c.id).limit(1)
                .with_for_update(skip_locked=True).scalar_subquery())
        due = _due(jobs, now)  # checked again on the row itself, after any wait for its lock
        spent = jobs.c.attempts >= self.retry.attempts
        return (update(jobs).where(jobs.c.id == pick, due).values(
            state=case((spent, JobState.DEAD.value), else_=JobState.RUNNING.value),
            attempts=case((spent, jobs.c.attempts), else_=jobs.c.attempts + 1),
            last_error=case((spent, literal(LEASE_EXPIRED)), else_=jobs.c.last_error),
            locked_by=case((spent, None), else_=literal(token)),
            locked_until=case((spent, None), else_=literal(utc(now + self.lease_s))),
            updated_at=utc(now),
        ).returning(jobs.c.id, jobs.c.call_sid, jobs.c.kind, jobs.c.state, jobs.c.attempts,
                    jobs.c.created_at))

    async def extend(self, job: Job, now: float) -> bool:
        """Push the lease `lease_s` past `now`; False if the claim is no longer this one."""
        async with self.engine.begin() as connection:
            result = await connection.execute(update(jobs).where(*_held(job)).values(
                locked_until=utc(now + self.lease_s), updated_at=utc(now)))
        return result.rowcount == 1

    async def finish(self, job: Job, outcome: Outcome, now: float) -> JobState | None:
        """Write the outcome and the job's next state in one transaction; returns that state,
        or None (nothing written) when the claim was lost."""
        values: dict[str, Any]
        if isinstance(outcome, Done):
            state, values = JobState.DONE, {"last_error": None}
        elif job.attempts >= self.retry.attempts:
            state, values = JobState.DEAD, {"last_error": outcome.error}
        else:
            state, values = JobState.PENDING, {
                "last_error": outcome.error,
                "run_after": utc(now + self.retry.delay(job.attempts))}
        try:
            async with self.engine.begin() as connection:
                result = await connection.execute(update(jobs).where(*_held(job)).values(
                    state=state.value, locked_by=None, locked_until=None, updated_at=utc(now),
                    **values))
                if result.rowcount != 1:
                    raise LeaseLost(f"job {job.id} was claimed again")  # rolls back
                await write_outcome(connection, job.call_sid, job.attempts, outcome, now)
                if isinstance(outcome, Done):
                    await _add(connection, [job.call_sid], outcome.enqueue, now)
        except LeaseLost:
            if outcome.delivery is not None:  # the POST happened all the same: keep its record
                async with self.engine.begin() as connection:
                    await write_outcome(connection, job.call_sid, job.attempts,
                                        Failed("", outcome.delivery), now)
            return None
        return state

    # ---------------------------------------------------------------- operators (`callbridge jobs`)

    async def list(self, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Jobs, newest first, optionally of one state."""
        statement = select(jobs).order_by(jobs.c.id.desc()).limit(limit)
        if state:
            statement = statement.where(jobs.c.state == state)
        async with self.engine.connect() as connection:
            return [dict(row._mapping) for row in await connection.execute(statement)]

    async def counts(self) -> dict[str, int]:
        """How many jobs are in each state."""
        statement = select(jobs.c.state, func.count()).group_by(jobs.c.state)
        async with self.engine.connect() as connection:
            return {str(state): int(n) for state, n in await connection.execute(statement)}

    async def retry_job(self, job_id: int, now: float) -> bool:
        """Make a dead (or backing-off) job due now with a fresh set of attempts."""
        return await self._requeue(jobs.c.id == job_id, now) == 1

    async def retry_dead(self, now: float) -> int:
        """Make every dead job due now with a fresh set of attempts; returns how many."""
        return await self._requeue(jobs.c.state == JobState.DEAD.value, now)

    async def _requeue(self, condition: Any, now: float) -> int:
        waiting = jobs.c.state.in_([JobState.DEAD.value, JobState.PENDING.value])
        async with self.engine.begin() as connection:
            result = await connection.execute(update(jobs).where(condition, waiting).values(
                state=JobState.PENDING.value, attempts=0, run_after=utc(now), updated_at=utc(now)))
        return int(result.rowcount)


def _due(table: Any, now: float) -> Any:
    return (((table.c.state == JobState.PENDING.value) & (table.c.run_after <= utc(now)))
            | ((table.c.state == JobState.RUNNING.value) & (table.c.locked_until < utc(now))))


def _held(job: Job) -> tuple[Any, ...]:
    return (jobs.c.id == job.id, jobs.c.locked_by == job.token,
            jobs.c.state == JobState.RUNNING.value)


def _timestamp(value: datetime) -> float:
    if value.tzinfo is None:  # SQLite keeps no zone; everything is stored in UTC
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
