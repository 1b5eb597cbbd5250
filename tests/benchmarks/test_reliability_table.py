"""The reliability table groups its rows by fault family, in `ORDER`."""

from __future__ import annotations

from typing import Any

from benchmarks.reliability_table import table


def fault(key: str) -> dict[str, Any]:
    injection = {"outcome": "continued", "turns_finished": 2, "turns_lost": 0, "frames_sent": 50,
                 "frames_lost": 0, "gap_s": 0.5, "healthy": True, "notes": {}}
    return {"key": key, "fault": key, "how": "-", "bug": None, "injections": [injection]}


def test_gpt_live_rows_follow_the_realtime_upstream_families_and_precede_twilio() -> None:
    """As the suite ran them (files alphabetically), then sorted by family."""
    ran = ["database-down", "live-control", "live-stall-5s", "twilio-drop", "control",
           "cut-mid-reply", "upstream-stall-5s", "upstream-error-x", "upstream-malformed-y"]
    rows = table({"faults": [fault(key) for key in ran]}).splitlines()[2:]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [
        "control", "cut-mid-reply", "upstream-stall-5s", "upstream-error-x",
        "upstream-malformed-y", "live-control", "live-stall-5s", "twilio-drop", "database-down"]
