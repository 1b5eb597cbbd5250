"""The call record's SQL: idempotent writes, order-independent status, recovery, queries."""

from __future__ import annotations

from datetime import UTC, datetime

from callbridge.store.records import (
    CallAnswered,
    CallEnded,
    CallOpened,
    EventRecorded,
    StatusChanged,
    ToolRecorded,
    TurnRecorded,
    UsageRecorded,
)
from callbridge.store.repository import CallFilter, CallStore

T0 = 1_790_000_000.0
SID = "CA" + "a" * 32
USAGE = {"total_tokens": 130, "input_tokens": 100, "output_tokens": 30,
         "input_token_details": {"text_tokens": 40, "audio_tokens": 60, "cached_tokens": 20},
         "output_token_details": {"text_tokens": 10, "audio_tokens": 20}}


def opened(sid: str = SID, at: float = T0, instance: str = "pod-a", caller: str = "+15550001111",
           ) -> CallOpened:
    return CallOpened(sid, "inbound", caller, "+15550002222", "default", "gpt-realtime-2.1",
                      "marin", instance, at)


def a_whole_call(sid: str = SID) -> list[object]:
    return [
        opened(sid),
        CallAnswered(sid, "MZ" + "b" * 32, T0 + 1),
        TurnRecorded(sid, "item_a", "agent", "Hello there.", "Hello there.", False, 1100, 2500),
        TurnRecorded(sid, "item_u", "caller", "Hi.", "Hi.", False, 3000, 3600),
        ToolRecorded(sid, "call_1", "lookup", '{"id": 1}', '{"ok": true}', None, 120, T0 + 4),
        EventRecorded(sid, 1, "barge_in", T0 + 5, {"item_id": "item_u"}),
        UsageRecorded(sid, "resp_1", USAGE, 0.0021),
        CallEnded(sid, T0 + 9, "caller hung up", 8.0, 0.0021),
    ]


async def test_a_whole_call_reads_back_exactly(store: CallStore) -> None:
    """Every record lands in its table and the detail view returns it as written."""
    await store.apply(a_whole_call())  # type: ignore[arg-type]
    call = await store.get_call(SID)
    assert call is not None
    assert {k: call[k] for k in ("call_sid", "direction", "from_number", "to_number", "agent",
                                 "status", "model", "voice", "instance", "end_reason",
                                 "duration_s", "cost_usd", "stream_sid")} == {
        "call_sid": SID, "direction": "inbound", "from_number": "+15550001111",
        "to_number": "+15550002222", "agent": "default", "status": "completed",
        "model": "gpt-realtime-2.1", "voice": "marin", "instance": "pod-a",
        "end_reason": "caller hung up", "duration_s": 8.0, "cost_usd": 0.0021,
        "stream_sid": "MZ" + "b" * 32,
    }
    assert call["created_at"] == datetime.fromtimestamp(T0, UTC).isoformat()
    assert call["answered_at"] == datetime.fromtimestamp(T0 + 1, UTC).isoformat()
    assert call["transcript"] == [
        {"item_id": "item_a", "role": "agent", "text": "Hello there.", "heard": "Hello there.",
         "interrupted": False, "started_ms": 1100, "ended_ms": 2500},
        {"item_id": "item_u", "role": "caller", "text": "Hi.", "heard": "Hi.",
         "interrupted": False, "started_ms": 3000, "ended_ms": 3600},
    ]
    [tool] = call["tool_calls"]
    assert (tool["name"], tool["arguments"], tool["result"], tool["duration_ms"]) == (
        "lookup", '{"id": 1}', '{"ok": true}', 120)
    assert [(e["seq"], e["kind"], e["detail"]) for e in call["events"]] == [
        (1, "barge_in", {"item_id": "item_u"})]
    assert call["usage"]["totals"] == {
        "input_tokens": 100, "output_tokens": 30, "input_text_tokens": 40,
        "input_audio_tokens": 60, "input_cached_tokens": 20, "output_text_tokens": 10,
        "output_audio_tokens": 20, "cost_usd": 0.0021}


