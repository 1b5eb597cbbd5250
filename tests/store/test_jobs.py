"""The job queue: claims, leases, backoff, dead letters and operators' retries."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from callbridge.analytics.worker import Runner, Worker
from callbridge.store.jobs import Job, JobQueue, RetryPolicy
from callbridge.store.outcomes import DeliveryAttempt, Done, Failed, Outcome
from callbridge.store.repository import CallStore
from tests.analytics.conftest import T0, a_call

SID = "CA" + "2" * 32
POLICY = RetryPolicy(attempts=3, base_s=5.0, cap_s=60.0)


async def queue_with_a_call(store: CallStore, lease_s: float = 60.0,
                            only_analyze: bool = True) -> JobQueue:
    """A queue with an ended call's jobs; with `only_analyze`, call.ended is already done."""
    await store.apply(a_call(SID))
    queue = JobQueue(store.engine, lease_s=lease_s, retry=POLICY)
    if only_analyze:
        ended = await queue.claim("setup", T0 + 30)
        assert ended is not None
        assert ended.kind == "webhook:call.ended"
        assert await queue.finish(ended, Done(), T0 + 30) == "done"
    return queue


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    """5 s, 10 s, 20 s, … never more than the cap."""
    policy = RetryPolicy(attempts=10, base_s=5.0, cap_s=30.0)
    assert [policy.delay(n) for n in range(1, 6)] == [5.0, 10.0, 20.0, 30.0, 30.0]


async def test_a_claimed_job_is_not_claimed_again_while_its_lease_lasts(store: CallStore) -> None:
    """Two claims get two different jobs, and a third finds nothing due."""
    queue = await queue_with_a_call(store, only_analyze=False)
    first = await queue.claim("a", T0 + 31)
    second = await queue.claim("b", T0 + 31)
    assert first is not None
    assert second is not None
    assert (first.kind, second.kind, first.attempts) == ("webhook:call.ended", "analyze", 1)
    assert await queue.claim("c", T0 + 40) is None


async def test_a_failed_attempt_waits_its_backoff_then_runs_again(store: CallStore) -> None:
    """After a failure the job is pending with its error, due only after the backoff."""
    queue = await queue_with_a_call(store)
    job = await queue.claim("a", T0 + 31)
    assert job is not None
    assert await queue.finish(job, Failed("model said no"), T0 + 32) == "pending"
    [row] = [r for r in await queue.list() if r["id"] == job.id]
    assert (row["state"], row["attempts"], row["last_error"]) == ("pending", 1, "model said no")
    assert await queue.claim("b", T0 + 36) is None  # 5 s backoff not over
    again = await queue.claim("b", T0 + 37.5)
    assert again is not None
    assert (again.id, again.attempts) == (job.id, 2)


async def test_a_job_is_dead_after_its_last_failed_attempt(store: CallStore) -> None:
    """The third failure (of three allowed) buries the job with the last error."""
    queue = await queue_with_a_call(store)
    now = T0 + 31
    states = []
    for attempt in range(3):
        job = await queue.claim("a", now)
        assert job is not None
        assert job.kind == "analyze"
        states.append(await queue.finish(job, Failed(f"failure {attempt + 1}"), now))
        now += 100
    assert states == ["pending", "pending", "dead"]
    [row] = await queue.list(state="dead")
    assert (row["attempts"], row["last_error"]) == (3, "failure 3")
    assert await queue.claim("a", now + 1000) is None


async def test_an_expired_lease_lets_another_worker_take_the_job_over(store: CallStore) -> None:
    """A worker that died mid-job loses it when its lease runs out; its late finish is refused."""
    queue = await queue_with_a_call(store, lease_s=10)
    dead_worker = await queue.claim("a", T0 + 31)
    assert dead_worker is not None
    assert await queue.claim("b", T0 + 40) is None
    heir = await queue.claim("b", T0 + 42)
    assert heir is not None
    assert (heir.id, heir.attempts) == (dead_worker.id, 2)
    assert await queue.finish(dead_worker, Done(), T0 + 43) is None
    assert not await queue.extend(dead_worker, T0 + 43)
    assert await queue.finish(heir, Done(), T0 + 44) == "done"


