"""The GPT-Live against Realtime comparison of `--api both`: CPU per call, the ratio, and the table
the report prints. Pure functions over step dicts, as the orchestrator builds them."""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks.load import compare, report


def _step(server: str, n: int, cpu: float | None, **extra: Any) -> dict[str, Any]:
    return {"server": server, "n": n, "server_cpu": cpu, "rtt_ms": [1.0, 4.0, 9.0],
            "added_ms": [0.5, 2.0, 8.0], "echoed": 100, "sent": 100, "lost": 0, "late": 0,
            "failed": 0, "dropped_calls": 0, "harness_cpu": 40.0, "harness_lag_ms": [0, 1, 2],
            "verdict": "ok", **extra}


def test_cpu_per_call_is_the_servers_cpu_over_n_and_the_ratio_is_live_over_realtime() -> None:
    """60% of a core for 150 calls is 0.4% a call; GPT-Live at 66% is 1.1 times that."""
    realtime, live = _step("callbridge", 150, 60.0), _step("callbridge-live", 150, 66.0)
    assert compare.cpu_per_call(realtime) == pytest.approx(0.4)
    assert compare.ratio(realtime, live) == pytest.approx(1.1)


def test_no_ratio_without_the_servers_cpu() -> None:
    """Another bridge measured without its pid has no CPU: the ratio is unknown, not zero."""
    assert compare.ratio(_step("callbridge", 150, None), _step("callbridge-live", 150, 66.0)) \
        is None


def test_the_table_pairs_steps_by_n_and_shows_each_apis_figures() -> None:
    """A step only one API reached has no row; a row shows both CPUs, the ratio, lost and late
    (realtime/live), and the silence the GPT-Live server appended."""
    realtime = [_step("callbridge", 100, 40.0), _step("callbridge", 150, 60.0)]
    live = [_step("callbridge-live", 150, 66.0, lost=3, late=7, silence_frames=12,
                  appends=90_012)]
    lines = compare.table(realtime, live).splitlines()
    assert len(lines) == 3  # two header lines, one row
    assert lines[2].split() == ["150", "60", "/", "0.400", "66", "/", "0.440", "1.10", "0/3",
                                "0/7", "4.00/4.00", "2.00/2.00", "12/90012"]


def test_the_report_of_a_both_run_has_both_tables_and_the_comparison() -> None:
    """`--api both`: the Realtime table, the GPT-Live table, then the comparison."""
    result = {"machine": {"cpu": "test CPU", "cores": "2", "python": "3.11", "kernel": "6"},
              "pinning": "pinned", "settings": "s", "audio": "pcmu", "bridge_name": "callbridge",
              "relay": [], "bridge": [_step("callbridge", 150, 60.0)],
              "live": {"name": "callbridge-live", "steps": [_step("callbridge-live", 150, 66.0)],
                       "idle_rss_mb": 120.0}}
    text = report.render(result)
    assert text.index("callbridge rtt ms") < text.index("callbridge-live rtt ms") \
        < text.index("GPT-Live against Realtime")
