"""The load run: start the processes, ramp the calls, measure each step, report.

Order of a run (each process pinned with `taskset`: the server under test — callbridge, or the
relay — on CPU 0; the echo upstream, the callers and this orchestrator on CPU 1):

1. start the echo upstream, callbridge (or wait for `--target-url`), the relay and the callers;
   with `--api live` the echo speaks GPT-Live and callbridge runs a GPT-Live agent against it
   (the relay keeps a Realtime echo of its own); with `--api both`, two echo upstreams and two
   callbridge processes on the server's core, `callbridge` (Realtime) and `callbridge-live`;
2. warm up: 5 calls for 2 s through each server, then callbridge's idle RSS;
3. for each N in `--steps`, the relay (the baseline) and then callbridge (with `--api both`:
   the Realtime one, then the GPT-Live one), each from no calls:
   open N calls at `--rate` per second, settle, hold `--hold` s measuring, hang up. The ramp stops
   at the first step that breaks the budget (p99 bridge-added > `--budget-ms`, or any frame lost,
   call dropped or call that failed to open; with `--audio pcm16`, p99 load-added — over the
   first step's p99 — instead of bridge-added). Before each window the run waits for the rest of
   the machine to be quiet (`--quiet-cpu`), and measures again if it was not (`--retries`);
4. the webhook test on the idle server: `/voice` at `--webhook-rate` per second.

During a hold: the server's CPU and RSS from /proc, a `GET /healthz` every 100 ms on a fresh
connection (its latency is the server's event-loop lag plus a small constant — the idle figure is
in the first row), the harness's own CPU (callers + echo upstream + orchestrator) and the callers'
timer-loop lag. Optionally py-spy samples the server during the hold at `--profile-at` N.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.load import compare, profile, report
from benchmarks.load.callers import Target
from benchmarks.load.server import (
    LIVE_MODEL,
    PUBLIC_URL,
    CpuMeter,
    MachineMeter,
    Proc,
    Processes,
    http_get,
    http_get_ms,
    machine,
    rss_kb,
    start_callbridge,
    taskset_available,
)

DEFAULT_STEPS = "10,25,50,100,200,300,400,500,700,1000"


@dataclass
class Server:
    """The server under test as the harness sees it."""

    name: str
    target: Target
    pid: int | None
    health: tuple[str, int, str] | None  # host, port, path of the health probe
    api: str = "realtime"  # the model API it speaks to its echo upstream: realtime or live
    echo: tuple[str, int] | None = None  # its GPT-Live echo's host and port, for `/stats`


BRIDGE_NAMES = {"realtime": "callbridge", "live": "callbridge-live"}
ECHO_PATHS = {"realtime": "/v1/realtime", "live": "/v1/live/sessions"}


class Run:
    def __init__(self, args: argparse.Namespace, procs: Processes) -> None:
        self.args = args
        self.procs = procs
        self.callers: Proc | None = None
        self.echoes: list[Proc] = []  # the echo upstreams (one per model API measured)
        self.pinned = args.pin and taskset_available()
        self.server_cpu = args.server_cpu if self.pinned else None
        self.harness_cpu = args.harness_cpu if self.pinned else None
        self.live = 0

    def say(self, text: str) -> None:
        print(text, flush=True)

    # ------------------------------------------------------------------ one step

    async def step(self, server: Server, n: int) -> dict[str, Any]:
        args, callers = self.args, self.callers
        assert callers is not None
        label = f"[{server.name}] N={n}"
        self.say(f"{label}: opening {n} calls at {args.rate:g}/s")
        ramp = await callers.ask({"cmd": "ramp", "calls": n, "rate": args.rate},
                                 within=60 + 3 * n / args.rate)
        self.live = ramp["calls"]
        if ramp["failed"]:
            self.say(f"{label}: {ramp['failed']} calls failed to open: {ramp['errors']}")
        await asyncio.sleep(args.settle)
        for attempt in range(args.retries + 1):
            await self._wait_quiet(label)
            step = await self._measure(server, n, ramp, label)
            if step["other_cpu"] <= args.quiet_cpu or attempt == args.retries:
                break
            self.say(f"{label}: other processes used {step['other_cpu']:.0f}% CPU during the "
                     "window; measuring again")
        step["attempts"] = attempt + 1
        return step

    def _ours(self) -> list[int]:
        return [os.getpid(), *(p.pid for p in self.procs.procs)]

    async def _wait_quiet(self, label: str) -> None:
        """Wait (up to --quiet-wait s) until what else runs on this shared machine uses at most
        --quiet-cpu % of a core, so a window measures the server, not its neighbours."""
        args = self.args
        if args.quiet_wait <= 0:
            return
        deadline = time.monotonic() + args.quiet_wait
        told = False
        while True:
            ours, machine_meter = CpuMeter(self._ours()), MachineMeter()
            await asyncio.sleep(1.0)
            other = machine_meter.read() - ours.read()
            if other <= args.quiet_cpu or time.monotonic() > deadline:
                if told:
                    self.say(f"{label}: other load now {other:.0f}%")
                return
            if not told:
                self.say(f"{label}: waiting for other processes to quiet down "
                         f"({other:.0f}% of a core > {args.quiet_cpu:g}%)")
                told = True

    async def _measure(self, server: Server, n: int, ramp: dict[str, Any],
                       label: str) -> dict[str, Any]:
        args, callers = self.args, self.callers
        assert callers is not None
        echoes = [echo.pid for echo in self.echoes]
        harness = [os.getpid(), callers.pid, *echoes]
        server_pids = [server.pid] if server.pid else []
        meters = {"server": CpuMeter(server_pids), "harness": CpuMeter(harness),
                  "callers": CpuMeter([callers.pid]), "echo": CpuMeter(echoes),
                  "ours": CpuMeter(self._ours()), "machine": MachineMeter()}
        progress = {"server": CpuMeter(server_pids), "harness": CpuMeter(harness)}
        appends = await self._echo_counts(server)
        await callers.ask({"cmd": "window"})
        began = time.monotonic()
        probes: list[float] = []
        prober = asyncio.ensure_future(self._probe(server, probes))
        spy = None
        if n in args.profile_at and server.pid and server.name != "relay" and profile.py_spy():
            audio = "" if args.audio == "pcmu" else f"-{args.audio}"
            out = self.procs.workdir / f"profile-{server.name}{audio}-{n}.raw"
            spy = (await profile.record(self.procs, server.pid, max(1.0, args.hold - 1), out,
                                        cpu=self.harness_cpu), out)
        try:
            while (left := args.hold - (time.monotonic() - began)) > 0:
                await asyncio.sleep(min(args.progress, left))
                rss = rss_kb(server.pid) if server.pid else None
                self.say(f"{label}: t={time.monotonic() - began:4.1f}s  "
                         f"server CPU {progress['server'].read():3.0f}%  "
                         f"RSS {(rss or 0) / 1024:5.0f} MB  "
                         f"harness CPU {progress['harness'].read():3.0f}%")
        finally:
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober
        cpu = {name: meter.read() for name, meter in meters.items()}
        rss = rss_kb(server.pid) if server.pid else None
        appended = await self._echo_counts(server)
        window = await callers.ask({"cmd": "report"}, within=60)
        step = self._step_result(server, n, ramp, window, cpu, rss, probes)
        if appends and appended:  # GPT-Live: the appends the echo heard during the hold
            step["appends"] = appended["appends"] - appends["appends"]
            step["silence_frames"] = appended["silent"] - appends["silent"]
        if spy is not None:
            await spy[0].process.wait()
            step["profile"] = self._profile_text(server, n, spy[1])
        return step

    def _step_result(self, server: Server, n: int, ramp: dict[str, Any],
                     window: dict[str, Any], cpu: dict[str, float], rss: int | None,
                     probes: list[float]) -> dict[str, Any]:
        p50, p99 = report.quantiles(window["hist"])
        probes.sort()
        step: dict[str, Any] = {
            "server": server.name, "n": n, "calls": window["calls"], "failed": ramp["failed"],
            "setup_ms": ramp["setup_ms"], "sent": window["sent"], "echoed": window["echoed"],
            "lost": window["lost"], "late": window["late"],
            "dropped_calls": window["dropped_calls"], "unmatched": window["unmatched"],
            "duplicates": window["duplicates"], "marks": window["marks"],
            "rtt_ms": [p50, p99, window["max_ms"]], "hist": window["hist"],
            "server_cpu": cpu["server"] if server.pid else None,
            "server_rss_mb": rss / 1024 if rss else None,
            "harness_cpu": cpu["harness"], "callers_cpu": cpu["callers"], "echo_cpu": cpu["echo"],
            "other_cpu": max(0.0, cpu["machine"] - cpu["ours"]),
            "harness_lag_ms": window["lag_ms"],
            "healthz_ms": ([probes[len(probes) // 2], probes[int(len(probes) * 0.99)],
                            probes[-1]] if probes else None),
        }
        return step

    async def _echo_counts(self, server: Server) -> dict[str, int] | None:
        """What the bridge's GPT-Live echo heard so far (appends, silent ones), or None."""
        if server.echo is None:
            return None
        body = await http_get(*server.echo, "/stats")
        counts: dict[str, int] | None = json.loads(body) if body else None
        return counts

    async def _probe(self, server: Server, out: list[float]) -> None:
        if server.health is None:
            return
        host, port, path = server.health
        while True:
            ms = await http_get_ms(host, port, path, within=2.0)
            if ms is not None:
                out.append(ms)
            await asyncio.sleep(0.1)

    def _profile_text(self, server: Server, n: int, raw: Path) -> str | None:
        if not raw.exists() or raw.stat().st_size == 0:
            self.say(f"py-spy wrote no samples; its log:\n{self.procs.procs[-1].tail()}"
                     if self.procs.procs else "py-spy wrote no samples")
            return None
        out_dir = self.args.out
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(raw, out_dir / raw.name)
        summary = profile.summarize(raw)
        return profile.format_summary(summary, f"py-spy profile of {server.name} at N={n}")

    # ------------------------------------------------------------------ ramps

    async def measure_at(self, server: Server, n: int) -> dict[str, Any]:
        """N calls to `server` from none, measured, hung up."""
        assert self.callers is not None
        await self.callers.ask({"cmd": "target", "target": asdict(server.target)})
        try:
            return await self.step(server, n)
        finally:
            await self.hang_up()

    async def hang_up(self) -> None:
        assert self.callers is not None
        if self.live:
            await self.callers.ask({"cmd": "hangup"}, within=30)
            self.live = 0
            await asyncio.sleep(0.5)

    def _line(self, s: dict[str, Any]) -> str:
        rtt = "/".join(f"{v:.2f}" for v in s["rtt_ms"])
        added, load = s.get("added_ms"), s.get("load_added_p99_ms")
        over = "added" if "reference" not in s else "over relay"
        more = f"  {over} p99 {added[1]:.2f} ms" if added else ""
        more += f"  load-added p99 {load:.2f} ms" if load is not None else ""
        cpu = f"{s['server_cpu']:.0f}%" if s.get("server_cpu") is not None else "n/a"
        if "silence_frames" in s:
            more += f"  silence appended {s['silence_frames']}/{s['appends']}"
        return (f"[{s['server']}] N={s['n']}: rtt p50/p99/max {rtt} ms{more}  "
                f"lost {s['lost']}/{s['sent']}  late {s['late']}  server CPU {cpu}  "
                f"harness CPU {s['harness_cpu']:.0f}%  → {s.get('verdict', 'measured')}")

    async def warm_up(self, server: Server) -> None:
        assert self.callers is not None
        await self.callers.ask({"cmd": "target", "target": asdict(server.target)})
        await self.callers.ask({"cmd": "ramp", "calls": 5, "rate": 50}, within=60)
        self.live = 5
        await asyncio.sleep(2.0)
        await self.hang_up()

    async def webhook_test(self, server: Server) -> dict[str, Any]:
        assert self.callers is not None
        args = self.args
        await self.callers.ask({"cmd": "target", "target": asdict(server.target)})
        self.say(f"[{server.name}] webhook test: POST /voice at {args.webhook_rate:g}/s for "
                 f"{args.webhook_seconds:g} s")
        await self._wait_quiet(f"[{server.name}] webhook test")
        meter = CpuMeter([server.pid] if server.pid else [])
        ours, machine_meter = CpuMeter(self._ours()), MachineMeter()
        hook = await self.callers.ask(
            {"cmd": "webhooks", "rate": args.webhook_rate, "seconds": args.webhook_seconds},
            within=60 + 3 * args.webhook_seconds)
        hook["server_cpu"] = meter.read() if server.pid else None
        hook["other_cpu"] = max(0.0, machine_meter.read() - ours.read())
        hook["rate"] = args.webhook_rate
        return hook


