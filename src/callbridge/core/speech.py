"""The agent's speech on its way to the caller: items as the model sends them, paced out to
Twilio in chunks with marks, the comfort sound instead of dead air, cut short at barge-in, and
turned into transcript turns with what the caller heard.

It never knows which model API is on the other end: audio comes in as base64 items, and a cut
at barge-in goes out through the model seam (`model.ModelProtocol.cut`). No I/O. No clock.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from callbridge.core import twilio_messages as tw
from callbridge.core.actions import Action, SendRealtime, SendTwilio, TurnFinished
from callbridge.core.agent import AgentProfile
from callbridge.core.as_heard import AsHeardTimeline
from callbridge.core.audio_path import audio_path
from callbridge.core.comfort import COMFORT_ITEM, comfort_loop
from callbridge.core.history import ConversationHistory, heard_text
from callbridge.core.model import ModelProtocol
from callbridge.core.outbound import OutboundAudio
from callbridge.core.playback import Echo, PlaybackTracker

if TYPE_CHECKING:
    from callbridge.core.stats import SessionStats
    from callbridge.core.timing import Timing

BYTES_PER_MS = 8  # μ-law, 8 kHz, what Twilio plays


@dataclass(slots=True)
class AgentItem:
    reply_id: str
    text: list[str] = field(default_factory=list)
    final_text: str | None = None
    audio_done: bool = False
    started_at: float | None = None
    talked_over: bool = False  # the model stopped by itself when the caller talked over it

    def transcript(self) -> str:
        return self.final_text if self.final_text is not None else "".join(self.text)


class AgentSpeech:
    """Agent items, the playback ledger and the pacing of one call."""

    def __init__(self, profile: AgentProfile, timing: Timing, history: ConversationHistory,
                 stats: SessionStats) -> None:
        self.playback = PlaybackTracker()
        self.outbound = OutboundAudio()
        self.items: dict[str, AgentItem] = {}
        self.audio = audio_path(profile.audio_format)  # fixed for the whole call
        self.comfort = comfort_loop(profile.comfort_sound)
        self.heard = AsHeardTimeline() if profile.record_audio else None
        self.paced_until: float | None = None
        self.media_ms = 0  # the latest Twilio media timestamp: the call's media clock
        self._closed_items: set[str] = set()
        self._comfort_at = 0
        self._chunk_bytes = timing.chunk_ms * BYTES_PER_MS
        self._lead_s = timing.lead_ms / 1000.0
        self._history = history
        self._stats = stats
        self._cuts = 0

    # ------------------------------------------------------------------ agent audio in

    def live_item(self, reply_id: str, item_id: str, suppressed: set[str]) -> AgentItem | None:
        """The item a delta belongs to, or None when its audio must be dropped (interrupted)."""
        item = self.items.get(item_id)
        if item is not None:
            return item
        if item_id in self._closed_items or reply_id in suppressed:
            return None
        item = self.items[item_id] = AgentItem(reply_id)
        return item

    def received(self, item_id: str, part: int, audio: bytes) -> None:
        """Queue agent audio (decoded, in the session's format) for Twilio."""
        self.playback.received(item_id, part, len(audio) / self.audio.bytes_per_ms)
        self.outbound.push(item_id, part, self.audio.agent_audio(audio))

    def audio_done(self, item_id: str, item: AgentItem) -> None:
        """The model is done with this item's audio: the resampler's tail, then padding."""
        item.audio_done = True
        tail = self.audio.agent_flush()
        if tail:
            self.outbound.push(item_id, self.playback.item(item_id).content_index, tail)
        self.outbound.finish(item_id)

    def reply_done(self, reply_id: str) -> None:
        for item_id, item in self.items.items():
            if item.reply_id == reply_id and not item.audio_done:
                self.audio_done(item_id, item)

    def abandon(self) -> None:
        """The model's session died mid-reply: keep what was received and let it play."""
        for item_id, item in self.items.items():
            if not item.audio_done:
                self.audio_done(item_id, item)
            self._history.agent_said(item_id, item.transcript())

    # ------------------------------------------------------------------ out to Twilio

    def pump(self, now: float, sid: str, dead_air: Callable[[], bool]) -> list[Action]:
        """Release agent audio to Twilio while it holds less than the lead; `dead_air()` says
        whether the caller would otherwise hear nothing (the comfort sound plays then)."""
        self.paced_until = None
        if self.comfort and not self.outbound:
            self._top_up_comfort(dead_air)
        if not self.outbound:
            return []
        actions: list[Action] = []
        playback, outbound, items = self.playback, self.outbound, self.items
        while True:
            # The epsilon keeps a wake-up at exactly `play_end - lead` from being re-armed forever.
            if playback.queued_seconds(now) > self._lead_s + 1e-6:
                self.paced_until = playback.play_end - self._lead_s
                break
            if self.comfort and not outbound:
                self._top_up_comfort(dead_air)
            chunk = outbound.take(self._chunk_bytes)
            if chunk is None:
                break
            item_id, _, audio = chunk
            payload = base64.b64encode(audio).decode("ascii")
            name = playback.sent(item_id, len(audio) / BYTES_PER_MS, now,
                                 audio if self.heard is not None else b"")
            item = items.get(item_id)
            if item is not None and item.started_at is None:
                item.started_at = now
            actions.append(SendTwilio(tw.SendMedia(sid, payload)))
            actions.append(SendTwilio(tw.SendMark(sid, name)))
            self._stats.chunks_out += 1
        return actions

    def _top_up_comfort(self, dead_air: Callable[[], bool]) -> None:
        if self.outbound or self.playback.others_pending(COMFORT_ITEM) or not dead_air():
            return
        loop, size = self.comfort, self._chunk_bytes
        start = self._comfort_at % len(loop)
        chunk = (loop + loop)[start:start + size] if start + size > len(loop) else \
            loop[start:start + size]
        self._comfort_at = start + size
        self.outbound.push(COMFORT_ITEM, 0, chunk)

    def stop_comfort(self, now: float, sid: str | None) -> list[Action]:
        """Real agent audio (or the caller) takes over: drop the comfort sound at once."""
        if self.outbound.holds(COMFORT_ITEM):
            self.outbound.drop_item(COMFORT_ITEM)
        if not self.playback.is_pending(COMFORT_ITEM) or sid is None:
            return []
        self.record_heard(self.playback.clear(now))
        return [SendTwilio(tw.SendClear(sid))]

    def echoed(self, name: str, now: float) -> Echo:
        result = self.playback.echoed(name, now)
        if self.heard is not None and self.playback.played:
            self.record_heard(b"".join(self.playback.played))
            self.playback.played.clear()
        return result

    def record_heard(self, audio: bytes) -> None:
        """Agent audio the caller heard, ending now (on the media clock)."""
        if self.heard is not None and audio:
            self.heard.agent_played(audio, self.media_ms)

    # ------------------------------------------------------------------ barge-in

    @property
    def audible(self) -> bool:
        """Agent audio (not the comfort sound) is queued or playing."""
        return (self.playback.others_pending(COMFORT_ITEM)
                or not self.outbound.only(COMFORT_ITEM))

    def interrupt(self, now: float, sid: str | None, model: ModelProtocol) -> list[Action]:
        """The caller talks over the agent: drop the queue, `clear` what Twilio holds, cut
        each unfinished item at what was heard, and close the items as interrupted turns."""
        actions: list[Action] = []
        self.outbound.drop()
        self.audio.agent_reset()
        if self.playback.awaiting_echo() and sid is not None:
            self.record_heard(self.playback.clear(now))
            actions.append(SendTwilio(tw.SendClear(sid)))
        for item_id in list(self.items):
            actions += self._cut(item_id, model)
            actions.append(self.finish_item(item_id, now, interrupted=True))
        return actions

    def _cut(self, item_id: str, model: ModelProtocol) -> list[SendRealtime]:
        audio = self.playback.item(item_id)
        heard = self.playback.heard_ms(item_id)
        if audio.received_ms <= 0 or heard >= int(audio.received_ms):
            return []
        self._cuts += 1
        cut = model.cut(item_id, audio.content_index, heard, self._cuts)
        self._stats.truncates_sent += len(cut)
        return cut

    # ------------------------------------------------------------------ turns

    def finish_played(self, now: float) -> tuple[list[Action], bool]:
        """Items whose audio is all delivered and confirmed played become turns; also whether
        the agent is now quiet (nothing pending or queued)."""
        if not self.items:
            return [], False
        pending = self.playback.pending_items()
        done = [
            item_id for item_id, item in self.items.items()
            if item.audio_done and item_id not in pending and not self.outbound.holds(item_id)
        ]
        quiet = not pending and not self.outbound
        return [self.finish_item(item_id, now, interrupted=self.items[item_id].talked_over)
                for item_id in done], quiet

    def finish_item(self, item_id: str, now: float, *, interrupted: bool) -> TurnFinished:
        item = self.items.pop(item_id)
        self._closed_items.add(item_id)
        text = item.transcript()
        received = self.playback.item(item_id).received_ms
        heard = text if received else ""  # no audio, nothing heard
        if interrupted and received:
            heard = heard_text(text, self.playback.heard_ms(item_id) / received)
        self._history.agent_said(item_id, heard)
        started = item.started_at if item.started_at is not None else now
        return TurnFinished("agent", text, heard, interrupted, item_id, now, started)

    def end(self, now: float) -> list[Action]:
        """The call ended: every unfinished item becomes a turn (interrupted if not all of it
        was heard) and nothing more is sent."""
        actions: list[Action] = []
        for item_id in list(self.items):
            heard = self.playback.heard_ms(item_id)
            received = self.playback.item(item_id).received_ms
            actions.append(self.finish_item(item_id, now, interrupted=heard < int(received)))
        self.outbound.drop()
        return actions
