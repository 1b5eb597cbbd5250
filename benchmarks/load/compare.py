"""GPT-Live against Realtime in one run (`--api both`): the per-step comparison the report prints.

At each N the run measures the Realtime server (`callbridge`) and then the GPT-Live one
(`callbridge-live`), each from no calls, so both meet the same machine minutes apart at most. What
is compared is what the bridge costs, not the model: server CPU per call (the server's CPU, as %
of one core, over N), its ratio live/realtime, the frames lost and late, and p99 round trip and
p99 bridge-added latency (over the relay at the same N) for each; and the μ-law silence frames
the GPT-Live server appended during the hold (its filler for stalled caller input, counted by the
echo) of all the frames it appended.

Pure formatting over the step dicts the orchestrator builds (`run.py`); no I/O.
"""

from __future__ import annotations

from typing import Any


def cpu_per_call(step: dict[str, Any]) -> float | None:
    """The server's CPU per call at this step, in % of one core (None without a server pid)."""
    cpu = step.get("server_cpu")
    return cpu / step["n"] if cpu is not None and step["n"] else None


def ratio(realtime: dict[str, Any], live: dict[str, Any]) -> float | None:
    """GPT-Live's CPU per call over Realtime's at the same N (None when either is unknown)."""
    rt, lv = cpu_per_call(realtime), cpu_per_call(live)
    return lv / rt if rt and lv is not None else None


def pairs(realtime: list[dict[str, Any]], live: list[dict[str, Any]],
          ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The steps measured for both, by N, in ramp order."""
    by_n = {s["n"]: s for s in live}
    return [(s, by_n[s["n"]]) for s in realtime if s["n"] in by_n]


def _f(value: float | None, digits: int) -> str:
    return "—" if value is None or value != value else f"{value:.{digits}f}"


def _p99_added(step: dict[str, Any]) -> float | None:
    added = step.get("added_ms")
    return added[1] if added else None


def _both(rt: str, lv: str) -> str:
    return f"{rt}/{lv}"


def _silence(step: dict[str, Any]) -> str:
    if "silence_frames" not in step:
        return "—"
    return f"{step['silence_frames']}/{step['appends']}"


def line(realtime: dict[str, Any], live: dict[str, Any]) -> str:
    """One step's comparison as a progress line."""
    return (f"[live vs realtime] N={realtime['n']}: server CPU per call "
            f"{_f(cpu_per_call(realtime), 3)}% / {_f(cpu_per_call(live), 3)}% of a core, "
            f"ratio live/realtime {_f(ratio(realtime, live), 2)}; lost "
            f"{realtime['lost']}/{live['lost']}, late {realtime['late']}/{live['late']}, "
            f"p99 added {_f(_p99_added(realtime), 2)}/{_f(_p99_added(live), 2)} ms; live "
            f"silence appended {_silence(live)}")


def table(realtime: list[dict[str, Any]], live: list[dict[str, Any]]) -> str:
    """Per step: CPU and CPU per call for each API, the ratio, lost and late frames, p99 round
    trip and p99 bridge-added latency (each as realtime/live)."""
    lines = [f"{'N':>5} {'realtime CPU':>14} {'live CPU':>14} {'ratio':>7} {'lost':>11} "
             f"{'late':>11} {'p99 rtt ms':>13} {'p99 added ms':>13} {'live silence':>15}",
             f"{'':>5} {'% / %/call':>14} {'% / %/call':>14} {'live/rt':>7} {'rt/live':>11} "
             f"{'rt/live':>11} {'rt/live':>13} {'rt/live':>13} {'frames/appends':>15}"]
    for rt, lv in pairs(realtime, live):
        lines.append(
            f"{rt['n']:>5} "
            f"{_f(rt.get('server_cpu'), 0) + ' / ' + _f(cpu_per_call(rt), 3):>14} "
            f"{_f(lv.get('server_cpu'), 0) + ' / ' + _f(cpu_per_call(lv), 3):>14} "
            f"{_f(ratio(rt, lv), 2):>7} {_both(str(rt['lost']), str(lv['lost'])):>11} "
            f"{_both(str(rt['late']), str(lv['late'])):>11} "
            f"{_both(_f(rt['rtt_ms'][1], 2), _f(lv['rtt_ms'][1], 2)):>13} "
            f"{_both(_f(_p99_added(rt), 2), _f(_p99_added(lv), 2)):>13} {_silence(lv):>15}")
    return "\n".join(lines)
