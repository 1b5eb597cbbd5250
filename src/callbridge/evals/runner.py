"""Running one scenario once: a real call through the real server, then the evidence gathered.

Owns playing the caller's part (the script's turns in real time, or the simulated caller's lines),
and collecting what happened from the public surfaces only — what the caller heard, the call
record, the fake Twilio REST API's requests — plus the post-call analysis and the judge when the
scenario asks for them. Without `OPENAI_API_KEY` the model is the local fake playing the
scenario's `replies`; with it, the agent's configured model (`CALLBRIDGE_OPENAI_URL` may point
anywhere, e.g. at a fake in tests) and, for analysis, judge and simulated caller, the text model
at `CALLBRIDGE_ANALYSIS_URL`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import tempfile
import tomllib
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml
from openai import AsyncOpenAI

from callbridge.analytics.analyzer import AnalysisError, Analyzer
from callbridge.audio.wav import read_wav_ulaw
from callbridge.config import load_settings
from callbridge.core.agent import AgentProfile
from callbridge.errors import ConfigError
from callbridge.evals.expectations import Observed, ToolUse
from callbridge.evals.scenario import Scenario, ScriptedReply, Turn
from callbridge.evals.text_model import TextModel, TextModelError
from callbridge.testing.caller_config import CallerError, CallState, NotStreaming
from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_openai_http import ChatReply, FakeOpenAIHTTP
from callbridge.testing.fake_realtime import FakeRealtimeServer, Reply, ToolCall
from callbridge.testing.speech import speak
from callbridge.testing.stack import AgentStack, agent_stack, importable

REPLY_TIMEOUT_S = 15.0  # the agent's first audio after the caller spoke
QUIET_S = 0.8  # this long without agent audio ends its turn
TURN_LIMIT_S = 90.0  # one agent turn, tools and holding lines included
AGENT_HANG_UP_GRACE_S = 1.0  # after the script: time for the agent to hang up itself
_DIAL = re.compile(r"<(Number|Sip)[^>]*>([^<]+)</\1>")


def uses_real_model(env: Mapping[str, str]) -> bool:
    return bool(env.get("OPENAI_API_KEY"))


async def run_once(scenario: Scenario, env: Mapping[str, str]) -> Observed:
    """Place the scenario's call once and return what was seen."""
    real = uses_real_model(env)
    async with contextlib.AsyncExitStack() as stack:
        agent_file = _agent_file(scenario, env, stack)
        replies = [_reply(r) for r in scenario.replies]
        said = [t.text for t in scenario.turns if t.kind == "say"]
        options: dict[str, Any] = {} if real else {"user_transcripts": said}
        running = await stack.enter_async_context(agent_stack(
            agent_file=agent_file, replies=replies, env=_without_fakes(env, real),
            fake_model=not real, **options))
        text_model = None
        if real:
            settings = running.settings
            text_model = TextModel(settings.analysis_url, settings.openai_api_key,
                                   env.get("CALLBRIDGE_EVAL_MODEL") or settings.analysis_model)
            stack.push_async_callback(text_model.aclose)
        profile = running.settings.directory.default_profile
        seen = await _place_call(scenario, running, profile, text_model, env)
    return seen


def _without_fakes(env: Mapping[str, str], real: bool) -> dict[str, str]:
    values = dict(env)
    if not real:  # the local fake stands in; no key means no real text model either
        values.pop("CALLBRIDGE_OPENAI_URL", None)
    values.pop("DATABASE_URL", None)
    return values


def _agent_file(scenario: Scenario, env: Mapping[str, str],
                stack: contextlib.ExitStack | contextlib.AsyncExitStack) -> str | None:
    """The agent file to serve, made to answer with the scenario's agent; its folder goes on
    `sys.path` so its `tools_module` imports as it does next to `callbridge serve`."""
    path = scenario.agent_file or (Path(env["CALLBRIDGE_AGENT_FILE"])
                                   if env.get("CALLBRIDGE_AGENT_FILE") else None)
    if path is None:
        if scenario.agent is not None:
            raise ConfigError(f"scenario {scenario.path}: names agent {scenario.agent!r} but "
                              "there is no agent file (agent_file: or CALLBRIDGE_AGENT_FILE)")
        return None
    importable(path)
    if scenario.agent is None:
        return str(path)
    directory = load_settings({"CALLBRIDGE_AGENT_FILE": str(path)}, serving=False).directory
    directory.named(scenario.agent)  # a ConfigError naming the agents when unknown
    if scenario.agent == directory.default:
        return str(path)
    values = _read(path)
    values["default_agent"] = scenario.agent
    folder_path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="callbridge-")))
    chosen = folder_path / "agents.yaml"
    chosen.write_text(yaml.safe_dump(values), encoding="utf-8")
    return str(chosen)


