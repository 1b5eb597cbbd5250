"""What a job produced, as plain values, and the rows they become.

A job's runner returns an `Outcome` — `Done` or `Failed` — and writes nothing itself; the job
queue writes the outcome inside the transaction that finishes the job, after checking that the
claim is still this worker's (see `jobs`). So an analysis, a delivery attempt and the jobs a job
enqueues exist exactly when the job's new state does. Each write is idempotent by natural key:
an analysis per CallSid (a re-run replaces it), a follow-up job per (CallSid, kind).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from callbridge.store import schema


@dataclass(frozen=True, slots=True)
class Analysis:
    """The model's validated reading of one call."""

    model: str
    summary: str
    sentiment: float  # -1.0 … 1.0
    intent: str
    lead_score: int  # 0 … 100
    action_items: tuple[str, ...]
    custom: dict[str, Any] = field(default_factory=dict)
    note: str | None = None  # e.g. that the transcript was shortened


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One POST of a webhook event: what the receiver answered, or why there was no answer."""

    event: str
    url: str
    status_code: int | None
    error: str | None
    delivered: bool


@dataclass(frozen=True, slots=True)
class Done:
    """The job succeeded. `enqueue` names follow-up job kinds for the same call."""

    analysis: Analysis | None = None
    delivery: DeliveryAttempt | None = None
    enqueue: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Failed:
    """This attempt failed; the queue retries the job later or gives up on it."""

    error: str
    delivery: DeliveryAttempt | None = None


Outcome = Done | Failed


def utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


async def write_outcome(connection: AsyncConnection, call_sid: str, attempt: int,
                        outcome: Outcome, now: float) -> None:
    """Write what `outcome` carries for `call_sid`, in the caller's transaction."""
    postgres = connection.dialect.name == "postgresql"
    if outcome.delivery is not None:
        await connection.execute(insert(schema.webhook_deliveries).values(
            _delivery_row(call_sid, attempt, outcome.delivery, now)))
    if isinstance(outcome, Failed):
        return
    if outcome.analysis is not None:
        upsert = (pg_insert if postgres else sqlite_insert)(schema.analyses)
        row = _analysis_row(call_sid, outcome.analysis, now)
        await connection.execute(upsert.values(row).on_conflict_do_update(
            index_elements=["call_sid"],
            set_={key: getattr(upsert.excluded, key) for key in row if key != "call_sid"}))
    if outcome.enqueue:
        jobs = (pg_insert if postgres else sqlite_insert)(schema.jobs)
        await connection.execute(jobs.on_conflict_do_nothing(),
                                 job_rows([call_sid], outcome.enqueue, now))


def job_rows(call_sids: list[str], kinds: tuple[str, ...], at: float) -> list[dict[str, Any]]:
    """New, immediately due `jobs` rows: one per call and kind."""
    when = utc(at)
    return [{"call_sid": sid, "kind": kind, "state": "pending", "attempts": 0, "run_after": when,
             "locked_by": None, "locked_until": None, "last_error": None, "created_at": when,
             "updated_at": when}
            for sid in call_sids for kind in kinds]


def _analysis_row(call_sid: str, analysis: Analysis, now: float) -> dict[str, Any]:
    return {"call_sid": call_sid, "model": analysis.model, "summary": analysis.summary,
            "sentiment": analysis.sentiment, "intent": analysis.intent,
            "lead_score": analysis.lead_score, "action_items": list(analysis.action_items),
            "custom": analysis.custom, "note": analysis.note, "created_at": utc(now)}


def _delivery_row(call_sid: str, attempt: int, delivery: DeliveryAttempt,
                  now: float) -> dict[str, Any]:
    return {"call_sid": call_sid, "event": delivery.event, "url": delivery.url,
            "attempt": attempt, "status_code": delivery.status_code, "error": delivery.error,
            "delivered": delivery.delivered, "at": utc(now)}
