"""What a post-call job produced, as plain values, and the `analyses` and `webhook_deliveries`
rows they become.

A job's runner returns an `Outcome` — `Done` or `Failed` — and writes nothing itself; the job
queue (`store.jobs`) writes the outcome inside the transaction that finishes the job, after
checking that the claim is still this worker's. So an analysis, a delivery attempt and the jobs a
job enqueues exist exactly when the job's new state does. Each write is idempotent by natural key:
an analysis per CallSid (a re-run replaces it). Owns every statement on those two tables; the
follow-up jobs a `Done` names are written by `store.jobs`, which owns the `jobs` table.
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
