"""The load report's budgets: bridge-added over the relay (pcmu), load-added over the first step
(pcm16). Pure functions over step dicts, as the orchestrator builds them."""

from __future__ import annotations

from typing import Any

from benchmarks.load import report


def _step(n: int, p99: float, **extra: Any) -> dict[str, Any]:
    return {"n": n, "rtt_ms": [p99 - 40, p99, p99 + 2], "echoed": 100, "lost": 0, "failed": 0,
            "dropped_calls": 0, **extra}


def test_pcm16_steps_are_judged_on_p99_load_added_over_the_first_step() -> None:
    """The first step is the reference; a later step breaks the budget only past it + 5 ms."""
    first = _step(5, 141.5)
    reference = report.reference_of(first)
    steps = [first, _step(50, 146.0), _step(100, 150.0)]
    for step in steps:
        report.add_load_cost(step, reference)
    assert [step["load_added_p99_ms"] for step in steps] == [0.0, 4.5, 8.5]
    assert [report.verdict(step, 5.0) for step in steps] == [
        "ok", "ok", "p99 load-added 8.50 ms > 5 ms (over 141.50 ms at N=5)"]


def test_pcm16_verdict_ignores_the_relay_which_does_not_resample() -> None:
    """140 ms over the relay is libsoxr's hold-back, not a broken budget."""
    step = _step(5, 141.5, added_ms=[100.0, 140.0, 142.0])
    report.add_load_cost(step, report.reference_of(step))
    assert report.verdict(step, 5.0) == "ok"


def test_pcm16_loss_still_breaks_the_budget() -> None:
    """A lost frame breaks it whatever the latency."""
    step = _step(5, 141.5, lost=3)
    report.add_load_cost(step, report.reference_of(step))
    assert report.verdict(step, 5.0) == "3 frames lost"


def test_pcmu_steps_are_still_judged_on_bridge_added_over_the_relay() -> None:
    """Without a reference, the relay at the same N is subtracted, as before."""
    step = _step(10, 8.0)
    report.add_bridge_cost(step, {10: _step(10, 1.0)})
    assert report.verdict(step, 5.0) == "p99 added 7.00 ms > 5 ms"
