"""The processes of a load run: starting them pinned to a core, talking to them, stopping them.

Owns `Processes` (every process the harness starts, stopped on exit — also on Ctrl-C, errors and
the death of the harness itself, through `PR_SET_PDEATHSIG` and a closed stdin), starting
`callbridge serve` against the echo upstream, and reading a process's CPU time and RSS from
/proc. The server runs as `taskset -c <cpu> python -m callbridge serve …` with a clean environment:

    CALLBRIDGE_PUBLIC_URL=https://load.callbridge.invalid   TWILIO_AUTH_TOKEN=<random>
    CALLBRIDGE_OPENAI_URL=ws://127.0.0.1:<echo>/v1/realtime DATABASE_URL=none (or a temp SQLite)
    CALLBRIDGE_CHUNK_MS=20   CALLBRIDGE_LEAD_MS=5000
    CALLBRIDGE_AUDIO_FORMAT=pcm16 (with `--audio pcm16` only: μ-law ⇄ PCM16 24 kHz, resampled)

and, for a GPT-Live agent (`api="live"`), `CALLBRIDGE_MODEL=gpt-live-1.1` with
`CALLBRIDGE_LIVE_URL=ws://127.0.0.1:<echo>/v1/live/sessions` (the echo upstream run with
`--api live`; CALLBRIDGE_OPENAI_URL points there too, so nothing can reach OpenAI).

A 20 ms chunk sends each echoed frame on as soon as it arrives (the default 40 ms would hold every
other frame back for the next one), and a 5 s lead means pacing never delays one: the callers echo
marks on a 20 ms play clock, so Twilio "holds" about one frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PUBLIC_URL = "https://load.callbridge.invalid"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the harness dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def taskset_available() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pinned(argv: list[str], cpu: int | None) -> list[str]:
    """`argv` under `taskset -c cpu` when asked and possible."""
    if cpu is None or not taskset_available():
        return argv
    return ["taskset", "-c", str(cpu), *argv]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def harness_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: ours without any callbridge/Twilio/OpenAI settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CALLBRIDGE_", "TWILIO_", "OPENAI_")) and k != "DATABASE_URL"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class Proc:
    """A started process; its stderr goes to `log`."""

    name: str
    process: asyncio.subprocess.Process
    log: Path
    cpu: int | None

    @property
    def pid(self) -> int:
        return self.process.pid

    async def read_line(self, within: float) -> str:
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(within):
                line = await self.process.stdout.readline()
        except TimeoutError:
            raise RuntimeError(f"{self.name} did not answer within {within:.0f} s; "
                               f"its log:\n{self.tail()}") from None
        if not line:
            raise RuntimeError(f"{self.name} exited (status {self.process.returncode}); "
                               f"its log:\n{self.tail()}")
        return line.decode().strip()

    async def ask(self, command: dict[str, Any], within: float = 60.0) -> dict[str, Any]:
        """One JSON command on stdin, one JSON answer on stdout (the callers' protocol)."""
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()
        answer: dict[str, Any] = json.loads(await self.read_line(within))
        return answer

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in text[-lines:]) or "    (empty)"


@dataclass
class Processes:
    """Every process of the run. `async with` stops them all on the way out, whatever happens."""

    workdir: Path
    procs: list[Proc] = field(default_factory=list)

    async def __aenter__(self) -> Processes:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_all()

    async def start(self, name: str, argv: list[str], *, cpu: int | None,
                    env: dict[str, str] | None = None) -> Proc:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                *pinned(argv, cpu), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=stderr, cwd=REPO, limit=64 << 20,
                env=env if env is not None else harness_env(),
                start_new_session=True,  # Ctrl-C reaches the harness only; it stops the rest
                preexec_fn=_die_with_parent,
            )
        proc = Proc(name, process, log, cpu)
        self.procs.append(proc)
        return proc

    async def stop(self, proc: Proc, grace: float = 6.0) -> None:
        process = proc.process
        if process.returncode is None:
            if process.stdin is not None:
                with contextlib.suppress(Exception):
                    process.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(grace):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    async def stop_all(self) -> None:
        # shielded: a second Ctrl-C must not leave processes behind
        await asyncio.shield(asyncio.gather(*(self.stop(p) for p in list(self.procs)),
                                            return_exceptions=True))

    async def start_listener(self, name: str, module: str, args: list[str], *,
                             cpu: int | None) -> tuple[Proc, int]:
        """A harness server that prints `listening <port>` once up."""
        proc = await self.start(name, [sys.executable, "-m", module, *args], cpu=cpu)
        line = await proc.read_line(30.0)
        if not line.startswith("listening "):
            raise RuntimeError(f"{name} said {line!r}; its log:\n{proc.tail()}")
        return proc, int(line.split()[1])


