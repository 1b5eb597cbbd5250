"""The worker end to end: the fake model, the record and a local webhook receiver."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import func, select

from callbridge.store import schema
from callbridge.store.jobs import Job, JobQueue
from callbridge.store.repository import CallStore
from callbridge.testing.fake_openai_http import ChatReply, FakeOpenAIHTTP
from tests.analytics.conftest import (
    MODEL,
    SECRET,
    T0,
    Clock,
    a_call,
    directory,
    job_runner,
    job_states,
    worker,
)
from tests.analytics.receiver import Receiver

SID = "CA" + "3" * 32
ANSWER = {"summary": "The caller wants a wedding cake for 200 guests.", "sentiment": 0.7,
          "intent": "order a wedding cake", "lead_score": 88,
          "action_items": ["Send a quote"], "custom": {"budget": 1200, "callback": True}}
ALL_DONE = {"webhook:call.ended": ("done", 1), "analyze": ("done", 1),
            "webhook:call.analyzed": ("done", 1)}


async def analyses_of(store: CallStore, sid: str) -> int:
    async with store.engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(schema.analyses)
                                         .where(schema.analyses.c.call_sid == sid))
    return int(count or 0)


async def test_a_structured_result_is_stored_with_the_call(store: CallStore,
                                                           model: FakeOpenAIHTTP) -> None:
    """The model's validated answer, custom fields included, is the call's analysis."""
    await store.apply(a_call(SID))
    model.script(ChatReply.json(ANSWER))
    async with job_runner(store, model, directory()) as runner:
        assert await worker(store, runner, Clock(T0 + 31)).run_until_idle() == 3
    call = await store.get_call(SID)
    assert call is not None
    analysis = {k: v for k, v in call["analysis"].items() if k != "created_at"}
    assert analysis == {**ANSWER, "model": MODEL, "note": None}
    assert await job_states(store, SID) == ALL_DONE
    [request] = model.requests
    assert "Caller: I'd like a wedding cake for 200 guests." in request.text
    assert "+15550001111" not in request.text  # phone numbers stay home
    assert model.violations == []


async def test_a_long_transcript_is_cut_in_the_middle_and_the_analysis_says_so(
        store: CallStore, model: FakeOpenAIHTTP) -> None:
    """The model sees the start and the end; the stored analysis carries the note."""
    await store.apply(a_call(SID))
    async with job_runner(store, model, directory(), budget_chars=80) as runner:
        await worker(store, runner, Clock(T0 + 31)).run_until_idle()
    [request] = model.requests
    assert "[0:00] Agent: Ada's Bakery" in request.text
    assert "characters of the middle of the call omitted" in request.text
    assert request.text.endswith("for 200 guests.")
    call = await store.get_call(SID)
    assert call is not None
    assert call["analysis"]["note"].startswith("transcript truncated: ")


async def test_a_bad_answer_is_retried_and_the_next_good_one_stored(
        store: CallStore, model: FakeOpenAIHTTP) -> None:
    """A malformed answer fails one attempt; after the backoff the job runs again."""
    await store.apply(a_call(SID))
    model.script(ChatReply.malformed(), ChatReply.json(ANSWER))
    clock = Clock(T0 + 31)
    async with job_runner(store, model, directory()) as runner:
        one = worker(store, runner, clock)
        assert await one.run_until_idle() == 2
        assert (await job_states(store, SID))["analyze"] == ("pending", 1)
        clock.advance(5)
        assert await one.run_until_idle() == 2
    states = await job_states(store, SID)
    assert states["analyze"] == ("done", 2)
    assert await analyses_of(store, SID) == 1


async def test_answers_that_keep_failing_are_dead_lettered_with_the_last_error(
        store: CallStore, model: FakeOpenAIHTTP) -> None:
    """Malformed JSON, a schema violation, then an HTTP 500: three attempts, then dead."""
    await store.apply(a_call(SID))
    model.script(ChatReply.malformed(), ChatReply.json({**ANSWER, "sentiment": 4.2}),
                 ChatReply.error(500))
    clock = Clock(T0 + 31)
    async with job_runner(store, model, directory()) as runner:
        one = worker(store, runner, clock, attempts=3)
        for _ in range(3):
            await one.run_until_idle()
            clock.advance(100)
        assert await one.run_until_idle() == 0
    [dead] = await one.queue.list(state="dead")
    assert (dead["kind"], dead["attempts"]) == ("analyze", 3)
    assert dead["last_error"].startswith("the analysis request failed: HTTP 500")
    assert len(model.requests) == 3
    call = await store.get_call(SID)
    assert call is not None
    assert call["analysis"] is None
    assert "webhook:call.analyzed" not in await job_states(store, SID)


async def test_a_job_whose_worker_was_killed_is_rerun_once_by_another(
        store: CallStore, model: FakeOpenAIHTTP) -> None:
    """Killed mid-request, the job waits out its lease; the next worker analyses it, once."""
    await store.apply(a_call(SID))
    model.script(ChatReply.json(ANSWER, delay_s=30))  # the doomed worker's request hangs
    clock = Clock(T0 + 31)
    async with job_runner(store, model, directory()) as runner:
        doomed = worker(store, runner, clock, name="doomed")
        task = asyncio.create_task(doomed.run(asyncio.Event()))
        await model.wait_for_requests(1)
        task.cancel()  # like kill -9: no clean-up reaches the database
        with contextlib.suppress(asyncio.CancelledError):
            await task
        heir = worker(store, runner, clock, name="heir")
        assert await heir.run_until_idle() == 0  # the dead worker's lease still holds
        clock.advance(61)
        assert await heir.run_until_idle() == 2
    assert await job_states(store, SID) == {**ALL_DONE, "analyze": ("done", 2)}
    assert await analyses_of(store, SID) == 1
    assert len(model.requests) == 2


async def test_a_worker_slow_past_its_lease_has_its_late_result_thrown_away(
        store: CallStore, model: FakeOpenAIHTTP) -> None:
    """When a hung worker wakes after another took its job over, the heir's analysis stands."""
    await store.apply(a_call(SID))
    model.script(ChatReply.json(ANSWER, delay_s=0.5), ChatReply.json({**ANSWER, "intent": "B"}))
    async with job_runner(store, model, directory()) as runner:
        slow = worker(store, runner, Clock(T0 + 31), name="slow")  # its clock stands still
        assert await slow.step()  # call.ended
        slow_job = asyncio.create_task(slow.step())
        await model.wait_for_requests(1)
        heir = worker(store, runner, Clock(T0 + 200), name="heir")
        assert await heir.step()  # takes the expired claim over and stores its analysis
        assert await slow_job
    assert (slow.stats.lost, heir.stats.done) == (1, 1)
    call = await store.get_call(SID)
    assert call is not None
    assert call["analysis"]["intent"] == "B"
    assert await analyses_of(store, SID) == 1
    assert (await job_states(store, SID))["webhook:call.analyzed"] == ("pending", 0)


