"""The reliability table of docs/reliability.md, produced by running the fault suite:
`python -m benchmarks.reliability_table [--no-run RESULTS.json]`.

Runs `python -m pytest tests/faults` with `CALLBRIDGE_RELIABILITY_JSON` pointing at a temporary
file (tests/faults/conftest.py writes every injection there), then rewrites the part of
docs/reliability.md between `<!-- reliability-table:begin -->` and `<!-- …:end -->` with the
table, the command, the machine, the commit and the suite's wall time. Nothing else in the
document is touched. `update_doc()` is also what the suite calls itself when run with
`CALLBRIDGE_WRITE_RELIABILITY=1`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "reliability.md"
COMMAND = "python -m benchmarks.reliability_table"


def machine() -> str:
    """CPU model, logical cores, OS and Python, in one line."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):  # no /proc: keep platform's answer
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def commit() -> str:
    """The short commit hash, marked when the work tree has uncommitted changes (other than
    docs/reliability.md, which these scripts rewrite)."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", ".", f":!{DOC.relative_to(REPO)}")
    return head + (" + uncommitted changes" if dirty else "")


def _lost(injections: list[dict[str, Any]]) -> str:
    turns = [i for i in injections if i["turns_lost"] is not None]
    frames = [i for i in injections if i["frames_lost"] is not None]
    parts = []
    if turns:
        lost, done = sum(i["turns_lost"] for i in turns), sum(i["turns_finished"] for i in turns)
        parts.append(f"{lost} of {done} turns")
    if frames:
        lost, sent = sum(i["frames_lost"] for i in frames), sum(i["frames_sent"] for i in frames)
        parts.append(f"{lost:,} of {sent:,} frames")
    return ", ".join(parts) or "—"


def _gap(injections: list[dict[str, Any]]) -> str:
    gaps = [i["gap_s"] for i in injections if i["gap_s"] is not None]
    if not gaps:
        return "—"
    return f"{mean(gaps):.2f} s (max {max(gaps):.2f})"


ORDER = ("control", "cut-", "upstream-stall", "upstream-error", "upstream-corrupt",
         "upstream-malformed", "live-", "twilio-", "database-")


def _rank(fault: dict[str, Any]) -> int:
    """Control first, then the Realtime upstream families, GPT-Live's (`live-`), Twilio's and
    the database's (`ORDER`); within a family, in the order the suite ran them."""
    key = str(fault["key"])
    return next((n for n, prefix in enumerate(ORDER) if key.startswith(prefix)), len(ORDER))


def table(results: dict[str, Any]) -> str:
    """The markdown table: one row per fault, grouped by family (`ORDER`)."""
    lines = ["| fault | how it is injected | injected | continued | ended gracefully | died "
             "| data lost | mean audible gap | healthy after |",
             "|---|---|---:|---:|---:|---:|---|---|---|"]
    for fault in sorted(results["faults"], key=_rank):
        runs = fault["injections"]
        count = {kind: sum(1 for i in runs if i["outcome"] == kind)
                 for kind in ("continued", "ended gracefully", "died")}
        name = fault["fault"] + (f" — **known bug**: {fault['bug']}" if fault.get("bug") else "")
        healthy = "yes" if all(i["healthy"] for i in runs) else "**no**"
        lines.append(f"| {name} | {fault['how']} | {len(runs)} | {count['continued']} | "
                     f"{count['ended gracefully']} | {count['died']} | {_lost(runs)} | "
                     f"{_gap(runs)} | {healthy} |")
    return "\n".join(lines)


def section(results: dict[str, Any], command: str) -> str:
    """The table with how, where and when it was produced."""
    ran = datetime.datetime.fromtimestamp(results["finished"], datetime.UTC)
    minutes = (results["finished"] - results["started"]) / 60
    return (f"{table(results)}\n\n"
            f"Produced by `{command}` on {ran:%Y-%m-%d %H:%M} UTC, commit "
            f"{results.get('commit') or commit()}; the fault suite ran for {minutes:.1f} min on "
            f"{results.get('machine') or machine()}.")


def replace_between(text: str, name: str, body: str) -> str:
    """`text` with what lies between `<!-- name:begin -->` and `<!-- name:end -->` replaced."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    head, found, rest = text.partition(begin)
    _, found_end, tail = rest.partition(end)
    if not (found and found_end):
        raise SystemExit(f"{DOC} has no {begin} … {end} markers")
    return f"{head}{begin}\n{body}\n{end}{tail}"


def update_doc(results: dict[str, Any], command: str = COMMAND, doc: Path = DOC) -> None:
    """Rewrite the reliability table in `doc` from the suite's `results`."""
    doc.write_text(replace_between(doc.read_text(), "reliability-table",
                                   section(results, command)))


def run_suite(results_path: Path, pytest_args: list[str]) -> int:
    """Run the fault suite, its results going to `results_path`; pytest's exit status."""
    env = {**os.environ, "CALLBRIDGE_RELIABILITY_JSON": str(results_path)}
    env.pop("CALLBRIDGE_WRITE_RELIABILITY", None)  # this script writes the table itself
    command = [sys.executable, "-m", "pytest", "tests/faults", "-q", "-rxX", *pytest_args]
    return subprocess.run(command, cwd=REPO, env=env, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-run", type=Path, metavar="RESULTS_JSON",
                        help="render an existing results file instead of running the suite")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    if args.no_run is not None:
        update_doc(json.loads(args.no_run.read_text()))
        return 0
    with tempfile.TemporaryDirectory() as workdir:
        results_path = Path(workdir) / "reliability.json"
        started = time.monotonic()
        status = run_suite(results_path, args.pytest_args)
        if not results_path.exists():
            print("the fault suite wrote no results", file=sys.stderr)
            return status or 1
        results = json.loads(results_path.read_text())
    update_doc(results)
    print(table(results))
    print(f"\nfault suite: exit status {status}, {time.monotonic() - started:.0f} s; "
          f"table written to {DOC.relative_to(REPO)}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
