"""A smoke run of the capture-cost benchmark, so it does not rot."""

from __future__ import annotations

import pytest

from benchmarks import capture_cost


def test_the_capture_cost_benchmark_prints_its_four_figures(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Both per-frame costs, the write time and the file size of a captured minute."""
    capture_cost.main()
    out = capsys.readouterr().out
    for row in ("no capture", "captured", "save() of one minute", "capture file"):
        assert row in out