def _read(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    return dict(data)


def _reply(reply: ScriptedReply) -> Reply:
    if reply.tool is not None:
        return Reply(tool_call=ToolCall(reply.tool, reply.arguments), delay_ms=reply.delay_ms)
    return Reply(text=reply.say or "", delay_ms=reply.delay_ms)


# ---------------------------------------------------------------------------- the call


async def _place_call(scenario: Scenario, running: AgentStack, profile: AgentProfile,
                      text_model: TextModel | None, env: Mapping[str, str]) -> Observed:
    seen = Observed()
    quiet: list[tuple[float, float]] = []  # the script's own silences: not the agent's fault
    async with running.caller() as caller:
        seen.call_sid = caller.call_sid
        try:
            await caller.dial()
            await caller.connect()
        except CallerError as exc:
            seen.problems.append(f"the call could not be placed: {exc}")
            return seen
        try:
            if profile.greeting:
                await _agent_turn(caller, 0.0, interrupt_after=_first_interrupt(scenario))
            for index, turn in enumerate(scenario.turns):
                following = (scenario.turns[index + 1].interrupt_after_s
                             if index + 1 < len(scenario.turns) else None)
                if not await _play(caller, turn, following, quiet):
                    break
            if scenario.caller is not None and text_model is not None:
                await _simulated_caller(scenario, running, caller, text_model)
            if _streaming(caller):
                with contextlib.suppress(TimeoutError):
                    await caller.wait_closed(timeout=AGENT_HANG_UP_GRACE_S)
        except TimeoutError as exc:
            seen.problems.append(f"the call stalled: {exc or 'timed out'}")
        except NotStreaming:
            pass  # the call ended under the script (the agent hung up): the expectations judge
        await caller.hang_up()
    with contextlib.suppress(TimeoutError):
        await running.call_finished(caller.call_sid)
    await _gather(seen, running, caller, profile, quiet)
    if scenario.wants_analysis:
        await _analyse(seen, scenario, running, profile, env)
    if scenario.judge is not None and text_model is not None:
        try:
            seen.judge_score, seen.judge_reason = await text_model.judge(
                scenario.judge, seen.transcript_lines())
        except TextModelError as exc:
            seen.judge_reason = str(exc)
    return seen


def _first_interrupt(scenario: Scenario) -> float | None:
    return scenario.turns[0].interrupt_after_s if scenario.turns else None


def _streaming(caller: FakeTwilioCaller) -> bool:
    return caller.closed_by_server_at is None and caller.state is CallState.STREAMING


async def _play(caller: FakeTwilioCaller, turn: Turn, next_interrupts: float | None,
                quiet: list[tuple[float, float]]) -> bool:
    """One scripted turn; False when the call is over."""
    if not _streaming(caller):
        return False
    if turn.kind == "hang_up":
        await caller.hang_up()
        return False
    if turn.kind == "silence":
        started = caller.now()
        await asyncio.sleep(turn.seconds)
        quiet.append((started, caller.now()))
        return True
    if turn.kind == "press":
        pressed = caller.now()  # the reply may begin right after the terminator
        for digit in turn.text:
            await caller.send_dtmf(digit)
            await asyncio.sleep(0.15)
        await _agent_turn(caller, pressed, interrupt_after=next_interrupts)
        return True
    audio = (await asyncio.to_thread(read_wav_ulaw, turn.wav) if turn.wav is not None
             else await asyncio.to_thread(speak, turn.text))
    await caller.say(audio)
    await _agent_turn(caller, caller.spoken_until, interrupt_after=next_interrupts)
    return True


async def _agent_turn(caller: FakeTwilioCaller, after: float, *,
                      interrupt_after: float | None) -> None:
    """Wait for the agent's reply: to its end, or `interrupt_after` seconds into it."""
    if not _streaming(caller):
        return
    try:
        started = await caller.wait_for_agent_audio(timeout=REPLY_TIMEOUT_S, after=after)
    except TimeoutError:
        return  # no reply: the expectations will say so
    if interrupt_after is not None:
        await asyncio.sleep(max(0.0, started + interrupt_after - caller.now()))
        return
    await caller.wait_until_agent_quiet(quiet_for=QUIET_S, timeout=TURN_LIMIT_S)


async def _simulated_caller(scenario: Scenario, running: AgentStack, caller: FakeTwilioCaller,
                            text_model: TextModel) -> None:
    assert scenario.caller is not None
    for _ in range(scenario.caller.max_turns):
        if not _streaming(caller):
            return
        so_far = await _transcript(running, caller.call_sid)
        line, done = await text_model.caller_line(scenario.caller, so_far)
        if line:
            await caller.say(await asyncio.to_thread(speak, line))
            await _agent_turn(caller, caller.spoken_until, interrupt_after=None)
        if done:
            return


async def _transcript(running: AgentStack, call_sid: str) -> list[str]:
    call = await running.stored_call(call_sid)
    return [f"{role}: {words}" for role, words in _turns(call)]


# ---------------------------------------------------------------------------- the evidence


async def _gather(seen: Observed, running: AgentStack, caller: FakeTwilioCaller,
                  profile: AgentProfile, quiet: list[tuple[float, float]]) -> None:
    call = await running.stored_call(caller.call_sid)
    if call is None:
        seen.problems.append("the call left no record (did the webhook refuse it?)")
        return
    seen.transcript = _turns(call)
    seen.end_reason = call.get("end_reason")
    for row in call.get("tool_calls", []):
        try:
            arguments = json.loads(row.get("arguments") or "{}")
        except ValueError:
            arguments = {"(unparsed)": row.get("arguments")}
        seen.tools.append(ToolUse(row["name"], arguments if isinstance(arguments, dict) else {},
                                  row.get("result") or row.get("error")))
    for event in call.get("events", []):
        if event.get("kind") == "call_stats":
            seen.truncate_errors = int((event.get("detail") or {}).get("truncate_errors", 0))
    for update in running.rest.updates(caller.call_sid):
        if update.value("Status") == "completed":
            seen.hung_up_by_agent = True
        twiml = update.value("Twiml") or ""
        found = _DIAL.search(twiml)
        if found is not None:
            seen.transfer_to = found.group(2).strip()
            seen.transfer_names = tuple(name for name, number in profile.transfer_targets.items()
                                        if number == seen.transfer_to)
    seen.turn_latencies = caller.turn_latencies
    seen.longest_silence_s = longest_silence(caller.utterances, caller.heard_segments, quiet)
    model = running.model
    if isinstance(model, FakeRealtimeServer):  # GPT-Live has no truncation to refuse
        seen.truncate_errors = max(seen.truncate_errors, model.truncate_errors)


def _turns(call: dict[str, Any] | None) -> list[tuple[str, str]]:
    if call is None:
        return []
    turns = []
    for row in call.get("transcript", []):
        words = (row.get("heard") or row.get("text") or "") if row["role"] == "agent" \
            else row.get("text") or ""
        if words:
            turns.append((str(row["role"]), str(words)))
    return turns


def longest_silence(spoken: list[tuple[float, float]], heard: list[tuple[float, float]],
                    chosen: list[tuple[float, float]]) -> float:
    """The longest gap with neither party's audio between the first and the last of either,
    leaving out the script's own silences."""
    spans = sorted([*spoken, *heard, *chosen])
    longest = 0.0
    reached: float | None = None
    for start, end in spans:
        if reached is not None and start > reached:
            longest = max(longest, start - reached)
        reached = end if reached is None else max(reached, end)
    return longest


async def _analyse(seen: Observed, scenario: Scenario, running: AgentStack,
                   profile: AgentProfile, env: Mapping[str, str]) -> None:
    call = await running.stored_call(seen.call_sid)
    if call is None:
        seen.analysis_error = "no call record to analyse"
        return
    async with _analysis_model(scenario, running, env) as (url, key):
        client = AsyncOpenAI(base_url=url, api_key=key, max_retries=1)
        try:
            analysis = await Analyzer(client, running.settings.analysis_model).analyze(
                call, profile)
            seen.analysis = asdict(analysis)
        except AnalysisError as exc:
            seen.analysis_error = str(exc)
        finally:
            await client.close()


@contextlib.asynccontextmanager
async def _analysis_model(scenario: Scenario, running: AgentStack,
                          env: Mapping[str, str]) -> AsyncIterator[tuple[str, str]]:
    """The real text model with a key; else a local fake answering the scenario's
    `analysis:` (its custom fields; the built-in ones made up from the schema)."""
    if uses_real_model(env):
        yield running.settings.analysis_url, running.settings.openai_api_key
        return
    replies = []
    if scenario.analysis is not None:
        built_in = {"summary", "sentiment", "intent", "lead_score", "action_items"}
        answer: dict[str, Any] = {"summary": "", "sentiment": 0, "intent": "", "lead_score": 0,
                                  "action_items": []}
        answer.update({k: v for k, v in scenario.analysis.items() if k in built_in})
        custom = {k: v for k, v in scenario.analysis.items() if k not in built_in}
        if custom or profile_has_custom(running):
            answer["custom"] = custom
        replies.append(ChatReply.json(answer))
    async with FakeOpenAIHTTP(replies) as fake:
        yield fake.url, "sk-local-fake"


def profile_has_custom(running: AgentStack) -> bool:
    return bool(running.settings.directory.default_profile.analysis_fields)