@dataclass
class Callbridge:
    proc: Proc
    url: str
    auth_token: str
    env: dict[str, str]


LIVE_MODEL = "gpt-live-1.1"


async def start_callbridge(procs: Processes, echo_url: str, *, cpu: int | None, record: str,
                           audio: str = "pcmu", api: str = "realtime", name: str = "callbridge",
                           log_level: str = "info") -> Callbridge:
    """`callbridge serve` on a free loopback port, against the echo upstream; waits for /healthz.
    `api="live"`: its agent is a GPT-Live one and `echo_url` the GPT-Live echo's."""
    port = free_port()
    token = os.urandom(12).hex()
    database = "none"
    if record == "sqlite":
        database = f"sqlite:///{procs.workdir / 'load.db'}"
    env = harness_env({
        "CALLBRIDGE_PUBLIC_URL": PUBLIC_URL,
        "TWILIO_AUTH_TOKEN": token,
        "CALLBRIDGE_OPENAI_URL": echo_url,
        "DATABASE_URL": database,
        "CALLBRIDGE_CHUNK_MS": "20",
        "CALLBRIDGE_LEAD_MS": "5000",
        "CALLBRIDGE_JOURNAL": str(procs.workdir / "journal.jsonl"),
        "CALLBRIDGE_INSTANCE_ID": "load-bench",
    })
    if audio != "pcmu":
        env["CALLBRIDGE_AUDIO_FORMAT"] = audio
    if api == "live":
        env |= {"CALLBRIDGE_MODEL": LIVE_MODEL, "CALLBRIDGE_LIVE_URL": echo_url}
    if database != "none":
        upgrade = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callbridge", "db", "upgrade", env=env, cwd=procs.workdir,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await upgrade.communicate()
        if upgrade.returncode != 0:
            raise RuntimeError(f"callbridge db upgrade failed: {err.decode()[-500:]}")
    argv = [sys.executable, "-m", "callbridge", "--log-level", log_level, "serve",
            "--host", "127.0.0.1", "--port", str(port)]
    proc = await procs.start(name, argv, cpu=cpu, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.process.returncode is not None:
            raise RuntimeError(f"{name} serve exited with {proc.process.returncode}:\n"
                               f"{proc.tail()}")
        if await http_get_ms("127.0.0.1", port, "/healthz") is not None:
            return Callbridge(proc, url, token, env)
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{name} serve did not answer /healthz within 30 s:\n{proc.tail()}")


async def http_get_ms(host: str, port: int, path: str, within: float = 5.0) -> float | None:
    """Milliseconds for a fresh connection to answer `GET path` with 2xx, or None."""
    started = time.perf_counter()
    if await http_get(host, port, path, within) is None:
        return None
    return (time.perf_counter() - started) * 1000


async def http_get(host: str, port: int, path: str, within: float = 5.0) -> bytes | None:
    """The body of a 2xx answer to `GET path` on a fresh connection, or None."""
    writer = None
    try:
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                         .encode())
            status = await reader.readline()
            rest = await reader.read()
    except (OSError, TimeoutError):
        return None
    finally:
        if writer is not None:
            writer.close()
    if not status.startswith(b"HTTP/1.1 2"):
        return None
    return rest.partition(b"\r\n\r\n")[2]


# ---------------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of `pid` so far (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kb(pid: int) -> int | None:
    """Resident set size of `pid` in kB (VmRSS)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy (not idle, not waiting for I/O) since boot."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICKS


class MachineMeter:
    """CPU % (of one core) the whole machine used between two `read()`s: with our processes'
    share subtracted, what else ran on the machine during a measurement."""

    def __init__(self) -> None:
        self._last = machine_busy_seconds()
        self._at = time.monotonic()

    def read(self) -> float:
        total, now = machine_busy_seconds(), time.monotonic()
        percent = (total - self._last) / max(1e-6, now - self._at) * 100
        self._last, self._at = total, now
        return percent


class CpuMeter:
    """CPU % of one core used by a set of processes between two `read()`s."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self._last = self._total()
        self._at = time.monotonic()

    def _total(self) -> float:
        return sum(cpu_seconds(pid) or 0.0 for pid in self.pids)

    def read(self) -> float:
        total, now = self._total(), time.monotonic()
        percent = (total - self._last) / max(1e-6, now - self._at) * 100
        self._last, self._at = total, now
        return percent


def machine() -> dict[str, str]:
    """What the run ran on."""
    import platform

    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpu": model, "cores": str(os.cpu_count()), "python": platform.python_version(),
            "kernel": platform.release()}
