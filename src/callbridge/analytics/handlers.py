"""What each kind of job does: analyse a call, or deliver one of its webhook events.

Owns turning a claimed job into an `Outcome`. It reads the call from the record, finds the agent
by the name on the call row (the default agent when that name is no longer configured) and calls
the analyzer or the webhook sender. It writes nothing: the queue writes the outcome, guarded by
the claim. Ordering: `call.ended` is sent as soon as the call is recorded as ended; the analyze
job's outcome enqueues `call.analyzed`, committed with the analysis itself, so that event never
goes out before its analysis is stored. A webhook job whose event was already delivered (a re-run
after a worker died) is done without sending again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callbridge.agents import AgentDirectory
from callbridge.analytics.analyzer import AnalysisError, Analyzer
from callbridge.analytics.delivery import WebhookSender, event_body
from callbridge.core.agent import AgentProfile
from callbridge.store.jobs import Job, JobKind
from callbridge.store.outcomes import Done, Failed, Outcome
from callbridge.store.repository import CallStore

WEBHOOK_PREFIX = "webhook:"


class JobRunner:
    """Runs claimed jobs against the record, the agents' settings, the model and the webhooks."""

    def __init__(self, store: CallStore, directory: AgentDirectory, analyzer: Analyzer,
                 sender: WebhookSender) -> None:
        self.store = store
        self.directory = directory
        self.analyzer = analyzer
        self.sender = sender

    async def __call__(self, job: Job, now: float) -> Outcome:
        call = await self.store.get_call(job.call_sid)
        if call is None:
            return Failed(f"there is no call {job.call_sid} in the record")
        profile = self._profile(call)
        if job.kind == JobKind.ANALYZE:
            return await self._analyze(call, profile)
        if job.kind.startswith(WEBHOOK_PREFIX):
            return await self._deliver(job, call, profile, now)
        return Failed(f"unknown job kind {job.kind!r}")

    def _profile(self, call: Mapping[str, Any]) -> AgentProfile:
        agents = self.directory.agents
        return agents.get(str(call.get("agent") or ""), self.directory.default_profile)

    async def _analyze(self, call: Mapping[str, Any], profile: AgentProfile) -> Outcome:
        try:
            analysis = await self.analyzer.analyze(call, profile)
        except AnalysisError as exc:
            return Failed(str(exc))
        return Done(analysis=analysis, enqueue=(JobKind.CALL_ANALYZED.value,))

    async def _deliver(self, job: Job, call: Mapping[str, Any], profile: AgentProfile,
                       now: float) -> Outcome:
        event = job.kind.removeprefix(WEBHOOK_PREFIX)
        if not profile.webhook_url or not profile.webhook_secret:
            return Done()  # this agent has no webhook: nothing to send
        if any(d["event"] == event and d["delivered"] for d in call["webhook_deliveries"]):
            return Done()  # delivered by an earlier run of this job
        body = event_body(event, call, job.created_at)
        attempt = await self.sender.send(profile.webhook_url, profile.webhook_secret, event,
                                         job.call_sid, body, now)
        if attempt.delivered:
            return Done(delivery=attempt)
        return Failed(attempt.error or "not delivered", delivery=attempt)
