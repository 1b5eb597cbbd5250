"""What `callbridge eval` tells people and CI: a table, JUnit XML, JSON.

Owns the results' shapes (`RunResult` per run, `ScenarioResult` per scenario) and their three
renderings. The table shows each scenario's runs and passes and, for a failure, every broken
expectation with its evidence; the JUnit XML has one test case per run, its failures named;
the JSON keeps everything, transcripts included. No I/O beyond the stream or file it is given.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from xml.etree import ElementTree

from callbridge.evals.expectations import Failure, Observed


@dataclass
class RunResult:
    observed: Observed
    failures: list[Failure]
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class ScenarioResult:
    name: str
    path: str
    runs: list[RunResult] = field(default_factory=list)
    skipped: str | None = None  # why the scenario was not run

    @property
    def passed(self) -> int:
        return sum(run.passed for run in self.runs)

    @property
    def ok(self) -> bool:
        return self.skipped is not None or self.passed == len(self.runs)


def print_table(results: list[ScenarioResult], out: TextIO) -> None:
    width = max([len("scenario"), *(len(r.name) for r in results)])
    print(f"{'scenario':<{width}}  runs  passed  failing expectations", file=out)
    for result in results:
        if result.skipped is not None:
            print(f"{result.name:<{width}}     -       -  skipped: {result.skipped}", file=out)
            continue
        status = "" if result.ok else "FAIL"
        print(f"{result.name:<{width}}  {len(result.runs):>4}  {result.passed:>6}  {status}",
              file=out)
        for number, run in enumerate(result.runs, start=1):
            for failure in run.failures:
                line = f"run {number}: {failure.expectation} — {failure.evidence}"
                for part in textwrap.wrap(line, 100, subsequent_indent="    "):
                    print(f"{'':<{width}}  {part}", file=out)
    total = sum(len(r.runs) for r in results)
    passed = sum(r.passed for r in results)
    failed = sum(not r.ok for r in results)
    print(f"\n{len(results)} scenario(s), {passed}/{total} run(s) passed"
          + (f", {failed} scenario(s) FAILED" if failed else ""), file=out)


def write_junit(results: list[ScenarioResult], path: Path) -> None:
    suite = ElementTree.Element("testsuite", {
        "name": "callbridge eval",
        "tests": str(sum(max(1, len(r.runs)) for r in results)),
        "failures": str(sum(len(r.runs) - r.passed for r in results)),
        "skipped": str(sum(r.skipped is not None for r in results)),
        "time": f"{sum(run.seconds for r in results for run in r.runs):.3f}",
    })
    for result in results:
        if result.skipped is not None:
            case = ElementTree.SubElement(suite, "testcase",
                                          {"classname": result.path, "name": result.name})
            ElementTree.SubElement(case, "skipped", {"message": result.skipped})
            continue
        for number, run in enumerate(result.runs, start=1):
            name = result.name if len(result.runs) == 1 else f"{result.name} [run {number}]"
            case = ElementTree.SubElement(suite, "testcase", {
                "classname": result.path, "name": name, "time": f"{run.seconds:.3f}"})
            if run.failures:
                failure = ElementTree.SubElement(case, "failure", {
                    "message": "; ".join(f.expectation for f in run.failures),
                    "type": "ExpectationFailed"})
                failure.text = "\n".join(f"{f.expectation}: {f.evidence}" for f in run.failures)
            transcript = "\n".join(run.observed.transcript_lines())
            ElementTree.SubElement(case, "system-out").text = transcript
    ElementTree.indent(suite)
    ElementTree.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def write_json(results: list[ScenarioResult], path: Path) -> None:
    path.write_text(json.dumps([_scenario_json(r) for r in results], indent=2) + "\n",
                    encoding="utf-8")


def _scenario_json(result: ScenarioResult) -> dict[str, Any]:
    return {
        "scenario": result.name, "file": result.path, "skipped": result.skipped,
        "runs": len(result.runs), "passed": result.passed,
        "results": [{
            "passed": run.passed, "seconds": round(run.seconds, 3),
            "failures": [{"expectation": f.expectation, "evidence": f.evidence}
                         for f in run.failures],
            "call_sid": run.observed.call_sid,
            "transcript": [{"role": role, "text": text}
                           for role, text in run.observed.transcript],
            "tools": [{"name": t.name, "arguments": t.arguments, "result": t.result}
                      for t in run.observed.tools],
            "transfer_to": run.observed.transfer_to,
            "ended_by_agent": run.observed.hung_up_by_agent,
            "end_reason": run.observed.end_reason,
            "turn_latencies_s": [round(v, 3) for v in run.observed.turn_latencies],
            "longest_silence_s": round(run.observed.longest_silence_s, 3),
            "truncate_errors": run.observed.truncate_errors,
            "analysis": run.observed.analysis,
            "judge": ({"score": run.observed.judge_score, "reason": run.observed.judge_reason}
                      if run.observed.judge_score is not None or run.observed.judge_reason
                      else None),
        } for run in result.runs],
    }
