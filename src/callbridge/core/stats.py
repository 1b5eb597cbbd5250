"""A call's counters: frames, chunks, malformed input, truncates, reconnects, barge-ins, usage.

The session counts; the adapter reads them at the end of the call and for the process metrics.
No I/O. No clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class SessionStats:
    frames_in: int = 0
    chunks_out: int = 0
    malformed_twilio: int = 0
    malformed_realtime: int = 0
    truncates_sent: int = 0
    truncate_errors: int = 0
    upstream_errors: int = 0
    reconnects: int = 0
    late_deltas_dropped: int = 0
    stale_marks: int = 0
    barge_ins: int = 0
    usage: dict[str, int] = field(default_factory=dict)