async def test_a_receiver_that_was_down_gets_both_events_on_a_later_attempt(
        store: CallStore, model: FakeOpenAIHTTP) -> None:
    """Refused connections and 503s are retried with backoff; every attempt is on the record."""
    await store.apply(a_call(SID))
    model.script(ChatReply.json(ANSWER))
    clock = Clock(T0 + 31)
    receiver = Receiver(SECRET, clock)
    async with job_runner(store, model, directory(receiver.url)) as runner:
        one = worker(store, runner, clock)
        assert await one.run_until_idle() == 3  # nobody listening: both events fail
        async with receiver.listening():
            receiver.fail_next = 2
            clock.advance(5)
            assert await one.run_until_idle() == 2  # 503, 503
            clock.advance(10)
            assert await one.run_until_idle() == 2
    assert [r.event["type"] for r in receiver.delivered()] == ["call.ended", "call.analyzed"]
    call = await store.get_call(SID)
    assert call is not None
    attempts = [(d["event"], d["attempt"], d["status_code"], d["delivered"])
                for d in call["webhook_deliveries"]]
    assert attempts == [
        ("call.ended", 1, None, False), ("call.analyzed", 1, None, False),
        ("call.ended", 2, 503, False), ("call.analyzed", 2, 503, False),
        ("call.ended", 3, 204, True), ("call.analyzed", 3, 204, True)]
    assert call["webhook_deliveries"][0]["error"].startswith("ConnectError")
    ended, analyzed = receiver.delivered()
    assert ended.headers["callbridge-event-id"] == f"{SID}:call.ended"
    assert analyzed.event["data"]["analysis"]["lead_score"] == 88
    assert [t["text"] for t in analyzed.event["data"]["transcript"]][1].startswith("I'd like")
    first_try = next(r for r in receiver.received if r.event["type"] == "call.ended")
    assert first_try.body == ended.body  # the same bytes on every attempt


async def test_an_event_already_delivered_is_not_sent_again(store: CallStore,
                                                            model: FakeOpenAIHTTP) -> None:
    """Running a delivered webhook job again (a re-run after a crash) posts nothing."""
    await store.apply(a_call(SID))
    clock = Clock(T0 + 31)
    receiver = Receiver(SECRET, clock)
    async with receiver.listening(), job_runner(store, model, directory(receiver.url)) as runner:
        await worker(store, runner, clock).run_until_idle()
        assert len(receiver.received) == 2
        jobs = await JobQueue(store.engine).list()
        [ended] = [j for j in jobs if j["kind"] == "webhook:call.ended"]
        again = await runner(Job(ended["id"], SID, "webhook:call.ended", 2, "t", T0), clock())
    assert again.delivery is None
    assert len(receiver.received) == 2

