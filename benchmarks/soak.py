"""Soak: `python -m benchmarks.soak --calls N --minutes M [--write-doc]`.

Keeps N simulated calls live against a `callbridge serve` subprocess for M minutes: each caller
(`FakeTwilioCaller`, the full signed webhook and media path) takes turns — a utterance of
0.6–1.5 s, the agent's reply, a pause — for 20–40 s, hangs up, and its slot dials the next call
at once. The model is the fake Realtime server in echo mode (it answers each turn with the
caller's own audio), in this process. The server keeps its call record in SQLite.

Reported at the end (and every 30 s in brief):
- RSS growth per call-hour: the server's VmRSS, sampled every 10 s, fitted with a straight line
  after the first minute (warm-up: imports, pools, allocator arenas), divided by N;
- open file descriptors of the server with N calls live, shortly after the start and at the end
  (a leaked socket or task that holds one shows as growth), and idle before vs. after;
- lost frames: for every call, the caller's frames minus the `input_audio_buffer.append`s its
  upstream session received, taken just before hanging up (the smallest difference over a few
  samples, so frames in flight on loopback are not counted);
- unanswered turns (no reply within 8 s) and calls that failed to connect.

With --write-doc the table replaces the soak section of docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.load.server import Processes, free_port, harness_env, http_get_ms, rss_kb
from benchmarks.reliability_table import DOC, commit, machine, replace_between
from callbridge.testing.fake_caller import CallerError, FakeTwilioCaller
from callbridge.testing.fake_realtime import FakeConnection, FakeRealtimeServer
from callbridge.testing.speech import speechlike

PUBLIC_URL = "https://soak.callbridge.invalid"
SAMPLE_EVERY_S = 10.0
PROGRESS_EVERY_S = 30.0
WARM_UP_S = 60.0


@dataclass
class Totals:
    started: float = field(default_factory=time.monotonic)
    calls_done: int = 0
    calls_failed: int = 0
    live: int = 0
    turns: int = 0
    unanswered: int = 0
    frames_sent: int = 0
    frames_lost: int = 0
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (s, RSS kB, fds)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def fd_targets(pid: int) -> list[str]:
    """What each open fd of `pid` points at (`socket:[…]` becomes `socket`)."""
    targets = []
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                targets.append(target.split(":[")[0] if ":[" in target else target)
    return sorted(targets)


def appends(connection: FakeConnection) -> int:
    return sum(1 for e in connection.client_events if e.get("type") == "input_audio_buffer.append")


class Soak:
    """N call slots against one server; see the module docstring."""

    def __init__(self, url: str, token: str, fake: FakeRealtimeServer, seed: int) -> None:
        self.url, self.token, self.fake = url, token, fake
        self.totals = Totals()
        self.stopping = asyncio.Event()
        self._dialing = asyncio.Lock()  # one dial at a time: each call ↔ the connection it opened
        self._rng = random.Random(seed)

    async def slot(self, number: int) -> None:
        """Keep one call live until stopping: call, hang up, call again."""
        call = 0
        while not self.stopping.is_set():
            call += 1
            try:
                await self._one_call(number * 100_000 + call)
            except (CallerError, TimeoutError, OSError) as exc:
                self.totals.calls_failed += 1
                print(f"  call failed: {exc!r}", file=sys.stderr)
                await asyncio.sleep(1.0)

    async def _dial(self) -> tuple[FakeTwilioCaller, FakeConnection]:
        """Dial, and find the upstream connection the webhook opened for this call: the one
        that was not there before (finished calls' connections are removed meanwhile)."""
        async with self._dialing:
            before = {id(connection) for connection in self.fake.connections}
            caller = FakeTwilioCaller(self.url, PUBLIC_URL, self.token)
            await caller.dial()

            def new() -> list[FakeConnection]:
                return [c for c in self.fake.connections if id(c) not in before]

            await self.fake.wait_for(lambda: bool(new()), timeout=10.0)
            return caller, new()[0]

    async def _one_call(self, seed: int) -> None:
        caller, connection = await self._dial()
        loop = asyncio.get_running_loop()
        ends = loop.time() + self._rng.uniform(20.0, 40.0)
        self.totals.live += 1
        try:
            await caller.connect()
            turn = 0
            while loop.time() < ends and not self.stopping.is_set():
                turn += 1
                await self._turn(caller, seed * 100 + turn)
            self.totals.frames_lost += await self._lost(caller, connection)
            self.totals.frames_sent += caller.frames_sent
            self.totals.calls_done += 1
        finally:
            self.totals.live -= 1
            await caller.aclose()
            with contextlib.suppress(TimeoutError):
                await self.fake.wait_for(lambda: connection.closed, timeout=5.0)
            if connection.closed:  # keep the fake's memory flat over a long soak
                self.fake.connections.remove(connection)

    async def _turn(self, caller: FakeTwilioCaller, seed: int) -> None:
        await caller.say(speechlike(self._rng.uniform(0.6, 1.5), seed=seed))
        self.totals.turns += 1
        try:
            await caller.wait_for_agent_audio(timeout=8.0, after=caller.spoken_until)
            await caller.wait_until_agent_quiet(quiet_for=0.3, timeout=15.0)
        except TimeoutError:
            self.totals.unanswered += 1
        await asyncio.sleep(self._rng.uniform(0.3, 1.0))

    @staticmethod
    async def _lost(caller: FakeTwilioCaller, connection: FakeConnection) -> int:
        differences = []
        for _ in range(8):
            differences.append(caller.frames_sent - appends(connection))
            await asyncio.sleep(0.007)
        return max(0, min(differences))


async def sample(pid: int, totals: Totals, stop: asyncio.Event) -> None:
    """RSS and fds every 10 s; a progress line every 30 s."""
    last_progress = 0.0
    while not stop.is_set():
        rss, fds = rss_kb(pid), fd_count(pid)
        if rss is not None and fds is not None:
            totals.samples.append((totals.elapsed(), rss, fds))
        if totals.elapsed() - last_progress >= PROGRESS_EVERY_S - 0.5:
            last_progress = totals.elapsed()
            print(f"[{totals.elapsed():5.0f} s] live {totals.live}, done {totals.calls_done}, "
                  f"failed {totals.calls_failed}, turns {totals.turns} "
                  f"({totals.unanswered} unanswered), RSS {rss and rss / 1024:.1f} MB, "
                  f"fds {fds}, frames lost {totals.frames_lost} of {totals.frames_sent}",
                  flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)


def slope_per_s(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 with fewer than two points)."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


async def start_server(procs: Processes, openai_url: str, workdir: Path) -> tuple[int, str, str]:
    """`callbridge serve` with a SQLite record; (pid, url, auth token) once /healthz answers."""
    port, token = free_port(), os.urandom(12).hex()
    env = harness_env({
        "CALLBRIDGE_PUBLIC_URL": PUBLIC_URL, "TWILIO_AUTH_TOKEN": token,
        "CALLBRIDGE_OPENAI_URL": openai_url, "OPENAI_API_KEY": "sk-soak",
        "DATABASE_URL": f"sqlite:///{workdir / 'soak.db'}",
        "CALLBRIDGE_JOURNAL": str(workdir / "journal.jsonl"),
        "CALLBRIDGE_RECORDINGS_DIR": str(workdir / "recordings"),
        "CALLBRIDGE_INSTANCE_ID": "soak",
    })
    upgrade = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callbridge", "db", "upgrade", env=env, cwd=workdir,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await upgrade.communicate()
    if upgrade.returncode != 0:
        raise RuntimeError(f"callbridge db upgrade failed: {err.decode()[-500:]}")
    proc = await procs.start("callbridge", [
        sys.executable, "-m", "callbridge", "--log-level", "warning", "serve",
        "--host", "127.0.0.1", "--port", str(port)], cpu=None, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if await http_get_ms("127.0.0.1", port, "/healthz") is not None:
            return proc.pid, f"http://127.0.0.1:{port}", token
        await asyncio.sleep(0.1)
    raise RuntimeError(f"callbridge serve did not come up:\n{proc.tail()}")


@dataclass(frozen=True)
class FdCounts:
    """The server's open file descriptors at one moment, and how many calls were live."""

    fds: int | None
    live: int


@dataclass(frozen=True)
class SoakResult:
    calls: int
    totals: Totals
    live_start: FdCounts
    live_end: FdCounts
    idle_before: int | None
    idle_after: int | None
    new_when_idle: list[str]  # what the fds open after the soak, and not before, point at

    @property
    def rss_mb(self) -> tuple[float, float] | None:
        samples = self.totals.samples
        return (samples[0][1] / 1024, samples[-1][1] / 1024) if samples else None

    @property
    def rss_mb_per_call_hour(self) -> float:
        """The fitted RSS slope after the warm-up (all samples if the run was shorter)."""
        samples = self.totals.samples
        warm = [(t, float(rss)) for t, rss, _ in samples if t >= WARM_UP_S]
        points = warm or [(t, float(rss)) for t, rss, _ in samples]
        return slope_per_s(points) * 3600 / 1024 / self.calls


async def soak(calls: int, minutes: float, seed: int) -> SoakResult:
    with tempfile.TemporaryDirectory(prefix="callbridge-soak-") as tmp:
        workdir = Path(tmp)
        async with FakeRealtimeServer(echo=True) as fake, Processes(workdir) as procs:
            pid, url, token = await start_server(procs, fake.url, workdir)
            opened_before = fd_targets(pid)
            run = Soak(url, token, fake, seed)
            stop_sampling = asyncio.Event()
            sampler = asyncio.create_task(sample(pid, run.totals, stop_sampling))
            slots = [asyncio.create_task(run.slot(n)) for n in range(calls)]
            await asyncio.sleep(min(15.0, minutes * 60 / 4))  # all N dialled and streaming
            live_start = FdCounts(fd_count(pid), run.totals.live)
            await asyncio.sleep(max(0.0, minutes * 60 - run.totals.elapsed()))
            live_end = FdCounts(fd_count(pid), run.totals.live)
            run.stopping.set()
            await asyncio.gather(*slots)
            stop_sampling.set()
            await sampler
            await asyncio.sleep(2.0)  # the server finishes closing the last calls
            opened_after = fd_targets(pid)
    new = list(opened_after)
    for target in opened_before:
        if target in new:
            new.remove(target)
    return SoakResult(calls, run.totals, live_start, live_end, len(opened_before),
                      len(opened_after), [Path(t).name if t.startswith("/") else t for t in new])


def table(result: SoakResult) -> str:
    totals, rss = result.totals, result.rss_mb
    new = f" (new: {', '.join(result.new_when_idle)})" if result.new_when_idle else ""
    rows = [
        ("concurrent calls × duration", f"{result.calls} × {totals.elapsed() / 60:.1f} min"),
        ("calls completed / failed", f"{totals.calls_done} / {totals.calls_failed}"),
        ("turns (unanswered)", f"{totals.turns} ({totals.unanswered})"),
        ("frames lost", f"{totals.frames_lost:,} of {totals.frames_sent:,} sent"),
        ("server RSS, first → last sample",
         f"{rss[0]:.1f} → {rss[1]:.1f} MB" if rss else "—"),
        ("RSS growth per call-hour (fitted after the first minute)",
         f"{result.rss_mb_per_call_hour:.2f} MB"),
        ("open fds with calls live, start → end",
         f"{result.live_start.fds} ({result.live_start.live} live) → "
         f"{result.live_end.fds} ({result.live_end.live} live)"),
        ("open fds idle, before → after", f"{result.idle_before} → {result.idle_after}{new}"),
    ]
    return "\n".join(["| measure | value |", "|---|---|",
                      *(f"| {name} | {value} |" for name, value in rows)])


def write_doc(text: str, command: str) -> None:
    when = datetime.datetime.now(datetime.UTC)
    body = (f"{text}\n\nProduced by `{command}` on {when:%Y-%m-%d %H:%M} UTC, commit {commit()}, "
            f"on {machine()}.")
    DOC.write_text(replace_between(DOC.read_text(), "soak-table", body))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10, help="concurrent calls (default 10)")
    parser.add_argument("--minutes", type=float, default=2.0, help="how long (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write-doc", action="store_true",
                        help="put the table into docs/reliability.md")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.minutes <= 0:
        parser.error("--calls must be >= 1 and --minutes > 0")
    print(f"soak: {args.calls} calls for {args.minutes:g} min", flush=True)
    result = asyncio.run(soak(args.calls, args.minutes, args.seed))
    text = table(result)
    print(text)
    if args.write_doc:
        write_doc(text, f"python -m benchmarks.soak --calls {args.calls} "
                        f"--minutes {args.minutes:g}")
    return 1 if result.totals.frames_lost or result.totals.calls_failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
