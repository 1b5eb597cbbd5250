"""The live calls of this process, by CallSid.

Owns creating a call's `Bridge` once (duplicate webhooks reuse it), giving up on calls whose media
socket never connects or went to another instance (`hand_over`), and forgetting calls when they
finish. When the stream token expires with no media socket here, a call whose stream another
instance took (`taken_elsewhere`, set by the server when instances share a database) is handed
over silently instead of recorded as ended: its record belongs to the instance carrying it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from callbridge.config import Settings
from callbridge.core.agent import AgentProfile
from callbridge.server.bridge import Bridge, CallInfo
from callbridge.server.metrics import Metrics
from callbridge.server.recordings import RecordingStore
from callbridge.server.twilio_rest import TwilioRest
from callbridge.store.sink import NULL_SINK, RecordSink


class CallRegistry:
    def __init__(self, settings: Settings, sink: RecordSink = NULL_SINK, *,
                 metrics: Metrics | None = None,
                 on_upstream_down: Callable[[], None] | None = None,
                 recordings: RecordingStore | None = None,
                 on_forgotten: Callable[[Bridge], None] | None = None) -> None:
        self._settings = settings
        self._on_forgotten = on_forgotten  # a call left this instance (server.app: the cluster)
        self._recordings = recordings
        self.sink = sink
        self._metrics = metrics
        self._on_upstream_down = on_upstream_down
        self._empty = asyncio.Event()
        self._empty.set()
        self.rest: TwilioRest | None = None  # set once the event loop runs
        self._bridges: dict[str, Bridge] = {}
        self.finished_calls: list[Bridge] = []
        self.keep_finished = 0  # how many finished bridges to keep for inspection (tests, simulate)
        self.taken_elsewhere: Callable[[str], Awaitable[bool]] | None = None
        self._checks: set[asyncio.Task[None]] = set()

    def open(self, call_sid: str, info: CallInfo | None = None, *,
             profile: AgentProfile | None = None, awaiting_answer: bool = False) -> Bridge:
        """The call's bridge, created (and its upstream opening started) on first sight."""
        bridge = self._bridges.get(call_sid)
        if bridge is not None:
            return bridge
        bridge = Bridge(call_sid, self._settings, on_finished=self._forget, sink=self.sink,
                        info=info, profile=profile, rest=self.rest,
                        awaiting_answer=awaiting_answer, metrics=self._metrics,
                        on_upstream_down=self._on_upstream_down,
                        recordings=self._recordings)
        self._bridges[call_sid] = bridge
        self._empty.clear()
        bridge.begin()
        loop = asyncio.get_running_loop()
        loop.call_later(self._settings.stream_token_ttl, self._no_stream, bridge)
        return bridge

    def _no_stream(self, bridge: Bridge) -> None:
        if bridge.attached or bridge.finished.is_set():
            return
        if self.taken_elsewhere is None:
            bridge.abandon("no media stream")
            return
        task = asyncio.ensure_future(self._abandon_unless_taken(bridge, self.taken_elsewhere))
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    @staticmethod
    async def _abandon_unless_taken(bridge: Bridge,
                                    taken_elsewhere: Callable[[str], Awaitable[bool]]) -> None:
        if await taken_elsewhere(bridge.call_sid):
            bridge.hand_over()
        else:
            bridge.abandon("no media stream")

    def hand_over(self, call_sid: str) -> None:
        """Another instance took the call's media stream: release our pre-opened bridge."""
        bridge = self._bridges.get(call_sid)
        if bridge is not None:
            bridge.hand_over()

    def get(self, call_sid: str) -> Bridge | None:
        return self._bridges.get(call_sid)

    def __len__(self) -> int:
        return len(self._bridges)

    def live(self) -> list[Bridge]:
        return list(self._bridges.values())

    async def wait_until_empty(self, within: float) -> bool:
        """True once no call is live; False if some still are after `within` seconds."""
        try:
            await asyncio.wait_for(self._empty.wait(), within)
        except TimeoutError:
            return False
        return True

    async def close_all(self) -> None:
        await asyncio.gather(*(b.shutdown() for b in list(self._bridges.values())))

    def _forget(self, bridge: Bridge) -> None:
        if self._bridges.get(bridge.call_sid) is bridge:
            del self._bridges[bridge.call_sid]
        if not self._bridges:
            self._empty.set()
        if self._on_forgotten is not None:
            self._on_forgotten(bridge)
        if self.keep_finished:
            self.finished_calls.append(bridge)
            del self.finished_calls[: -self.keep_finished]
