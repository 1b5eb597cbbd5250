"""`callbridge eval SCENARIOS... [--runs N] [--junit FILE] [--json FILE]`.

Owns the command: its arguments, reading every scenario before running any (a mistake in one is
a one-line error before a single call is placed), running each `--runs` times, the table on
stdout, the reports, and the exit status: 0 when every run passed, 1 when one failed, 2 for a bad
scenario or agent file.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from callbridge.evals.expectations import check
from callbridge.evals.report import (
    RunResult,
    ScenarioResult,
    print_table,
    write_json,
    write_junit,
)
from callbridge.evals.scenario import Scenario, load_scenario


def add_command(commands: Any) -> None:
    """Add `eval` to the `callbridge` subcommands."""
    parser = commands.add_parser(
        "eval", help="run scenario tests of an agent through the real server, locally")
    parser.add_argument("scenarios", nargs="+", type=Path,
                        help="scenario files (YAML), or folders of them")
    parser.add_argument("--runs", type=int, default=1, help="run each scenario N times")
    parser.add_argument("--junit", type=Path, help="write JUnit XML here")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")


def run(args: argparse.Namespace, stdout: TextIO) -> int:
    if args.runs < 1:
        print("callbridge: --runs must be at least 1", file=stdout)
        return 2
    for name in ("callbridge", "websockets", "httpx", "uvicorn"):
        logging.getLogger(name).setLevel(logging.ERROR)
    results = asyncio.run(evaluate(scenario_files(args.scenarios), args.runs, os.environ, stdout))
    print_table(results, stdout)
    if args.junit is not None:
        write_junit(results, args.junit)
    if args.json is not None:
        write_json(results, args.json)
    return 0 if all(result.ok for result in results) else 1


def scenario_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        else:
            files.append(path)
    return files


async def evaluate(files: list[Path], runs: int, env: Mapping[str, str],
                   progress: TextIO | None = None) -> list[ScenarioResult]:
    """Run every scenario `runs` times; a bad file raises ConfigError before any call."""
    from callbridge.evals.runner import uses_real_model  # the server: only when running

    scenarios = [load_scenario(path) for path in files]
    real = uses_real_model(env)
    results = []
    for scenario in scenarios:
        result = ScenarioResult(scenario.name, str(scenario.path))
        results.append(result)
        if scenario.needs_model and not real:
            result.skipped = "a judge or simulated caller needs OPENAI_API_KEY"
            continue
        for _ in range(runs):
            result.runs.append(await _run(scenario, env))
            if progress is not None:
                print("." if result.runs[-1].passed else "F", end="", file=progress, flush=True)
    if progress is not None and any(r.runs for r in results):
        print("\n", file=progress)
    return results


async def _run(scenario: Scenario, env: Mapping[str, str]) -> RunResult:
    from callbridge.evals.runner import run_once

    started = time.monotonic()
    observed = await run_once(scenario, env)
    return RunResult(observed, check(scenario, observed), time.monotonic() - started)
