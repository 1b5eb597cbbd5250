"""Following live calls: the events behind `GET /api/calls/{CallSid}/stream`.

Owns who follows which call and getting each event to them. A follower on this instance is a
bounded queue (`subscribe`); a follower on another instance is that instance's name, and the
events go to it in order, one cluster message each (`Cluster.send`), through one sender task per
call. A call's bridge carries a watcher (`Bridge.watcher`) only while somebody follows it, so an
unwatched call pays nothing. When the call ends, every follower gets the `end` event and its
stream closes. A follower too slow to keep up loses events (counted in a `dropped` event),
never the call's time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from callbridge.core import call_feed
from callbridge.core.actions import Action
from callbridge.core.call_feed import LiveEvent
from callbridge.logs import get_logger
from callbridge.server.bridge import Bridge
from callbridge.server.cluster import Cluster

log = get_logger("callbridge.live_feed")

QUEUE_EVENTS = 1000
_END = "end"
_Outgoing = tuple[LiveEvent, tuple[str, ...]]  # an event and the instances it goes to


@dataclass(eq=False)
class _Follower:
    queue: asyncio.Queue[LiveEvent] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_EVENTS))
    dropped: int = 0

    def put(self, event: LiveEvent) -> None:
        if event["type"] == _END and self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()  # the end always arrives
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1


class _Watcher:
    """What a followed call's bridge calls (see `Bridge.watcher`)."""

    def __init__(self, feed: LiveFeed, call_sid: str) -> None:
        self._feed = feed
        self._call_sid = call_sid

    def actions(self, actions: list[Action]) -> None:
        for event in call_feed.from_actions(actions):
            self._feed.publish(self._call_sid, event)

    def realtime(self, frame: bytes) -> None:
        event = call_feed.transcript_delta(frame)
        if event is not None:
            self._feed.publish(self._call_sid, event)


class LiveFeed:
    """Followers of live calls on this instance, and of this instance's calls elsewhere."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._local: dict[str, set[_Follower]] = {}
        self._remote: dict[str, set[str]] = {}  # CallSid → instances following it
        self._outbox: dict[str, asyncio.Queue[_Outgoing | None]] = {}
        self._senders: set[asyncio.Task[None]] = set()
        self._bridges: dict[str, Bridge] = {}

    # ---------------------------------------------------------------- the owner's side

    def watch(self, bridge: Bridge) -> None:
        """Start observing `bridge` (idempotent)."""
        if bridge.watcher is None:
            bridge.watcher = _Watcher(self, bridge.call_sid)
        self._bridges[bridge.call_sid] = bridge

    def follow_remotely(self, bridge: Bridge, instance: str) -> None:
        """`instance` has followers of this call: send it every event from now on."""
        self._remote.setdefault(bridge.call_sid, set()).add(instance)
        self.watch(bridge)

    def unfollow_remotely(self, call_sid: str, instance: str) -> None:
        instances = self._remote.get(call_sid)
        if instances is not None:
            instances.discard(instance)
        self._maybe_unwatch(call_sid)

    def publish(self, call_sid: str, event: LiveEvent) -> None:
        for follower in self._local.get(call_sid, ()):
            follower.put(event)
        instances = self._remote.get(call_sid)
        if instances:
            outbox = self._outbox.get(call_sid)
            if outbox is None:
                outbox = self._outbox[call_sid] = asyncio.Queue()
                task = asyncio.ensure_future(self._send_in_order(call_sid, outbox))
                self._senders.add(task)
                task.add_done_callback(self._senders.discard)
            outbox.put_nowait((event, tuple(instances)))

    def ended(self, call_sid: str, reason: str) -> None:
        """The call ended here: the `end` event to everyone following it, then forget it."""
        self.publish(call_sid, call_feed.ended(reason))
        self._bridges.pop(call_sid, None)
        self._remote.pop(call_sid, None)
        outbox = self._outbox.pop(call_sid, None)
        if outbox is not None:
            outbox.put_nowait(None)

    async def _send_in_order(self, call_sid: str,
                             outbox: asyncio.Queue[_Outgoing | None]) -> None:
        while True:
            outgoing = await outbox.get()
            if outgoing is None:
                return
            event, instances = outgoing
            for instance in instances:
                await self._cluster.send(instance, {"op": "feed", "call_sid": call_sid,
                                                    "event": event})

    def _maybe_unwatch(self, call_sid: str) -> None:
        if self._local.get(call_sid) or self._remote.get(call_sid):
            return
        bridge = self._bridges.pop(call_sid, None)
        if bridge is not None:
            bridge.watcher = None

    # ---------------------------------------------------------------- the follower's side

    def deliver(self, call_sid: str, event: LiveEvent) -> None:
        """An event of a call carried elsewhere, for the followers here."""
        for follower in self._local.get(call_sid, ()):
            follower.put(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, call_sid: str) -> AsyncIterator[asyncio.Queue[LiveEvent]]:
        """A queue of the call's events until the block exits."""
        follower = _Follower()
        self._local.setdefault(call_sid, set()).add(follower)
        try:
            yield follower.queue
        finally:
            followers = self._local.get(call_sid)
            if followers is not None:
                followers.discard(follower)
                if not followers:
                    del self._local[call_sid]
            self._maybe_unwatch(call_sid)

    def following(self, call_sid: str) -> bool:
        return bool(self._local.get(call_sid))

    async def close(self) -> None:
        for task in list(self._senders):
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