async def test_applying_the_same_records_twice_makes_no_duplicates(store: CallStore) -> None:
    """Retried batches and replayed journals are harmless."""
    records = a_whole_call()
    await store.apply(records)  # type: ignore[arg-type]
    await store.apply(records)  # type: ignore[arg-type]
    await store.apply([opened()])
    call = await store.get_call(SID)
    assert call is not None
    assert (len(call["transcript"]), len(call["tool_calls"]), len(call["events"]),
            len(call["usage"]["responses"])) == (2, 1, 1, 1)
    assert len(await store.list_calls(CallFilter())) == 1


async def test_status_callbacks_never_move_a_call_backwards(store: CallStore) -> None:
    """A late `ringing` after `completed` changes nothing; `in-progress` sets answered_at."""
    await store.apply([opened()])
    await store.apply([StatusChanged(SID, "completed", T0 + 30, 27.0)])
    await store.apply([StatusChanged(SID, "ringing", T0 + 1)])
    await store.apply([StatusChanged(SID, "in-progress", T0 + 2)])
    call = await store.get_call(SID)
    assert call is not None
    assert (call["status"], call["duration_s"], call["end_reason"]) == ("completed", 27.0,
                                                                        "completed")
    assert call["ended_at"] == datetime.fromtimestamp(T0 + 30, UTC).isoformat()


async def test_a_status_callback_before_the_call_record_creates_it(store: CallStore) -> None:
    """Callbacks can outrun the webhook's record; the later CallOpened fills the row in."""
    await store.apply([StatusChanged(SID, "in-progress", T0 + 2, None, "outbound-api",
                                     "+15550002222", "+15550001111")])
    await store.apply([opened()])
    call = await store.get_call(SID)
    assert call is not None
    assert (call["status"], call["agent"], call["model"]) == ("in-progress", "default",
                                                              "gpt-realtime-2.1")


async def test_recovery_closes_our_own_and_stale_instances_calls_only(store: CallStore) -> None:
    """After a crash, open calls of this instance and of silent instances become interrupted."""
    await store.apply([opened("CA1", instance="me"), opened("CA2", instance="gone"),
                       opened("CA3", instance="alive"), opened("CA4", instance="me"),
                       CallEnded("CA4", T0 + 5, "caller hung up", 4.0, 0.0)])
    await store.heartbeat("gone", T0 - 600)
    await store.heartbeat("alive", T0 + 100)
    recovered = await store.recover("me", T0 + 120)
    assert sorted(recovered) == ["CA1", "CA2"]
    by_sid = {c["call_sid"]: c for c in await store.list_calls(CallFilter())}
    assert by_sid["CA1"]["end_reason"] == "interrupted"
    assert by_sid["CA2"]["end_reason"] == "interrupted"
    assert by_sid["CA3"]["ended_at"] is None
    assert by_sid["CA4"]["end_reason"] == "caller hung up"


async def test_calls_are_listed_newest_first_with_filters_and_pages(store: CallStore) -> None:
    """since, status and number filter; `before_id` pages through the rest."""
    await store.apply([opened(f"CA{i}", at=T0 + i, caller=f"+1555000{i:04d}") for i in range(5)])
    await store.apply([StatusChanged("CA3", "completed", T0 + 50)])
    page = await store.list_calls(CallFilter(limit=2))
    assert [c["call_sid"] for c in page] == ["CA4", "CA3"]
    rest = await store.list_calls(CallFilter(limit=10, before_id=page[-1]["id"]))
    assert [c["call_sid"] for c in rest] == ["CA2", "CA1", "CA0"]
    since = datetime.fromtimestamp(T0 + 3, UTC)
    assert [c["call_sid"] for c in await store.list_calls(CallFilter(since=since))] == [
        "CA4", "CA3"]
    assert [c["call_sid"] for c in await store.list_calls(CallFilter(status="completed"))] == [
        "CA3"]
    assert [c["call_sid"] for c in await store.list_calls(CallFilter(number="+15550000002"))] == [
        "CA2"]
    assert [c["call_sid"] for c in await store.list_calls(CallFilter(number="+15550002222"))] == [
        "CA4", "CA3", "CA2", "CA1", "CA0"]


async def test_an_unknown_call_reads_as_none(store: CallStore) -> None:
    """get_call of a CallSid never seen is None, not an error."""
    assert await store.get_call("CA_nope") is None