async def test_a_lease_that_expires_on_the_last_attempt_buries_the_job(store: CallStore) -> None:
    """A job whose workers keep dying is dead after the allowed attempts, not retried forever."""
    queue = await queue_with_a_call(store, lease_s=10)
    now = T0 + 31
    for _ in range(3):
        job = await queue.claim("a", now)
        assert job is not None
        assert job.kind == "analyze"
        now += 11
    assert await queue.claim("a", now) is None
    [row] = await queue.list(state="dead")
    assert row["attempts"] == 3
    assert "lease expired" in row["last_error"]


async def test_a_webhook_sent_by_a_worker_that_lost_its_claim_is_still_recorded(
        store: CallStore) -> None:
    """The POST happened, so its attempt is kept even though the job's outcome is discarded."""
    queue = await queue_with_a_call(store, lease_s=10, only_analyze=False)
    slow = await queue.claim("a", T0 + 31)
    heir = await queue.claim("b", T0 + 50)
    assert slow is not None
    assert heir is not None
    assert heir.id == slow.id
    sent = DeliveryAttempt("call.ended", "https://hooks.example.test/", 200, None, True)
    assert await queue.finish(slow, Done(delivery=sent), T0 + 51) is None
    call = await store.get_call(SID)
    assert call is not None
    assert [(d["event"], d["delivered"], d["attempt"]) for d in call["webhook_deliveries"]] == [
        ("call.ended", True, 1)]


async def test_operators_can_retry_one_dead_job_or_all_of_them(store: CallStore) -> None:
    """`retry_job` and `retry_dead` make dead jobs due now with fresh attempts."""
    queue = JobQueue(store.engine, retry=RetryPolicy(attempts=1))
    for n in range(3):
        await store.apply(a_call(f"CA{n}"))
    while (job := await queue.claim("a", T0 + 31)) is not None:
        await queue.finish(job, Failed("boom"), T0 + 31)
    dead = await queue.list(state="dead")
    assert len(dead) == 6
    assert await queue.retry_job(dead[0]["id"], T0 + 40)
    assert (await queue.counts()) == {"dead": 5, "pending": 1}
    assert await queue.retry_dead(T0 + 40) == 5
    assert (await queue.counts()) == {"pending": 6}
    assert {r["attempts"] for r in await queue.list()} == {0}
    job = await queue.claim("a", T0 + 41)
    assert job is not None
    assert await queue.finish(job, Done(), T0 + 41) == "done"
    assert not await queue.retry_job(job.id, T0 + 42)  # a done job stays done


async def test_two_workers_never_run_the_same_job(database_url: str) -> None:
    """Two workers with their own connections race over 50 jobs; each job runs exactly once."""
    stores = [CallStore(database_url), CallStore(database_url)]
    try:
        for n in range(25):
            await stores[0].apply(a_call(f"CA{n:02d}"))
        runs: Counter[int] = Counter()
        by_worker: Counter[str] = Counter()

        def runner(name: str) -> Runner:
            async def run(job: Job, now: float) -> Outcome:
                runs[job.id] += 1
                by_worker[name] += 1
                await asyncio.sleep(0.005)
                return Done()
            return run

        workers = [Worker(JobQueue(s.engine), runner(f"w{i}"), name=f"w{i}", concurrency=4)
                   for i, s in enumerate(stores)]
        await asyncio.gather(*(w.run_until_idle() for w in workers))
        assert len(runs) == 50
        assert set(runs.values()) == {1}
        assert by_worker["w0"] > 0
        assert by_worker["w1"] > 0
        assert await JobQueue(stores[0].engine).counts() == {"done": 50}
    finally:
        for s in stores:
            await s.close()



async def test_a_long_job_keeps_its_lease_while_it_runs(store: CallStore) -> None:
    """The worker renews the lease, so a job running past it is not taken over."""
    await store.apply(a_call(SID))
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(job: Job, now: float) -> Outcome:
        started.set()
        await release.wait()
        return Done()

    busy = Worker(JobQueue(store.engine, lease_s=0.3), slow, name="busy")
    step = asyncio.create_task(busy.step())
    await started.wait()
    await asyncio.sleep(0.6)  # twice the lease
    other = JobQueue(store.engine, lease_s=0.3)
    job = await other.claim("other", time.time())
    assert job is not None
    assert job.kind == "analyze"  # the job still being worked on (call.ended) is not offered
    assert await other.claim("other", time.time()) is None
    release.set()
    assert await step
    assert busy.stats.done == 1
