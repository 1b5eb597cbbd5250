"""Sampling the server under load with py-spy, and the top costs from its samples.

`record()` runs `py-spy record --format raw --function --nonblocking` against the server's pid for
part of a hold (py-spy reads the process's memory with ptrace; `--nonblocking` means it never
pauses the server, at the price of an occasional torn stack). `summarize()` reads the collapsed
stacks: each sample's innermost Python frame is its *self* cost; every distinct function on the
stack gets the sample as *inclusive* cost; and the innermost frame's top-level package (callbridge,
uvicorn, websockets, starlette, asyncio, json, …) gives the cost by layer. Percentages are of the
samples taken while the server was running Python (py-spy skips an idle thread), i.e. of its busy
time. C code (uvloop, the websockets speedups, base64, json's scanner) is charged to the Python
frame that called it.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.load.server import Proc, Processes

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::-?\d+)?\)$")
_STDLIB = re.compile(r"/lib/python3\.\d+/")
# The frames of `callbridge serve` down to the event loop. Under uvloop, a task step or callback
# is sampled without them (C calls it); a sample with nothing but them is time in the loop's C
# code itself: polling, socket reads and writes, timers, scheduling.
_ROOT = ("_run_module_as_main", "_run_code", "<module> (callbridge/__main__.py)",
         "main (callbridge/cli.py)", "_serve (callbridge/cli.py)", "Server.run (uvicorn/",
         "asyncio_run (uvicorn/", "Runner.run (asyncio/", "run (asyncio/runners.py)")
LOOP_C = "event loop in C (uvloop: polling, socket I/O, timers, scheduling)"


def py_spy() -> str | None:
    return shutil.which("py-spy")


async def record(procs: Processes, pid: int, seconds: float, out: Path, *, cpu: int | None,
                 rate: int = 250) -> Proc:
    """Start sampling `pid` for `seconds` into `out` (collapsed stacks); returns the py-spy proc."""
    exe = py_spy()
    assert exe is not None
    argv = [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
            "--rate", str(rate), "--format", "raw", "--function", "--nonblocking",
            "--output", str(out)]
    return await procs.start("py-spy", argv, cpu=cpu)


def _where(file: str) -> str:
    """A short, stable location: the path from the package down."""
    for marker in ("site-packages/", "/src/"):
        if marker in file:
            return file.split(marker, 1)[1]
    match = _STDLIB.search(file)
    if match:
        return file[match.end():]
    return file.lstrip("/")


def _package(where: str) -> str:
    head = where.split("/", 1)[0]
    return head[:-3] if head.endswith(".py") else head


def summarize(raw: Path, top: int = 15) -> dict[str, Any]:
    """Self, inclusive and per-package shares of the samples in a py-spy raw file."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame)
            if match is None or match["file"] in ("-", ""):
                continue  # process/thread headers, torn frames
            name = f"{match['func']} ({_where(match['file'])})"
            if not name.startswith(_ROOT):
                frames.append(name)
        total += count
        if not frames:
            own[LOOP_C] += count
            packages["uvloop (C)"] += count
            continue
        leaf = frames[-1]
        own[leaf] += count
        packages[_package(leaf.rsplit(" (", 1)[1].rstrip(")"))] += count
        for name in set(frames):
            inclusive[name] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, 100 * n / total) for name, n in counter.most_common(top)] if total else []

    return {"samples": total, "self": share(own), "inclusive": share(inclusive),
            "packages": share(packages)}


def format_summary(summary: dict[str, Any], title: str) -> str:
    lines = [f"{title}: {summary['samples']} samples of the busy server"]
    for key, label in (("self", "self time (innermost Python frame)"),
                       ("inclusive", "inclusive time (on the stack)"),
                       ("packages", "self time by package")):
        lines.append(f"  {label}")
        for name, percent in summary[key]:
            lines.append(f"    {percent:5.1f}%  {name}")
    return "\n".join(lines)
