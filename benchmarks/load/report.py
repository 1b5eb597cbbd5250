"""The load run's results: percentiles, the table, the saturation verdict and the plot.

Pure formatting over the per-step dicts the orchestrator collects (`run.py`), except `write()`
(the table as text, the raw results as JSON) and `plot()` (a PNG; matplotlib is imported only
here and only when a plot is asked for, so the harness runs without it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BIN_MS = 0.01  # the callers' histogram bins are 10 µs


def quantiles(hist: dict[str, int], qs: tuple[float, ...] = (0.5, 0.99)) -> list[float]:
    """Round-trip quantiles in ms (bin centres) from a sparse histogram {bin: count}."""
    bins = sorted((int(k), n) for k, n in hist.items())
    total = sum(n for _, n in bins)
    if total == 0:
        return [float("nan")] * len(qs)
    out = []
    for q in qs:
        rank = max(1, int(q * total + 0.999999))
        seen = 0
        for index, n in bins:
            seen += n
            if seen >= rank:
                out.append((index + 0.5) * BIN_MS)
                break
    return out


def baseline_for(n: int, relay: dict[int, dict[str, Any]]) -> dict[str, Any] | None:
    """The relay step at `n`, else the largest one below it."""
    below = [m for m in relay if m <= n]
    return relay[max(below)] if below else None


def add_bridge_cost(step: dict[str, Any], relay: dict[int, dict[str, Any]]) -> None:
    """Bridge-added latency: callbridge's round trip minus the relay's at the same N.

    p50 and p99 subtract the relay's p50 and p99; max subtracts the relay's p50 (the worst frame
    against the typical cost of the hops)."""
    base = baseline_for(step["n"], relay)
    if base is None or not step["echoed"]:
        step["added_ms"], step["baseline_n"] = None, None
        return
    p50, p99, high = step["rtt_ms"]
    step["added_ms"] = [p50 - base["rtt_ms"][0], p99 - base["rtt_ms"][1], high - base["rtt_ms"][0]]
    step["baseline_n"] = base["n"]


def verdict(step: dict[str, Any], budget_ms: float) -> str:
    """"ok", or why this step breaks the budget."""
    reasons = []
    if step.get("failed"):
        reasons.append(f"{step['failed']} calls failed to open")
    if step.get("dropped_calls"):
        reasons.append(f"{step['dropped_calls']} calls dropped")
    if step["lost"]:
        reasons.append(f"{step['lost']} frames lost")
    if not step["echoed"]:
        reasons.append("no frame came back")
    added = step.get("added_ms")
    if added is not None and added[1] > budget_ms:
        reasons.append(f"p99 added {added[1]:.2f} ms > {budget_ms:g} ms")
    elif added is None and step.get("rtt_ms") and step["rtt_ms"][1] > budget_ms:
        reasons.append(f"p99 round trip {step['rtt_ms'][1]:.2f} ms > {budget_ms:g} ms "
                       "(no baseline)")
    return "ok" if not reasons else "; ".join(reasons)


def _f(value: float | None, digits: int = 2) -> str:
    if value is None or value != value:  # None or NaN
        return "—"
    return f"{value:.{digits}f}"


def _triple(values: list[float] | None, digits: int = 2) -> str:
    if not values:
        return "—"
    return "/".join(_f(v, digits) for v in values)


def bridge_table(steps: list[dict[str, Any]], name: str = "callbridge") -> str:
    head = (f"{'N':>5} {name + ' rtt ms':>20} {'relay rtt ms':>13} {'added ms':>20} "
            f"{'frames':>8} {'lost':>5} {'late':>5} {'srv CPU%':>8} {'RSS MB':>7} "
            f"{'KB/call':>8} {'healthz ms':>16} {'harn CPU%':>9} {'harn lag ms':>12} "
            f"{'other%':>6}  verdict")
    sub = (f"{'':>5} {'p50/p99/max':>20} {'p50/p99':>13} {'p50/p99/max':>20} "
           f"{'':>8} {'':>5} {'':>5} {'':>8} {'':>7} {'':>8} {'p50/p99/max':>16} {'':>9} "
           f"{'p99/max':>12} {'CPU':>6}")
    lines = [head, sub]
    for s in steps:
        relay = "—"
        if s.get("baseline"):
            relay = _triple(s["baseline"][:2])
            if s.get("baseline_n") not in (None, s["n"]):
                relay += "*"
        lines.append(
            f"{s['n']:>5} {_triple(s['rtt_ms']):>20} {relay:>13} {_triple(s.get('added_ms')):>20} "
            f"{s['sent']:>8} {s['lost']:>5} {s['late']:>5} {_f(s.get('server_cpu'), 0):>8} "
            f"{_f(s.get('server_rss_mb'), 0):>7} {_f(s.get('rss_per_call_kb'), 0):>8} "
            f"{_triple(s.get('healthz_ms'), 1):>16} {_f(s['harness_cpu'], 0):>9} "
            f"{_triple(s['harness_lag_ms'][1:], 1):>12} {_f(s.get('other_cpu'), 0):>6}  "
            f"{s['verdict']}")
    return "\n".join(lines)


def relay_table(steps: list[dict[str, Any]]) -> str:
    lines = [f"{'N':>5} {'relay rtt ms p50/p99/max':>26} {'frames':>8} {'lost':>5} {'late':>5} "
             f"{'relay CPU%':>10} {'harn CPU%':>9} {'callers':>8} {'echo':>6} "
             f"{'harn lag ms p99/max':>20} {'other CPU%':>10}"]
    for s in steps:
        lines.append(
            f"{s['n']:>5} {_triple(s['rtt_ms']):>26} {s['sent']:>8} {s['lost']:>5} "
            f"{s['late']:>5} {_f(s.get('server_cpu'), 0):>10} {_f(s['harness_cpu'], 0):>9} "
            f"{_f(s['callers_cpu'], 0):>8} {_f(s['echo_cpu'], 0):>6} "
            f"{_triple(s['harness_lag_ms'][1:], 1):>20} {_f(s.get('other_cpu'), 0):>10}")
    return "\n".join(lines)


def saturation(steps: list[dict[str, Any]]) -> str:
    passed = [s["n"] for s in steps if s["verdict"] == "ok"]
    failed = [s for s in steps if s["verdict"] != "ok"]
    if not steps:
        return "no step was measured"
    if not failed:
        return (f"no saturation up to N = {steps[-1]['n']}: every step met the budget "
                "(the largest step tried)")
    first = failed[0]
    best = max((n for n in passed if n < first["n"]), default=None)
    held = f"{best} calls is the largest N that met the budget" if best else "no step met it"
    return f"saturation at N = {first['n']} ({first['verdict']}); {held}"


def render(result: dict[str, Any]) -> str:
    """The whole report as text: machine, settings, the tables, saturation, webhook, profile."""
    m, s = result["machine"], result["settings"]
    out = [f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
           f"Linux {m['kernel']}; {result['pinning']}",
           f"settings: {s}"]
    if result.get("relay"):
        out += ["", "zero-logic relay (baseline, same hops, on the server's core):",
                relay_table(result["relay"])]
    if result.get("bridge"):
        out += ["", f"{result['bridge_name']} (bridge-added = its round trip − the relay's at "
                "the same N; * = relay measured at a smaller N):",
                bridge_table(result["bridge"], result["bridge_name"]),
                "", "saturation: " + saturation(result["bridge"])]
    if result.get("idle_rss_mb") is not None:
        out.append(f"server RSS idle (after warm-up): {result['idle_rss_mb']:.0f} MB")
    hook = result.get("webhook")
    if hook:
        out += ["", (f"webhook: {hook['requests']} × POST /voice at {hook['rate']:g}/s for "
                     f"{hook['seconds']:.1f} s (each followed by the `completed` status callback; "
                     "each webhook opens an upstream socket): /voice p50/p99/max "
                     f"{_triple(hook['voice_ms'], 1)} ms, status callback "
                     f"{_triple(hook['status_ms'], 1)} ms, {hook['failed']} failed, "
                     f"server CPU {_f(hook.get('server_cpu'), 0)}%, other processes "
                     f"{_f(hook.get('other_cpu'), 0)}%")]
    for text in result.get("profiles", []):
        out += ["", text]
    return "\n".join(out)


def write(result: dict[str, Any], text: str, out_dir: Path, stem: str = "load") -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    table, raw = out_dir / f"{stem}.txt", out_dir / f"{stem}.json"
    table.write_text(text + "\n")
    slim = json.loads(json.dumps(result))
    for group in ("relay", "bridge"):
        for step in slim.get(group, []):
            step.pop("hist", None)
    raw.write_text(json.dumps(slim, indent=1) + "\n")
    return [table, raw]


def plot(result: dict[str, Any], path: Path, budget_ms: float) -> Path | None:
    """Latency, CPU and memory against N as a PNG; None (with a hint) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot skipped: matplotlib is not installed (pip install matplotlib)")
        return None
    def ok(value: float | None) -> bool:  # plottable on the log axis
        return value is not None and value == value and value > 0

    bridge = [s for s in result.get("bridge", []) if ok(s["rtt_ms"][1])]
    relay = [s for s in result.get("relay", []) if ok(s["rtt_ms"][1])]
    name = result.get("bridge_name", "callbridge")
    fig, (lat, cpu, mem) = plt.subplots(1, 3, figsize=(16, 4.8))
    if bridge:
        ns = [s["n"] for s in bridge]
        lat.plot(ns, [s["rtt_ms"][1] for s in bridge], "o-", color="C0", label=f"{name} rtt p99")
        lat.plot(ns, [s["rtt_ms"][0] for s in bridge], "o--", color="C0", alpha=0.6,
                 label=f"{name} rtt p50")
        added = [(s["n"], s["added_ms"][1]) for s in bridge
                 if s.get("added_ms") and ok(s["added_ms"][1])]
        if added:
            lat.plot(*zip(*added, strict=True), "s-", color="C3", label="bridge-added p99")
        cpu.plot(ns, [s.get("server_cpu") for s in bridge], "o-", color="C0",
                 label=f"{name} CPU")
        cpu.plot(ns, [s["harness_cpu"] for s in bridge], "^--", color="C2",
                 label=f"harness CPU ({name} run)")
        per_call = [(s["n"], s["rss_per_call_kb"]) for s in bridge if s.get("rss_per_call_kb")]
        if per_call:
            mem.plot(*zip(*per_call, strict=True), "o-", color="C0", label=f"{name} RSS per call")
    if relay:
        ns = [s["n"] for s in relay]
        lat.plot(ns, [s["rtt_ms"][1] for s in relay], "x-", color="C1", label="relay rtt p99")
        lat.plot(ns, [s["rtt_ms"][0] for s in relay], "x--", color="C1", alpha=0.6,
                 label="relay rtt p50")
        cpu.plot(ns, [s.get("server_cpu") for s in relay], "x-", color="C1", label="relay CPU")
    lat.axhline(budget_ms, color="grey", linestyle=":", label=f"budget {budget_ms:g} ms")
    lat.set(xlabel="concurrent calls N", ylabel="ms", title="round trip through the bridge",
            yscale="log")
    cpu.axhline(100, color="grey", linestyle=":")
    cpu.set(xlabel="concurrent calls N", ylabel="% of one core", title="CPU")
    mem.axhline(1024, color="grey", linestyle=":", label="target 1 MB")
    mem.set(xlabel="concurrent calls N", ylabel="KB", title="server RSS per call")
    for axis in (lat, cpu, mem):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    fig.suptitle(f"{name}: {result['machine']['cpu']}, one core for the server "
                 f"({result['pinning']})", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
