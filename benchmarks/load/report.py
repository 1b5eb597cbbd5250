"""The load run's results: percentiles, the budget, the table, the saturation verdict, the plot.

Two budgets. With `--audio pcmu`, **bridge-added** latency: callbridge's round trip minus the
zero-logic relay's at the same N. With `--audio pcm16` the relay cannot be the reference (it does
not resample, and libsoxr alone holds audio back tens of ms each way), so the budget is on
**load-added** latency: the step's p99 round trip minus the p99 at the ramp's first step (the
unloaded reference).

With `--api both` the GPT-Live server's table follows the Realtime one, and then the comparison
of the two (`compare`). Pure formatting over the per-step dicts the orchestrator collects
(`run.py`), except `write()`
(the table as text, the raw results as JSON) and `plot()` (a PNG; matplotlib is imported only
here and only when a plot is asked for, so the harness runs without it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.load import compare

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


def reference_of(step: dict[str, Any]) -> dict[str, Any] | None:
    """The unloaded reference a pcm16 ramp's first step gives: its N and p99, if it echoed."""
    p99 = step["rtt_ms"][1]
    if not step["echoed"] or p99 != p99:
        return None
    return {"n": step["n"], "p99_ms": p99}


def add_load_cost(step: dict[str, Any], reference: dict[str, Any] | None) -> None:
    """Load-added latency (pcm16): the step's p99 round trip minus the reference's p99."""
    step["reference"] = reference
    step["load_added_p99_ms"] = (step["rtt_ms"][1] - reference["p99_ms"]
                                 if reference is not None and step["echoed"] else None)


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
    if "reference" in step:  # pcm16: against the unloaded reference, not the relay
        reference, load = step["reference"], step.get("load_added_p99_ms")
        if reference is None:
            reasons.append("no unloaded reference (the first step echoed nothing)")
        elif load is not None and load > budget_ms:
            reasons.append(f"p99 load-added {load:.2f} ms > {budget_ms:g} ms (over "
                           f"{reference['p99_ms']:.2f} ms at N={reference['n']})")
        return "ok" if not reasons else "; ".join(reasons)
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


def _machine_head() -> tuple[str, str]:
    """The columns every bridge table ends with: frames, loss, the machine, the verdict."""
    return ((f"{'frames':>8} {'lost':>5} {'late':>5} {'srv CPU%':>8} {'RSS MB':>7} "
             f"{'KB/call':>8} {'healthz ms':>16} {'harn CPU%':>9} {'harn lag ms':>12} "
             f"{'other%':>6}  verdict"),
            (f"{'':>8} {'':>5} {'':>5} {'':>8} {'':>7} {'':>8} {'p50/p99/max':>16} {'':>9} "
             f"{'p99/max':>12} {'CPU':>6}"))


def _machine_cells(s: dict[str, Any]) -> str:
    return (f"{s['sent']:>8} {s['lost']:>5} {s['late']:>5} {_f(s.get('server_cpu'), 0):>8} "
            f"{_f(s.get('server_rss_mb'), 0):>7} {_f(s.get('rss_per_call_kb'), 0):>8} "
            f"{_triple(s.get('healthz_ms'), 1):>16} {_f(s['harness_cpu'], 0):>9} "
            f"{_triple(s['harness_lag_ms'][1:], 1):>12} {_f(s.get('other_cpu'), 0):>6}  "
            f"{s['verdict']}")


def _relay_cell(s: dict[str, Any]) -> str:
    if not s.get("baseline"):
        return "—"
    relay = _triple(s["baseline"][:2])
    return relay + "*" if s.get("baseline_n") not in (None, s["n"]) else relay


def bridge_table(steps: list[dict[str, Any]], name: str = "callbridge") -> str:
    if any("reference" in s for s in steps):
        return pcm16_table(steps, name)
    tail, tail_sub = _machine_head()
    lines = [f"{'N':>5} {name + ' rtt ms':>20} {'relay rtt ms':>13} {'added ms':>20} {tail}",
             f"{'':>5} {'p50/p99/max':>20} {'p50/p99':>13} {'p50/p99/max':>20} {tail_sub}"]
    for s in steps:
        lines.append(f"{s['n']:>5} {_triple(s['rtt_ms']):>20} {_relay_cell(s):>13} "
                     f"{_triple(s.get('added_ms')):>20} {_machine_cells(s)}")
    return "\n".join(lines)


def pcm16_table(steps: list[dict[str, Any]], name: str = "callbridge") -> str:
    """The bridge table of a pcm16 run: load-added p99 (the budget) and its reference; the
    relay's round trip and callbridge's excess over it are context (the relay does not
    resample)."""
    tail, tail_sub = _machine_head()
    lines = [f"{'N':>5} {name + ' rtt ms':>20} {'relay rtt ms':>13} {'over relay':>13} "
             f"{'reference':>14} {'load-added':>10} {tail}",
             f"{'':>5} {'p50/p99/max':>20} {'p50/p99':>13} {'p50/p99 ms':>13} "
             f"{'p99 ms at N':>14} {'p99 ms':>10} {tail_sub}"]
    for s in steps:
        reference = s.get("reference")
        ref = f"{reference['p99_ms']:.2f}@{reference['n']}" if reference else "—"
        over = s.get("added_ms")
        lines.append(f"{s['n']:>5} {_triple(s['rtt_ms']):>20} {_relay_cell(s):>13} "
                     f"{_triple(over[:2] if over else None):>13} {ref:>14} "
                     f"{_f(s.get('load_added_p99_ms')):>10} {_machine_cells(s)}")
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


