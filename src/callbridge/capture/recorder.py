"""Recording a live call for replay: a `CallSession` that remembers every entry-point call.

Owns `CapturedSession`, which the bridge uses instead of `CallSession` when
`CALLBRIDGE_CAPTURE_DIR` is set. Each public entry point (messages from both sockets, wake-ups,
upstream opened/failed/lost, tool results, the end of the media stream, wrap-up, the AMD
verdict) appends its arguments, its time and the actions it returned to a list — nothing else
on the call's path: no serialisation, no masking, no I/O. `save()` does all of that in a
thread once the call is over, then deletes captures older than the age limit. A call whose
capture passes the size limit stops being captured there (the file says where).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callbridge.capture import file
from callbridge.config import Settings
from callbridge.core.actions import Action
from callbridge.core.agent import AgentProfile
from callbridge.core.session import CallSession, Timing
from callbridge.logs import get_logger

log = get_logger("callbridge.capture")
_OUTPUT_BYTES = 700  # about what one kept decision holds in memory, for the size limit


@dataclass(frozen=True)
class CaptureLimits:
    directory: Path
    max_bytes: int = 64 * 1024 * 1024
    max_age_days: int = 7


class CapturedSession(CallSession):
    """A `CallSession` whose inputs and decisions are kept for `callbridge replay`."""

    def __init__(self, call_sid: str, profile: AgentProfile, timing: Timing | None = None, *,
                 agents: Mapping[str, AgentProfile] | None = None,
                 awaiting_answer: bool = False, limits: CaptureLimits) -> None:
        super().__init__(call_sid, profile, timing, agents=agents,
                         awaiting_answer=awaiting_answer)
        self.capture_limits = limits
        self._capture = file.Capture(call_sid, profile, dict(agents or {}), self.timing,
                                     awaiting_answer, time.time())
        self._raw: list[tuple[str, tuple[Any, ...], float, list[Action]]] = []
        self._bytes = 0
        self._depth = 0  # an entry point calling another records only the outer one
        self._keeping = True  # False once the size limit is reached
        self._saved = False

    def _through(self, name: str, method: Callable[..., list[Action]], now: float,
                 *args: Any) -> list[Action]:
        self._depth += 1
        try:
            actions = method(*args)
        finally:
            self._depth -= 1
        if self._depth == 0 and self._keeping:
            self._keep(name, args, now, actions, sum(len(a) for a in args if isinstance(a, str)))
        return actions

    def _keep(self, name: str, args: tuple[Any, ...], now: float, actions: list[Action],
              size: int) -> None:
        self._bytes += size + _OUTPUT_BYTES * len(actions)
        if self._bytes > self.capture_limits.max_bytes:
            self._capture.truncated_at = now
            self._keeping = False
        else:
            self._raw.append((name, args, now, actions))

    # ------------------------------------------------------------------ the entry points

    def begin(self, now: float) -> list[Action]:
        return self._through("begin", super().begin, now, now)

    def wake(self, now: float) -> list[Action]:
        return self._through("wake", super().wake, now, now)

    def upstream_opened(self, now: float) -> list[Action]:
        return self._through("upstream_opened", super().upstream_opened, now, now)

    def upstream_failed(self, now: float, reason: str) -> list[Action]:
        return self._through("upstream_failed", super().upstream_failed, now, now, reason)

    def upstream_lost(self, now: float, reason: str) -> list[Action]:
        return self._through("upstream_lost", super().upstream_lost, now, now, reason)

    # The two message entry points run per frame: written out in full, they cost half what
    # going through `_through` does (see benchmarks/capture_cost.py).

    def receive_twilio(self, text: str | bytes, now: float) -> list[Action]:
        self._depth += 1
        try:
            actions = CallSession.receive_twilio(self, text, now)
        finally:
            self._depth -= 1
        if self._depth == 0 and self._keeping:
            self._keep("receive_twilio", (text, now), now, actions, len(text))
        return actions

    def twilio_closed(self, now: float) -> list[Action]:
        return self._through("twilio_closed", super().twilio_closed, now, now)

    def receive_realtime(self, text: str | bytes, now: float) -> list[Action]:
        self._depth += 1
        try:
            actions = CallSession.receive_realtime(self, text, now)
        finally:
            self._depth -= 1
        if self._depth == 0 and self._keeping:
            self._keep("receive_realtime", (text, now), now, actions, len(text))
        return actions

    def tool_result(self, call_id: str, output: str, now: float) -> list[Action]:
        return self._through("tool_result", super().tool_result, now, call_id, output, now)

    def wrap_up(self, now: float, reason: str) -> list[Action]:
        return self._through("wrap_up", super().wrap_up, now, now, reason)

    def answered_by(self, kind: str, now: float) -> list[Action]:
        return self._through("answered_by", super().answered_by, now, kind, now)

    # ------------------------------------------------------------------ writing it out

    @property
    def capture_path(self) -> Path:
        stamp = datetime.fromtimestamp(self._capture.started_at, UTC).strftime("%Y%m%dT%H%M%S")
        return self.capture_limits.directory / f"{stamp}-{self.call_sid}.jsonl.gz"

    async def save(self) -> Path | None:
        """Write the capture (once), off the event loop; None if it could not be written."""
        if self._saved:
            return None
        self._saved = True
        try:
            return await asyncio.to_thread(self._write)
        except OSError as exc:
            log.error("could not write the call's capture", call_sid=self.call_sid,
                      error=str(exc))
            return None

    def _write(self) -> Path:
        directory = self.capture_limits.directory
        directory.mkdir(parents=True, exist_ok=True)
        path = self.capture_path
        file.write(path, self._capture, self._lines())
        _prune(directory, self.capture_limits.max_age_days * 86_400.0, keep=path)
        return path

    def _lines(self) -> Iterator[str]:
        for name, args, now, actions in self._raw:
            yield file.entry_line(file.Entry(name, file.masked_arguments(args), now,
                                             file.wire_of(actions)))


def new_session(settings: Settings, call_sid: str, profile: AgentProfile, *,
                agents: Mapping[str, AgentProfile], awaiting_answer: bool) -> CallSession:
    """The bridge's session: a `CapturedSession` when `CALLBRIDGE_CAPTURE_DIR` is set."""
    if not settings.capture_dir:
        return CallSession(call_sid, profile, settings.timing, agents=agents,
                           awaiting_answer=awaiting_answer)
    limits = CaptureLimits(Path(settings.capture_dir), settings.capture_max_bytes,
                           settings.capture_max_age_days)
    return CapturedSession(call_sid, profile, settings.timing, agents=agents,
                           awaiting_answer=awaiting_answer, limits=limits)


async def save_capture(session: CallSession) -> None:
    """Write the session's capture if it keeps one (the bridge calls this at the call's end)."""
    if isinstance(session, CapturedSession):
        path = await session.save()
        if path is not None:
            log.info("call captured", call_sid=session.call_sid, path=str(path))


def _prune(directory: Path, max_age_s: float, keep: Path) -> None:
    """Delete captures older than `max_age_s`."""
    cutoff = time.time() - max_age_s
    for old in directory.glob("*.jsonl.gz"):
        try:
            if old != keep and old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            continue  # another instance pruned it first
