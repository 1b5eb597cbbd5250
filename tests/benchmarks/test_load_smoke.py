"""The capacity harness's smoke run (`python -m benchmarks.load --smoke`), so it does not rot.

Five calls for three seconds through the real server and through the relay baseline, in the
harness's own processes: no frame may be lost, the table must be printed, and every process the
harness started must be gone afterwards — with μ-law passthrough (frames matched by tag), with
`--audio pcm16` (the server resamples; frames matched by byte offset) and with `--api live` (a
GPT-Live agent against the echo speaking GPT-Live; tagged frames). The full ramp is run on demand
(docs/benchmarks.md).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _smoke(*options: str) -> subprocess.CompletedProcess[str]:
    """`python -m benchmarks.load --smoke` with `options`; skips where it cannot run pinned."""
    command = [sys.executable, "-m", "benchmarks.load", "--smoke", *options]
    if shutil.which("taskset") is None:
        if os.environ.get("CI") != "true":
            pytest.skip("taskset (util-linux) is missing: the harness pins processes to cores")
        command.append("--no-pin")  # CI must not skip: run unpinned, which the output says
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=False)


def _assert_every_frame_came_back(result: subprocess.CompletedProcess[str],
                                  bridge: str = "callbridge", relay: bool = True) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"{bridge} rtt ms" in result.stdout, output
    assert ("zero-logic relay" in result.stdout) is relay, output
    assert "saturation:" in result.stdout, output
    smoke = re.search(r"^smoke: (.*)$", result.stdout, re.MULTILINE)
    assert smoke is not None, output
    runs = re.findall(r"([\w-]+) N=5 (\d+) frames, (\d+) echoed, (\d+) lost", smoke.group(1))
    assert {name for name, *_ in runs} == {bridge, *(["relay"] if relay else [])}, smoke.group(1)
    for name, sent, echoed, lost in runs:
        assert int(sent) >= 500, f"{name}: only {sent} frames in 3 s of 5 calls"
        assert int(lost) == 0, f"{name} lost {lost} of {sent} frames"
        assert int(echoed) == int(sent), f"{name}: {echoed} of {sent} frames came back"
    pids = re.search(r"^pids: (.*) \(all stopped on exit\)$", result.stdout, re.MULTILINE)
    assert pids is not None, output
    started = [int(pid) for pid in re.findall(r"(\d+)", pids.group(1))]
    assert len(started) >= (4 if relay else 3)  # echo upstream, callbridge, relay, callers
    assert not [pid for pid in started if _alive(pid)], "processes left running"


def test_smoke_run_loses_no_frame_prints_the_table_and_leaves_nothing_running() -> None:
    """μ-law passthrough: every tagged frame comes back, through callbridge and the relay."""
    _assert_every_frame_came_back(_smoke())


def test_pcm16_smoke_run_matches_every_frame_by_offset_and_judges_against_the_reference(
) -> None:
    """PCM16: every frame comes back through the resampling server, matched by byte offset,
    and the verdict is on load-added latency over the first step, not on the relay."""
    result = _smoke("--audio", "pcm16")
    _assert_every_frame_came_back(result)
    assert "CALLBRIDGE_AUDIO_FORMAT=pcm16" in result.stdout, result.stdout
    assert "load-added" in result.stdout, result.stdout
    assert re.search(r"^budget \(pcm16\): .* \(the p99 at N=5, the unloaded reference\)",
                     result.stdout, re.MULTILINE), result.stdout


def test_gpt_live_smoke_run_echoes_every_tagged_frame_through_a_gpt_live_agent() -> None:
    """--api live: callbridge runs CALLBRIDGE_MODEL=gpt-live-1.1 against the echo speaking
    GPT-Live, and every tagged frame comes back, none lost (no relay and no webhook test: the
    μ-law smoke covers those, this one stays a few seconds)."""
    result = _smoke("--api", "live", "--no-relay", "--webhook-seconds", "0")
    _assert_every_frame_came_back(result, "callbridge-live", relay=False)
    assert "CALLBRIDGE_MODEL=gpt-live-1.1" in result.stdout, result.stdout
    assert re.search(r"silence appended \d+/\d+", result.stdout), result.stdout


def test_help_prints_every_option() -> None:
    """`--help` renders (argparse formats help strings with %, so a bare % once broke it)."""
    result = subprocess.run([sys.executable, "-m", "benchmarks.load", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "--quiet-cpu" in result.stdout
    assert "% of a core" in result.stdout