def pcm16_budget(result: dict[str, Any]) -> str:
    """The pcm16 budget in words, with the reference the run measured."""
    budget = result["budget"]
    reference = budget.get("reference")
    limit = (f"p99 round trip ≤ {reference['p99_ms']:.2f} ms (the p99 at N={reference['n']}, "
             f"the unloaded reference) + {budget['ms']:g} ms = "
             f"{reference['p99_ms'] + budget['ms']:.2f} ms" if reference else
             f"p99 round trip ≤ the first step's p99 + {budget['ms']:g} ms (no reference: the "
             "first step echoed nothing)")
    return f"no frame lost, no call dropped or failed to open, {limit}"


def render(result: dict[str, Any]) -> str:
    """The whole report as text: machine, settings, the tables, saturation, webhook, profile."""
    m, s = result["machine"], result["settings"]
    out = [f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
           f"Linux {m['kernel']}; {result['pinning']}",
           f"settings: {s}"]
    pcm16 = result.get("audio") == "pcm16"
    if result.get("relay"):
        out += ["", "zero-logic relay (baseline, same hops, on the server's core"
                + ("; μ-law passthrough, no resampling: context in pcm16 mode, not the "
                   "budget):" if pcm16 else "):"),
                relay_table(result["relay"])]
    if result.get("bridge"):
        name = result["bridge_name"]
        head = (f"{name}, CALLBRIDGE_AUDIO_FORMAT=pcm16 (load-added = its p99 round trip − its "
                "p99 at the reference, the ramp's first step, unloaded; over relay = its round "
                "trip − the relay's, which includes libsoxr's hold-back; * = relay measured at a "
                "smaller N):" if pcm16 else
                f"{name} (bridge-added = its round trip − the relay's at the same N; * = relay "
                "measured at a smaller N):")
        out += ["", head, bridge_table(result["bridge"], name),
                "", "saturation: " + saturation(result["bridge"])]
        if pcm16:
            out.append("budget (pcm16): " + pcm16_budget(result))
    if result.get("idle_rss_mb") is not None:
        out.append(f"server RSS idle (after warm-up): {result['idle_rss_mb']:.0f} MB")
    live = result.get("live")
    if live:
        out += ["", f"{live['name']}, a GPT-Live agent (bridge-added = its round trip − the "
                "relay's at the same N; * = relay measured at a smaller N):",
                bridge_table(live["steps"], live["name"]),
                "", "saturation: " + saturation(live["steps"])]
        if live.get("idle_rss_mb") is not None:
            out.append(f"server RSS idle (after warm-up): {live['idle_rss_mb']:.0f} MB")
        out += ["", "GPT-Live against Realtime, the same N one after the other (server CPU "
                "per call = server CPU % of one core / N; ratio = live / realtime):",
                compare.table(result["bridge"], live["steps"])]
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
    for steps in (slim.get("relay", []), slim.get("bridge", []),
                  slim.get("live", {}).get("steps", [])):
        for step in steps:
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

    reference = result.get("budget", {}).get("reference")  # pcm16 runs only
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
        if added and not reference:  # pcm16: over the relay is mostly libsoxr, not the budget
            lat.plot(*zip(*added, strict=True), "s-", color="C3", label="bridge-added p99")
        cpu.plot(ns, [s.get("server_cpu") for s in bridge], "o-", color="C0",
                 label=f"{name} CPU")
        cpu.plot(ns, [s["harness_cpu"] for s in bridge], "^--", color="C2",
                 label=f"harness CPU ({name} run)")
        per_call = [(s["n"], s["rss_per_call_kb"]) for s in bridge if s.get("rss_per_call_kb")]
        if per_call:
            mem.plot(*zip(*per_call, strict=True), "o-", color="C0", label=f"{name} RSS per call")
    live = result.get("live")
    steps = [s for s in live["steps"] if ok(s["rtt_ms"][1])] if live else []
    if steps:  # --api both: the GPT-Live server beside the Realtime one
        assert live is not None
        ns, other = [s["n"] for s in steps], live["name"]
        lat.plot(ns, [s["rtt_ms"][1] for s in steps], "D-", color="C4", label=f"{other} rtt p99")
        cpu.plot(ns, [s.get("server_cpu") for s in steps], "D-", color="C4",
                 label=f"{other} CPU")
        per_call = [(s["n"], s["rss_per_call_kb"]) for s in steps if s.get("rss_per_call_kb")]
        if per_call:
            mem.plot(*zip(*per_call, strict=True), "D-", color="C4",
                     label=f"{other} RSS per call")
    if relay:
        ns = [s["n"] for s in relay]
        lat.plot(ns, [s["rtt_ms"][1] for s in relay], "x-", color="C1", label="relay rtt p99")
        lat.plot(ns, [s["rtt_ms"][0] for s in relay], "x--", color="C1", alpha=0.6,
                 label="relay rtt p50")
        cpu.plot(ns, [s.get("server_cpu") for s in relay], "x-", color="C1", label="relay CPU")
    if reference:
        lat.axhline(reference["p99_ms"] + budget_ms, color="grey", linestyle=":",
                    label=f"budget: p99 at N={reference['n']} + {budget_ms:g} ms")
    else:
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
    audio = ", CALLBRIDGE_AUDIO_FORMAT=pcm16" if reference else ""
    fig.suptitle(f"{name}{audio}: {result['machine']['cpu']}, one core for the server "
                 f"({result['pinning']})", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
