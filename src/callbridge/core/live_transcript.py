"""GPT-Live's transcripts grouped into turns by timing, and an agent turn cut at what was heard.

GPT-Live sends transcript fragments of both sides (`session.input_transcript.delta` for the
caller, `session.output_transcript.delta` for the model) with `start_ms`/`end_ms` on the session
timeline, and no event that says a turn is done. A side's turn ends when that side has said
nothing for `gap_ms` (0.8 s, what Pipecat and LiveKit use): either its next fragment starts that
much later, or the session timeline has moved that far past its last fragment (`close_due`, fed
the session time the adapter knows from the audio it has sent). Fragments carry their own leading
spaces and are joined as they come. A brief caller fragment while the agent talks is a
backchannel ("mhm") and is still a caller turn here: deciding that it was one is the reader's
business, and it never stops the agent (the model decides that itself).

`LiveTurn.text_until(ms)` is the agent's words the caller heard when playback reached session
time `ms`: whole fragments that ended by then.
No I/O. No clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SIDES = ("input", "output")  # caller, agent


@dataclass(frozen=True, slots=True)
class Fragment:
    text: str
    start_ms: int
    end_ms: int


@dataclass(slots=True)
class LiveTurn:
    """One side's turn: its fragments in delivery order."""

    side: str
    fragments: list[Fragment] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(fragment.text for fragment in self.fragments).strip()

    @property
    def start_ms(self) -> int:
        return self.fragments[0].start_ms

    @property
    def end_ms(self) -> int:
        return max(fragment.end_ms for fragment in self.fragments)

    def text_until(self, ms: int) -> str:
        """The words of fragments that had ended by session time `ms`."""
        return "".join(f.text for f in self.fragments if f.end_ms <= ms).strip()


class TurnGrouper:
    """Both sides' fragments in, finished turns out, ordered by when they started."""

    def __init__(self, gap_ms: int = 800) -> None:
        self._gap_ms = gap_ms
        self._open: dict[str, LiveTurn] = {}

    def add(self, side: str, text: str, start_ms: int, end_ms: int) -> list[LiveTurn]:
        """Take one fragment of `side` ("input" or "output"); returns the turns it finished
        (that side's previous turn, when this fragment starts `gap_ms` or more after it)."""
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, not {side!r}")
        finished = []
        current = self._open.get(side)
        if current is not None and start_ms - current.end_ms >= self._gap_ms:
            finished.append(self._open.pop(side))
            current = None
        if current is None:
            current = self._open[side] = LiveTurn(side)
        current.fragments.append(Fragment(text, start_ms, max(end_ms, start_ms)))
        return finished

    def close_due(self, session_ms: int) -> list[LiveTurn]:
        """Finish every open turn whose side has been quiet for `gap_ms` by `session_ms`."""
        due = [side for side, turn in self._open.items()
               if session_ms - turn.end_ms >= self._gap_ms]
        return sorted((self._open.pop(side) for side in due), key=lambda t: t.start_ms)

    def flush(self) -> list[LiveTurn]:
        """Finish every open turn (the session or the call ended)."""
        turns = sorted(self._open.values(), key=lambda t: t.start_ms)
        self._open.clear()
        return turns

    def open_turn(self, side: str) -> LiveTurn | None:
        """The turn `side` is in the middle of, if any."""
        return self._open.get(side)
