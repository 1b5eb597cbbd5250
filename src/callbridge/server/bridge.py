"""One call's I/O: the Twilio media socket, the Realtime socket, timers and tool runs.

A `Bridge` feeds every message to its `CallSession` with the event loop's time and carries out
the actions it returns: frames out, upstream (re)connects after the delays the session asks for,
wake-ups for pacing. Both sockets have a synchronous lane (`media_socket`, `upstream`): a
message arrives from the transport's `data_received` straight into `run()`, and the frames it
produces are written on the same stack, so a media frame in becomes a frame out with no await,
no task switch, no logging and no allocation beyond the messages themselves. A media socket
served without the lane falls back to one ordered writer task (Starlette sockets are not safe
for concurrent sends).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from callbridge.capture.recorder import new_session, save_capture
from callbridge.config import Settings
from callbridge.core.actions import (
    Action,
    CloseUpstream,
    EndStream,
    HangUp,
    OpenUpstream,
    RedirectCall,
    RunTool,
    SaveRecording,
    SendRealtime,
    SendTwilio,
    StartRecording,
    TurnFinished,
)
from callbridge.core.agent import AgentProfile
from callbridge.core.reports import (
    REPORTS,
    BargeIn,
    ReplyUsage,
    Report,
    StreamStarted,
    TurnLatency,
    UpstreamConnectFailed,
    UpstreamGaveUp,
    UpstreamLost,
)
from callbridge.errors import UpstreamError
from callbridge.logs import get_logger
from callbridge.server.media_socket import lane_of
from callbridge.server.metrics import Metrics, api_of, outcome
from callbridge.server.recordings import RecordingStore
from callbridge.server.twilio_rest import TwilioRest, TwilioRestError
from callbridge.server.upstream import RealtimeSocket, describe_close, open_realtime
from callbridge.store.records import (
    AudioSaved,
    CallAnswered,
    CallEnded,
    CallOpened,
    EventRecorded,
    ToolRecorded,
    TurnRecorded,
    UsageRecorded,
)
from callbridge.store.sink import NULL_SINK, RecordSink
from callbridge.tools import ToolContext

log = get_logger("callbridge.bridge")

_QUIET = (ReplyUsage, TurnLatency)  # one per turn: metrics and records, no log line
_NOT_EVENTS = (ReplyUsage, StreamStarted)  # stored as usage and the answered record instead


@dataclass(frozen=True)
class CallInfo:
    """What the voice webhook (or the stream token) told us about the call."""

    direction: str = "inbound"
    from_number: str = ""
    to_number: str = ""


class CallWatcher(Protocol):
    """Follows a live call (issue 16: `server.live_feed`): the session's actions as they are
    carried out, and the Realtime frames (for transcript deltas)."""

    def actions(self, actions: list[Action]) -> None: ...

    def realtime(self, frame: bytes) -> None: ...


class Bridge:
    """Carries one call between Twilio and the Realtime API."""

    def __init__(self, call_sid: str, settings: Settings,
                 on_finished: Callable[[Bridge], None] | None = None, *,
                 sink: RecordSink = NULL_SINK, info: CallInfo | None = None,
                 profile: AgentProfile | None = None, rest: TwilioRest | None = None,
                 awaiting_answer: bool = False, metrics: Metrics | None = None,
                 on_upstream_down: Callable[[], None] | None = None,
                 recordings: RecordingStore | None = None) -> None:
        self.call_sid = call_sid
        self.settings = settings
        self.info = info or CallInfo()
        directory = settings.directory
        agent = profile or directory.for_number(self.info.to_number)
        self.session = new_session(settings, call_sid, agent,
                                   agents=directory.handoff_targets(agent),
                                   awaiting_answer=awaiting_answer)
        self._tools = directory.tools
        self._rest = rest
        self._metrics = metrics
        self._on_upstream_down = on_upstream_down
        self._recordings = recordings
        self.transcript: list[TurnFinished] = []
        self.notes: Counter[str] = Counter()
        self.latencies: list[tuple[int, int | None]] = []  # (caller-perceived, model) ms
        self.finished = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._on_finished = on_finished
        self._twilio_attached = False
        self._twilio_queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._send_twilio: Callable[[list[str]], None] = self._queue_twilio
        self._upstream: RealtimeSocket | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closers: set[asyncio.Task[None]] = set()
        self._wakeup: asyncio.TimerHandle | None = None
        self._wakeup_at: float | None = None
        self._log = log.bind(call_sid=call_sid)
        self._sink = sink
        self._t0 = self._loop.time()
        self._t0_wall = time.time()
        self.session.wall_offset = self._t0_wall - self._t0
        self._answered_at: float | None = None
        self._event_seq = 0
        # issue 16 (several instances, live calls): the live feed's observer, and whether the
        # call's media stream went to another instance (see `hand_over`)
        self.watcher: CallWatcher | None = None
        self._handed_over = False
        sink.submit(CallOpened(call_sid, self.info.direction, self.info.from_number,
                               self.info.to_number, agent.name, agent.model, agent.voice,
                               settings.instance_id, self._t0_wall))

    # ------------------------------------------------------------------ entry points

    def now(self) -> float:
        return self._loop.time()

    def begin(self) -> None:
        """Start opening the upstream session (called from the voice webhook)."""
        self.run(self.session.begin(self.now()))

    @property
    def attached(self) -> bool:
        return self._twilio_attached

    async def serve_twilio(self, ws: WebSocket, first_frames: list[str | bytes]) -> None:
        """Run the media socket until it closes. `first_frames` were read before `start`."""
        self._twilio_attached = True
        writer = self._spawn(self._write_twilio(ws))
        for frame in first_frames:
            self.run(self.session.receive_twilio(frame, self.now()))
        lane = lane_of(ws)
        if lane is not None:
            self._send_twilio = lane.send_texts
            lane.attach(self._on_twilio_message)
        try:
            await self._read_twilio(ws)
        finally:
            self.run(self.session.twilio_closed(self.now()))
            writer.cancel()
            await self.shutdown()

    def abandon(self, reason: str) -> None:
        """Give up on a call whose media socket never connected."""
        if not self._twilio_attached and not self.session.ended:
            self._log.info("media stream never connected; closing the call", reason=reason)
            self.run(self.session.twilio_closed(self.now()))
            self._spawn(self.shutdown())

    def wrap_up(self, reason: str) -> None:
        """Have the agent close the call politely and hang up (a drain deadline)."""
        self.run(self.session.wrap_up(self.now(), reason))

    def answered_by(self, kind: str) -> None:
        """Answering-machine detection's verdict on this (outbound) call."""
        self.run(self.session.answered_by(kind, self.now()))

    def end(self, reason: str) -> None:
        """The call is over elsewhere (e.g. Twilio's `completed` status): end it here too."""
        if self.session.ended:
            return
        self._log.info("ending the call", reason=reason)
        self.run(self.session.twilio_closed(self.now()))
        if self._twilio_attached:
            self._twilio_queue.put_nowait(None)
        else:
            self._spawn(self.shutdown())

    def hand_over(self) -> None:
        """Another instance took this call's media stream: close the pre-opened upstream now
        and record nothing more (the instance carrying the call records it). Issue 16."""
        if self._twilio_attached or self.finished.is_set():
            return
        self._log.info("the media stream went to another instance; closing the pre-opened "
                       "upstream")
        self._handed_over = True
        self._sink = NULL_SINK
        self._spawn(self.shutdown())

    async def shutdown(self) -> None:
        """Stop everything this call owns; idempotent."""
        if self._wakeup is not None:
            self._wakeup.cancel()
            self._wakeup = None
        self._close_upstream()
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._finish_with(save_capture(self.session))
        if self._closers:
            await asyncio.wait(self._closers, timeout=10.0)
        if not self.finished.is_set():
            if not self._handed_over:
                self._record_end()
            self.finished.set()
            if self._on_finished is not None:
                self._on_finished(self)

    # ------------------------------------------------------------------ carrying out actions

    def run(self, actions: list[Action]) -> None:
        """Carry out the session's actions in order. Consecutive frames for Twilio (a chunk
        and its mark) leave in one write."""
        if self.watcher is not None:  # issue 16: someone follows the call live
            self.watcher.actions(actions)
        twilio: list[str] = []
        for action in actions:
            kind = type(action)
            if kind is SendRealtime:
                upstream = self._upstream
                if upstream is not None:
                    upstream.send_now(action.event.serialize())  # type: ignore[union-attr]
            elif kind is SendTwilio:
                twilio.append(action.message.serialize())  # type: ignore[union-attr]
            else:
                if twilio:  # e.g. an EndStream must close after the frames before it
                    self._send_twilio(twilio)
                    twilio = []
                self._run_rare(action)
        if twilio:
            self._send_twilio(twilio)
        at = self.session.next_wakeup
        if at is not None and (self._wakeup_at is None or at < self._wakeup_at):
            self._schedule_wakeup(at)

    def _run_rare(self, action: Action) -> None:
        if isinstance(action, OpenUpstream):
            self._spawn(self._open_upstream(action))
        elif isinstance(action, CloseUpstream):
            self._close_upstream(action)
        elif isinstance(action, EndStream):
            self._log.info("ending the media stream", reason=action.reason)
            self._twilio_queue.put_nowait(None)
        elif isinstance(action, RunTool):
            self._spawn(self._run_tool(action))
        elif isinstance(action, HangUp | RedirectCall | StartRecording):
            self._spawn(self._call_control(action))
        elif isinstance(action, SaveRecording):
            self._finish_with(self._save_recording(action))
        elif isinstance(action, TurnFinished):
            self.transcript.append(action)
            self._sink.submit(TurnRecorded(
                self.call_sid, action.item_id, action.role, action.text, action.heard,
                action.interrupted, self._offset_ms(action.started), self._offset_ms(action.at)))
        elif isinstance(action, REPORTS):
            self._report(action)

    def _report(self, report: Report) -> None:
        self.notes[report.kind] += 1
        if isinstance(report, TurnLatency):
            self.latencies.append((report.ms, report.model_ms))
        elif isinstance(report, ReplyUsage):
            self._record_usage(report)
        elif isinstance(report, StreamStarted):
            self._answered_at = self.now()
            self._log = self._log.bind(stream_sid=report.stream_sid)
            self._sink.submit(CallAnswered(self.call_sid, report.stream_sid,
                                           self._wall(self._answered_at)))
        elif isinstance(report, UpstreamGaveUp) and self._on_upstream_down is not None:
            self._on_upstream_down()
        if self._metrics is not None:
            _observe(self._metrics, report, self._api)
        if not isinstance(report, _NOT_EVENTS):
            self._record_event(report.kind, report.details())
        if not isinstance(report, _QUIET):
            self._log.info(report.kind, **report.details())

    # ------------------------------------------------------------------ the call record

    def _wall(self, loop_time: float) -> float:
        return self._t0_wall + (loop_time - self._t0)

    def _offset_ms(self, loop_time: float) -> int:
        return max(0, round((loop_time - self._t0) * 1000))

    def _record_event(self, kind: str, detail: dict[str, Any]) -> None:
        self._event_seq += 1
        self._sink.submit(EventRecorded(self.call_sid, self._event_seq, kind,
                                        self._wall(self.now()), dict(detail)))

    def _record_usage(self, report: ReplyUsage) -> None:
        if not report.usage:
            return
        if self._metrics is not None:
            _observe_usage(self._metrics, report.usage, report.cost_usd, self._api)
        self._sink.submit(UsageRecorded(self.call_sid, report.response_id, dict(report.usage),
                                        report.cost_usd))

    @property
    def _api(self) -> str:
        """The `api` label of the call's metrics: its current agent's model API."""
        return api_of(self.session.profile.model)

    @property
    def cost_usd(self) -> float:
        """The call's estimated cost so far (the session computes it, once per reply)."""
        return self.session.cost_usd

    def _record_end(self) -> None:
        stats = self.session.stats
        self._record_event("call_stats", {
            "frames_in": stats.frames_in, "chunks_out": stats.chunks_out,
            "malformed_twilio": stats.malformed_twilio,
            "malformed_realtime": stats.malformed_realtime, "barge_ins": stats.barge_ins,
            "truncate_errors": stats.truncate_errors, "reconnects": stats.reconnects,
        })
        now = self.now()
        began = self._answered_at if self._answered_at is not None else now
        reason = self.session.end_reason or "ended"
        if self._metrics is not None:
            self._metrics.calls_total.labels(outcome(reason), self._api).inc()
            self._metrics.call_finished(stats)
        self._sink.submit(CallEnded(self.call_sid, self._wall(now), reason,
                                    round(now - began, 3), round(self.cost_usd, 6)))

    def _schedule_wakeup(self, at: float) -> None:
        """Arm the timer for `at`. It is only ever moved earlier: a deadline that moved later
        (pacing moves on every chunk) is found when the timer fires, which costs less than a
        cancel and a new timer per message."""
        if self._wakeup is not None:
            self._wakeup.cancel()
        self._wakeup_at = at
        self._wakeup = self._loop.call_at(at, self._on_wakeup)

    def _on_wakeup(self) -> None:
        self._wakeup = None
        self._wakeup_at = None
        at = self.session.next_wakeup
        if at is None:
            return  # what was due went away
        now = self.now()
        if at > now:
            self._schedule_wakeup(at)  # the deadline moved later since the timer was armed
            return
        self.run(self.session.wake(now))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("call task failed", exc_info=task.exception())

    # ------------------------------------------------------------------ Twilio socket

    def _queue_twilio(self, texts: list[str]) -> None:
        for text in texts:
            self._twilio_queue.put_nowait(text)

    def _on_twilio_message(self, frame: bytes) -> None:
        self.run(self.session.receive_twilio(frame, self._loop.time()))

    def _on_realtime_message(self, frame: bytes) -> None:
        if self.watcher is not None:  # issue 16: transcript deltas for the live feed
            self.watcher.realtime(frame)
        self.run(self.session.receive_realtime(frame, self._loop.time()))

    async def _read_twilio(self, ws: WebSocket) -> None:
        """Messages the lane did not take (all of them without one), until the disconnect."""
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                frame = message.get("text")
                if frame is None:
                    frame = message.get("bytes") or b""
                self.run(self.session.receive_twilio(frame, self.now()))

    async def _write_twilio(self, ws: WebSocket) -> None:
        queue = self._twilio_queue
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            while True:
                text = await queue.get()
                if text is None:
                    await ws.close(code=1000)
                    return
                await ws.send_text(text)

    # ------------------------------------------------------------------ Realtime socket

    async def _open_upstream(self, action: OpenUpstream) -> None:
        if action.delay:
            await asyncio.sleep(action.delay)
        if self.session.ended:
            return
        started = self.now()
        try:
            ws = await open_realtime(self.settings, self.session.profile)
        except UpstreamError as exc:
            self._log.warning("realtime connect failed", attempt=action.attempt, error=str(exc))
            self.run(self.session.upstream_failed(self.now(), str(exc)))
            return
        if not self.session.accepts_upstream():
            await ws.close()
            return
        connect_s = self.now() - started
        self._log.info("realtime connected", ms=round(connect_s * 1000))
        if self._metrics is not None:
            self._metrics.upstream_connect.labels(self._api).observe(connect_s)
        self._upstream = ws
        self.run(self.session.upstream_opened(self.now()))
        ws.attach(self._on_realtime_message)
        await ws.wait_closed()
        reason = describe_close(ws.close_exc)
        if self._upstream is ws:  # lost, not closed by us (call end, agent switch)
            self._upstream = None
            self.run(self.session.upstream_lost(self.now(), reason))

    def _finish_with(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Work that must outlive the call's tasks (shutdown waits for it, briefly)."""
        task = asyncio.ensure_future(coroutine)
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def _save_recording(self, action: SaveRecording) -> None:
        if self._recordings is None:
            return
        try:
            path, seconds = await self._recordings.save(self.call_sid, action.caller,
                                                        action.agent)
        except OSError as exc:
            self._log.error("could not write the as-heard recording", error=str(exc))
            return
        self._log.info("as-heard recording written", seconds=round(seconds, 1))
        self._sink.submit(AudioSaved(self.call_sid, str(path), round(seconds, 3)))

    def _close_upstream(self, action: CloseUpstream | None = None) -> None:
        """Close the model's socket in a task of its own that shutdown waits for: at once, or
        after the session's farewell events once the server closes it (at most `drain_s`)."""
        ws = self._upstream
        self._upstream = None
        if ws is None:
            return
        ws.detach()
        if action is not None and action.farewell:
            for send in action.farewell:
                ws.send_now(send.event.serialize())
            closer = asyncio.ensure_future(_drain_then_close(ws, action.drain_s))
        else:
            closer = asyncio.ensure_future(ws.close())
        self._closers.add(closer)
        closer.add_done_callback(self._closers.discard)

    # ------------------------------------------------------------------ tools

    async def _run_tool(self, action: RunTool) -> None:
        context = ToolContext(self.call_sid, self.info.from_number, self.info.to_number,
                              self.session.profile.name)
        result = await self._tools.run(action.name, action.arguments, context)
        self._sink.submit(ToolRecorded(
            self.call_sid, action.call_id, action.name, action.arguments,
            result.output if result.ok else None, result.error, result.duration_ms,
            time.time()))
        if self._metrics is not None:
            name = action.name if self._tools.get(action.name) is not None else "unknown"
            self._metrics.tool_latency.labels(name).observe(result.duration_ms / 1000)
            if not result.ok:
                self._metrics.tool_errors.labels(name).inc()
        self.run(self.session.tool_result(action.call_id, result.output, self.now()))

    # ------------------------------------------------------------------ call control (REST)

    async def _call_control(self, action: HangUp | RedirectCall | StartRecording) -> None:
        """Carry out a REST request; a failure goes back to the session, which decides."""
        if self._rest is None:
            self._log.error("call control needs Twilio's REST API: set TWILIO_ACCOUNT_SID",
                            action=type(action).__name__)
            self.run(self.session.control_failed(action, "no Twilio REST client", self.now()))
            return
        try:
            if isinstance(action, HangUp):
                self._log.info("hanging up", reason=action.reason)
                await self._rest.hang_up(self.call_sid)
            elif isinstance(action, RedirectCall):
                self._log.info("redirecting the call", reason=action.reason)
                await self._rest.update_call(self.call_sid, twiml=action.twiml)
            else:
                sid = await self._rest.start_recording(
                    self.call_sid, status_callback=f"{self.settings.public_url}/twilio/recording")
                self._record_event("recording_started", {"recording_sid": sid})
        except TwilioRestError as exc:
            self._log.error("Twilio REST request failed", action=type(action).__name__,
                            error=str(exc))
            error = str(exc)[:200]
            self.run(self.session.control_failed(action, error, self.now()))


async def _drain_then_close(ws: RealtimeSocket, drain_s: float) -> None:
    """Give the server `drain_s` to finish and close the socket itself, then close it."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ws.wait_closed(), drain_s)
    await ws.close()


def _observe(metrics: Metrics, report: Report, api: str) -> None:
    """A report's contribution to the process metrics."""
    if isinstance(report, TurnLatency):
        metrics.turn_latency.labels(api).observe(report.ms / 1000)
        if report.model_ms is not None:
            metrics.model_latency.labels(api).observe(report.model_ms / 1000)
    elif isinstance(report, BargeIn) and report.reaction_ms is not None:
        metrics.barge_in_reaction.observe(report.reaction_ms / 1000)
    elif isinstance(report, UpstreamLost | UpstreamConnectFailed):
        metrics.upstream_reconnects.labels(api).inc()
    elif isinstance(report, UpstreamGaveUp):
        metrics.fallbacks.labels(api).inc()


def _observe_usage(metrics: Metrics, usage: dict[str, Any], cost: float, api: str) -> None:
    """Tokens by kind (Realtime's per-modality details; a Responses backend's text totals),
    GPT-Live's billed seconds, and the cost."""
    seconds = usage.get("seconds")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0:
        metrics.active_seconds.labels(api).inc(seconds)
    for direction in ("input", "output"):
        details = usage.get(f"{direction}_token_details")
        if isinstance(details, dict):
            for kind in ("text", "audio"):
                count = details.get(f"{kind}_tokens")
                if isinstance(count, int) and count > 0:
                    metrics.tokens.labels(f"{direction}_{kind}", api).inc(count)
            continue
        total = usage.get(f"{direction}_tokens")
        if isinstance(total, int) and not isinstance(total, bool) and total > 0:
            metrics.tokens.labels(f"{direction}_text", api).inc(total)
    metrics.cost.labels(api).inc(cost)