# ---------------------------------------------------------------------- the whole run


async def run(args: argparse.Namespace) -> int:
    """The whole run; SIGINT/SIGTERM cancel it, and every process it started is stopped."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    for sig in (signal.SIGINT, signal.SIGTERM):  # also when started with SIGINT ignored (`&`)
        loop.add_signal_handler(sig, main.cancel)
    workdir = Path(tempfile.mkdtemp(prefix="callbridge-load-"))
    try:
        async with Processes(workdir) as procs:
            return await _run(args, procs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


APIS = {"realtime": ("realtime",), "live": ("live",), "both": ("realtime", "live")}


async def _run(args: argparse.Namespace, procs: Processes) -> int:
    r = Run(args, procs)
    if r.pinned and r.harness_cpu is not None:
        os.sched_setaffinity(0, {r.harness_cpu})
    pinning = (f"server pinned to CPU {r.server_cpu}, harness (callers, echo upstream, "
               f"orchestrator) to CPU {r.harness_cpu} with taskset" if r.pinned
               else "NOT pinned (taskset missing, one CPU, or --no-pin)")
    r.say(f"load run: {pinning}")
    apis = APIS[args.api]
    echo_urls = await _start_echoes(r, args, procs, apis)
    bridges = [await _bridge_under_test(r, args, procs, echo_urls[api], api) for api in apis]
    for bridge in bridges:
        if bridge.api == "live":
            echo = urlsplit(echo_urls["live"])
            bridge.echo = (echo.hostname or "127.0.0.1", echo.port or 80)
    relay = None
    if not args.no_relay:
        relay_proc, relay_port = await procs.start_listener(
            "relay", "benchmarks.load.relay", ["--upstream", echo_urls["realtime"]],
            cpu=r.server_cpu)
        relay = Server("relay", Target(flow="plain",
                                       stream_url=f"ws://127.0.0.1:{relay_port}/twilio/stream"),
                       relay_proc.pid, ("127.0.0.1", relay_port, "/healthz"))
    r.callers = await procs.start(
        "callers", [sys.executable, "-m", "benchmarks.load.callers",
                    "--loss-ms", str(args.loss_ms), "--late-ms", str(args.late_ms),
                    "--audio", args.audio],
        cpu=r.harness_cpu)
    result: dict[str, Any] = {"machine": machine(), "pinning": pinning,
                              "settings": _settings(args), "audio": args.audio, "api": args.api,
                              "budget": {"kind": "load-added" if args.audio == "pcm16"
                                         else "bridge-added", "ms": args.budget_ms},
                              "bridge_name": bridges[0].name, "relay": [], "bridge": [],
                              "profiles": []}
    if not args.smoke:
        for server in (s for s in (*bridges, relay) if s is not None):
            r.say(f"[{server.name}] warm-up: 5 calls for 2 s")
            await r.warm_up(server)
        await asyncio.sleep(1.0)
    idle_kb = {b.name: rss_kb(b.pid) if b.pid else None for b in bridges}
    series: dict[str, list[dict[str, Any]]] = {b.name: [] for b in bridges}
    result["bridge"] = series[bridges[0].name]
    result["idle_rss_mb"] = _mb(idle_kb[bridges[0].name])
    if len(bridges) > 1:  # --api both: the GPT-Live bridge, compared step by step
        live = bridges[1]
        result["live"] = {"name": live.name, "steps": series[live.name],
                          "idle_rss_mb": _mb(idle_kb[live.name])}
    relay_by_n: dict[int, dict[str, Any]] = {}
    for n in args.steps:
        # interleaved: the relay at N, then each bridge at N, so all meet the same machine
        if relay is not None:
            base = await r.measure_at(relay, n)
            base["verdict"] = "baseline"
            result["relay"].append(base)
            r.say(r._line(base))
            if base["lost"] or base["failed"] or base["dropped_calls"]:
                r.say(f"[relay] lost frames or calls at N = {n}: the larger baselines reuse "
                      "the last clean one")
                relay = None
            else:
                relay_by_n[n] = base
        for bridge in bridges:
            step = await r.measure_at(bridge, n)
            _judge(step, series[bridge.name], relay_by_n, idle_kb[bridge.name], result, args)
            series[bridge.name].append(step)
            r.say(r._line(step))
        if "live" in result:
            r.say(compare.line(result["bridge"][-1], result["live"]["steps"][-1]))
        stop = _stop_reason(series, args)
        if stop:
            r.say(stop)
            break
    measured = [s for steps in series.values() for s in steps]
    result["profiles"] = [s.pop("profile") for s in measured if s.get("profile")]
    if args.webhook_seconds > 0 and bridges[0].target.flow == "twilio":
        result["webhook"] = await r.webhook_test(bridges[0])
    text = report.render(result)
    print("\n" + text, flush=True)
    started = ", ".join(f"{p.name} {p.pid}" for p in procs.procs)
    print(f"pids: {started} (all stopped on exit)", flush=True)
    if args.smoke:
        print("smoke: " + "; ".join(
            f"{s['server']} N={s['n']} {s['sent']} frames, {s['echoed']} echoed, {s['lost']} lost"
            for s in result["relay"] + measured), flush=True)
    if args.out is not None:
        written = report.write(result, text, args.out, args.stem)
        png = report.plot(result, args.out / f"{args.stem}.png", args.budget_ms)
        written += [png] if png else []
        print("written: " + ", ".join(str(p) for p in written), flush=True)
    return _exit_status(result, args)


def _mb(kb: int | None) -> float | None:
    return kb / 1024 if kb else None


async def _start_echoes(r: Run, args: argparse.Namespace, procs: Processes,
                        apis: tuple[str, ...]) -> dict[str, str]:
    """One echo upstream per model API the run needs (the relay always speaks Realtime); their
    URLs by API. `--echo-port` goes to the echo of the bridge under test."""
    needed = [api for api in ECHO_PATHS if api in apis or (api == "realtime" and not args.no_relay)]
    urls = {}
    for api in needed:
        port = args.echo_port if api in apis else 0
        echo, bound = await procs.start_listener(
            "echo-upstream" if api == "realtime" else "echo-upstream-live",
            "benchmarks.load.echo_upstream",
            ["--port", str(port), "--response-frames", str(args.response_frames),
             "--audio", args.audio, "--api", api],
            cpu=r.harness_cpu)
        r.echoes.append(echo)
        urls[api] = f"ws://127.0.0.1:{bound}{ECHO_PATHS[api]}"
    return urls


def _judge(step: dict[str, Any], earlier: list[dict[str, Any]],
           relay_by_n: dict[int, dict[str, Any]], idle_kb: int | None, result: dict[str, Any],
           args: argparse.Namespace) -> None:
    """A bridge's step against the budget: its cost over the relay (or, pcm16, over the first
    step), RSS per call and the verdict. `earlier`: the same bridge's steps before it."""
    n = step["n"]
    report.add_bridge_cost(step, relay_by_n)
    found = report.baseline_for(n, relay_by_n)
    step["baseline"] = found["rtt_ms"] if found else None
    if args.audio == "pcm16":
        if not earlier:
            result["budget"]["reference"] = report.reference_of(step)
        report.add_load_cost(step, result["budget"]["reference"])
    if idle_kb and step.get("server_rss_mb"):
        step["rss_per_call_kb"] = (step["server_rss_mb"] * 1024 - idle_kb) / n
    step["verdict"] = report.verdict(step, args.budget_ms)


