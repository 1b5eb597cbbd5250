"""The knobs of a call's pacing and recovery, with the defaults the references agree on.

No I/O. No clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timing:
    """Pacing and recovery knobs; the defaults are what the references agree on."""

    chunk_ms: int = 40
    lead_ms: int = 300
    reconnect_delays: tuple[float, ...] = (0.2, 0.4, 0.8, 1.6, 3.2)
    input_backlog_ms: int = 3000
    history_items: int = 60
    history_chars: int = 24_000
    # OpenAI ends a Realtime session at 60 min; replace it at a quiet turn boundary before that
    recycle_after_s: float = 55 * 60
    # A reply is owed and the upstream has said nothing for this long: the socket is stalled
    # (no FIN, no RST; pings would notice only after 20-40 s). None turns the check off.
    upstream_stall_s: float | None = 3.0
    # Ask for the greeting as soon as the first session is ready, before Twilio's `start`:
    # the caller hears it ~400 ms sooner; a media socket that never comes costs one greeting
    # (measured: docs/architecture.md, "The greeting before `start`").
    greet_before_start: bool = True
