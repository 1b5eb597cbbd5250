"""The link to the model's session: opening, configuring, ready, replaced after a loss or on
purpose, or given up — with the backoff, the caller audio kept for the next session, and the
stall watch.

    state        event      next         when
    CLOSED       open       OPENING      the call exists (webhook): open the first session
    OPENING      opened     CONFIGURING  the socket is open
    OPENING      created    CONFIGURING  the model's session exists (configuration is sent)
    CONFIGURING  created    CONFIGURING
    READY        created    READY
    OPENING      ready      READY        the model confirmed the configuration
    CONFIGURING  ready      READY
    OPENING      lost       OPENING      a connect failed, the socket broke or stalled: retry
    CONFIGURING  lost       OPENING        after the next backoff delay
    READY        lost       OPENING
    READY        replace    OPENING      planned: recycle before the 60-minute cap, new voice
    OPENING      give_up    FAILED       the backoff budget is spent, or a fatal model error
    CONFIGURING  give_up    FAILED
    READY        give_up    FAILED
    (any)        close      CLOSED       the call ended

Everything else is refused with `InvalidState`. Why the link is opening (`Opening`) says what
the caller hears meanwhile: nothing before the first session, the comfort sound while a lost
session is replaced, nothing during a planned recycle. Caller audio that arrives while no
session is ready waits in a backlog (3 s); the audio a lost session was given since the caller's
last turn ended is put back in front of it, so the next session hears the whole utterance.
No I/O. No clock.
"""

from __future__ import annotations

from collections import deque
from enum import Enum
from typing import TYPE_CHECKING

from callbridge.core.actions import OpenUpstream
from callbridge.core.machine import Machine
from callbridge.core.states import READY
from callbridge.core.states import UpstreamState as Link

if TYPE_CHECKING:
    from callbridge.core.timing import Timing

FRAME_MS = 20  # Twilio media frames


class Opening(Enum):
    FIRST = "first"  # no session was ever ready: the greeting is still to come
    RECONNECT = "reconnect"  # a session was lost (or the voice changed): comfort sound, resume
    RECYCLE = "recycle"  # a planned replacement at a quiet moment: silence, nothing to resume


_LIVE = (Link.OPENING, Link.CONFIGURING, Link.READY)
TABLE: dict[tuple[Link, str], Link] = {
    (Link.CLOSED, "open"): Link.OPENING,
    (Link.OPENING, "opened"): Link.CONFIGURING,
    (Link.OPENING, "created"): Link.CONFIGURING,
    (Link.CONFIGURING, "created"): Link.CONFIGURING,
    (Link.READY, "created"): Link.READY,
    (Link.OPENING, "ready"): Link.READY,
    (Link.CONFIGURING, "ready"): Link.READY,
    **{(state, "lost"): Link.OPENING for state in _LIVE},
    (Link.READY, "replace"): Link.OPENING,
    **{(state, "give_up"): Link.FAILED for state in _LIVE},
    **{(state, "close"): Link.CLOSED for state in Link},
}


class UpstreamLink(Machine[Link]):
    """The model session's lifecycle as seen from one call."""

    TABLE = TABLE
    NAME = "the upstream"

    def __init__(self, timing: Timing) -> None:
        super().__init__(Link.CLOSED)
        self.delays = timing.reconnect_delays
        self.stall_s = timing.upstream_stall_s
        self.opening = Opening.FIRST
        self.retries = 0
        frames = max(1, timing.input_backlog_ms // FRAME_MS)
        self.backlog: deque[str] = deque(maxlen=frames)
        # Caller audio the current session was given since the caller's last turn ended:
        # what a lost or replaced session takes with it unanswered.
        self.unanswered: deque[str] = deque(maxlen=frames)
        self.origin_ms: int | None = None  # media time of this session's first caller frame
        self.heard_at = 0.0  # the last model event
        self._owed_since: float | None = None

    # ------------------------------------------------------------------ transitions

    def open(self) -> OpenUpstream:
        """Open the first session. Carry out the returned action."""
        self._move("open")
        return OpenUpstream(attempt=0, delay=0.0)

    def opened(self) -> None:
        self._move("opened")

    def created(self) -> None:
        self._move("created")

    def ready(self) -> bool:
        """The session is ready; True when it replaces an earlier one (restore, no greeting)."""
        self._move("ready")
        self.retries = 0
        restored = self.opening is not Opening.FIRST
        self.opening = Opening.RECONNECT  # from now on a loss is an outage to bridge
        return restored

    def lost(self) -> OpenUpstream | None:
        """The session is gone: the next attempt after its backoff delay, or None when the
        budget is spent (the link has then given up)."""
        if self.retries >= len(self.delays):
            self.give_up()
            return None
        self._move("lost")
        if self.opening is Opening.RECYCLE:  # a failed replacement is an outage like any other
            self.opening = Opening.RECONNECT
        self._session_gone()
        delay = self.delays[self.retries]
        self.retries += 1
        return OpenUpstream(attempt=self.retries, delay=delay)

    def replace(self, why: Opening) -> OpenUpstream:
        """Replace a ready session on purpose (recycle, or a hand-off to a new voice)."""
        self._move("replace")
        self.opening = why
        self._session_gone()
        return OpenUpstream(attempt=0, delay=0.0)

    def give_up(self) -> None:
        self._move("give_up")
        self._session_gone()

    def close(self) -> None:
        self._move("close")

    # ------------------------------------------------------------------ queries

    @property
    def ever_ready(self) -> bool:
        return self.opening is not Opening.FIRST

    @property
    def reconnecting(self) -> bool:
        """A lost session is being replaced: the caller would hear dead air."""
        return (self.opening is Opening.RECONNECT
                and self.state in (Link.OPENING, Link.CONFIGURING))

    @property
    def live(self) -> bool:
        return self.state in _LIVE

    # ------------------------------------------------------------------ caller audio

    def caller_frame(self, payload: str, timestamp: int) -> bool:
        """A caller frame: True when it goes to the ready session now, False when it waits."""
        if self.state is not READY:
            self.backlog.append(payload)
            return False
        if self.origin_ms is None:
            self.origin_ms = timestamp
        self.unanswered.append(payload)
        return True

    def turn_committed(self) -> None:
        """The caller's turn ended: the session has it now."""
        self.unanswered.clear()

    def take_backlog(self, media_ms: int) -> list[str]:
        """The waiting caller audio, for the session that just became ready; its audio clock
        starts at the oldest frame it is given."""
        frames = list(self.backlog)
        self.backlog.clear()
        self.unanswered.clear()
        self.unanswered.extend(frames)
        self.origin_ms = media_ms - FRAME_MS * len(frames)
        return frames

    def drop_backlog(self) -> None:
        self.backlog.clear()
        self.unanswered.clear()

    def _session_gone(self) -> None:
        if self.unanswered:
            self.backlog = deque([*self.unanswered, *self.backlog], maxlen=self.backlog.maxlen)
            self.unanswered.clear()
        self.origin_ms = None

    # ------------------------------------------------------------------ stall watch

    def watch(self, now: float, owed: bool) -> float | None:
        """While a reply is owed the model must say something every `stall_s` (from the later
        of its last event and the moment the reply became owed): that deadline, or None."""
        if self.stall_s is None or not owed:
            self._owed_since = None
            return None
        if self._owed_since is None:
            self._owed_since = now
        return max(self._owed_since, self.heard_at) + self.stall_s

    def stalled(self, now: float) -> float:
        """The deadline passed: seconds the model has been silent."""
        self._owed_since = None
        return round(now - self.heard_at, 3)
