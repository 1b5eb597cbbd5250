"""The runner's measure of dead air, as a pure function of who spoke when."""

from __future__ import annotations

from callbridge.evals.runner import longest_silence


def test_dead_air_is_the_longest_gap_with_neither_party_speaking() -> None:
    """Gaps between the caller's words and the agent's audio, in either order."""
    spoken = [(1.0, 2.0), (6.0, 7.0)]
    heard = [(0.0, 0.8), (2.5, 4.0), (7.4, 9.0)]
    assert longest_silence(spoken, heard, []) == 2.0  # 4.0 → 6.0


def test_the_callers_own_silence_is_not_dead_air() -> None:
    """A scripted pause fills its gap; overlaps count once; nothing before or after counts."""
    spoken = [(1.0, 2.0), (6.0, 7.0)]
    heard = [(2.5, 4.0), (3.0, 3.5)]
    assert longest_silence(spoken, heard, [(4.0, 6.0)]) == 0.5
    assert longest_silence([], [], []) == 0.0