def _stop_reason(series: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> str:
    """Why the ramp stops after this step ("" to go on): a bridge broke the budget more than
    `--beyond` steps ago."""
    if args.no_stop:
        return ""
    for name, steps in series.items():
        failing = [s for s in steps if s["verdict"] != "ok"]
        if len(failing) > args.beyond:
            return (f"[{name}] stopping the ramp at N = {steps[-1]['n']}: the budget broke at "
                    f"N = {failing[0]['n']} ({failing[0]['verdict']})")
    return ""


def _settings(args: argparse.Namespace) -> str:
    """The run's settings, as the report's second line says them."""
    pcm16 = args.audio == "pcm16"
    budget = (f"budget: no frame lost, p99 load-added ≤ {args.budget_ms:g} ms over the first "
              "step's p99 (the unloaded reference); the relay passes μ-law through, no "
              "resampling" if pcm16 else f"budget p99 added ≤ {args.budget_ms:g} ms")
    return (_api_settings(args.api) + ("CALLBRIDGE_AUDIO_FORMAT=pcm16 " if pcm16 else "")
            + f"CALLBRIDGE_CHUNK_MS=20 CALLBRIDGE_LEAD_MS=5000 DATABASE_URL="
            f"{'none' if args.record == 'none' else 'sqlite'}; hold {args.hold:g} s, "
            f"ramp {args.rate:g} calls/s, settle {args.settle:g} s; loss = not echoed within "
            f"{args.loss_ms:g} ms, late = round trip > {args.late_ms:g} ms; "
            + ("GPT-Live echo: one delta per append, no responses" if args.api == "live" else
               f"echo responses of {args.response_frames} frames")
            + ("; frames are a 400 Hz tone, matched by byte offset; " if pcm16 else "; ")
            + budget)


def _api_settings(api: str) -> str:
    """The model API part of the settings line."""
    live = f"CALLBRIDGE_MODEL={LIVE_MODEL} against the GPT-Live echo"
    if api == "live":
        return f"{live}; "
    if api == "both":
        return (f"Realtime (callbridge) and GPT-Live (callbridge-live: {live}) one after the "
                "other at each step; ")
    return ""


async def _bridge_under_test(r: Run, args: argparse.Namespace, procs: Processes,
                             echo_url: str, api: str = "realtime") -> Server:
    if args.target_url is None:
        name = BRIDGE_NAMES[api]
        cb = await start_callbridge(procs, echo_url, cpu=r.server_cpu, record=args.record,
                                    audio=args.audio, api=api, name=name)
        port = int(cb.url.rsplit(":", 1)[1])
        return Server(name, Target(flow="twilio", server_url=cb.url, public_url=PUBLIC_URL,
                                   auth_token=cb.auth_token),
                      cb.proc.pid, ("127.0.0.1", port, "/healthz"), api)
    url = args.target_url
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme in (
        "https", "wss") else 80)
    kind = "GPT-Live" if api == "live" else "Realtime"
    r.say(f"echo upstream (the fake OpenAI {kind} server) is at {echo_url}: start the bridge "
          f"under test with it as its {kind} URL, pinned with `taskset -c {r.server_cpu}`; "
          f"waiting for {host}:{port} …")
    deadline = time.monotonic() + args.target_wait
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {host}:{port}") from None
            await asyncio.sleep(0.5)
    if parts.scheme in ("ws", "wss"):
        target = Target(flow="plain", stream_url=url, auth_token=args.auth_token,
                        parameters=dict(args.param))
    else:
        target = Target(flow="twilio", server_url=url, public_url=args.public_url or url,
                        auth_token=args.auth_token, parameters=dict(args.param),
                        webhook_path=args.webhook_path)
    health = (host, port, args.healthz_path) if args.healthz_path else None
    if health and await http_get_ms(*health) is None:
        r.say(f"{args.healthz_path} does not answer 2xx on the target: no loop-lag probe")
        health = None
    return Server(args.target_name, target, args.target_pid, health, api)


def _exit_status(result: dict[str, Any], args: argparse.Namespace) -> int:
    live = result.get("live", {}).get("steps", [])
    steps = result["relay"] + result["bridge"] + live
    broken = [s for s in steps if s["lost"] or not s["echoed"] or s["failed"]
              or s["dropped_calls"]]
    hook = result.get("webhook")
    if hook and hook["failed"]:
        broken.append(hook)
    if args.smoke:
        return 1 if broken or not result["bridge"] or ("live" in result and not live) else 0
    return 0
