"""`callbridge simulate`: a whole phone call through the real server, on this machine.

Owns the demo: it starts the server in-process on a free port, places a simulated call through
the full Twilio path (signed webhook, TwiML, signed media socket, 20 ms frames in real time) and
reports the transcript and per-turn latency, writing what the caller heard to a WAV file. Without
`OPENAI_API_KEY` the upstream is the local fake model (`callbridge.testing.fake_realtime`, or
`callbridge.testing.fake_live` for a `gpt-live*` model), so it works with no account; with a key it
talks to the real model. `model` (or `CALLBRIDGE_MODEL`) picks the agent's model, and so its API.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from callbridge.audio.wav import read_wav_ulaw, write_wav_ulaw_as_pcm16
from callbridge.config import Settings, load_settings
from callbridge.core.live_config import is_live_model
from callbridge.server.app import CallbridgeServer, create_app
from callbridge.server.bridge import Bridge
from callbridge.server.runner import running
from callbridge.store.database import describe
from callbridge.store.migrate import upgrade_async
from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_live import FakeLiveServer, LiveReply
from callbridge.testing.fake_realtime import FakeRealtimeServer, Reply
from callbridge.testing.speech import have_espeak, speak

PUBLIC_URL = "https://simulated.callbridge.invalid"
DEMO_GREETING = "Hello, you've reached the callbridge demo line. How can I help you today?"
DEMO_CALLER_LINES = (
    "Hi, what are your opening hours on Saturday?",
    "Great, thank you very much.",
)
DEMO_REPLIES = (
    "On Saturdays we're open from nine in the morning until five in the afternoon.",
    "You're welcome. Have a lovely weekend, goodbye!",
)


@dataclass
class SimulationResult:
    bridge: Bridge
    caller: FakeTwilioCaller
    greeting_heard_at: float | None
    used_fake_model: bool
    started_at: float
    stored: dict[str, Any] | None = None


async def simulate(
    *,
    wav: Path | None = None,
    out: Path = Path("simulated-call.wav"),
    env: Mapping[str, str] | None = None,
    stdout: TextIO = sys.stdout,
    model: str | None = None,
) -> SimulationResult:
    """Place one simulated call and print its report to `stdout`."""
    env = dict(os.environ if env is None else env)
    if model:
        env["CALLBRIDGE_MODEL"] = model
    live = is_live_model(env.get("CALLBRIDGE_MODEL", ""))
    use_fake = not env.get("OPENAI_API_KEY")
    caller_lines = () if wav is not None else DEMO_CALLER_LINES
    async with _upstream(use_fake, caller_lines, live) as upstream_url:
        settings = _settings(env, upstream_url, use_fake, live)
        if settings.database_url is not None:
            await upgrade_async(settings.database_url)  # the embedded default needs no set-up
        app = create_app(settings)
        state: CallbridgeServer = app.state.callbridge
        state.calls.keep_finished = 1
        async with running(app) as server:
            _print_header(stdout, server.url, settings, use_fake)
            result = await _call(server.url, settings, state, wav, caller_lines)
            result.stored = await _read_back(state, result.bridge.call_sid)
    result.used_fake_model = use_fake
    write_wav_ulaw_as_pcm16(out, result.caller.heard())
    _print_report(stdout, result, out)
    if result.stored is not None and settings.database_url is not None:
        call = result.stored
        print(f"  stored in {describe(settings.database_url)}: call {call['status']}, "
              f"{len(call['transcript'])} turns, {len(call['events'])} events, "
              f"estimated cost ${call['cost_usd']:.4f}", file=stdout)
    return result


async def _read_back(state: CallbridgeServer, call_sid: str) -> dict[str, Any] | None:
    """The call as the database has it, once the writer has caught up."""
    if state.writer is None or state.store is None:
        return None
    await state.writer.flush()
    return await state.store.get_call(call_sid)


@contextlib.asynccontextmanager
async def _upstream(use_fake: bool, caller_lines: tuple[str, ...],
                    live: bool) -> AsyncIterator[str | None]:
    if not use_fake:
        yield None
        return
    if live:
        async with FakeLiveServer([LiveReply(text) for text in DEMO_REPLIES],
                                  user_transcripts=list(caller_lines)) as fake_live:
            yield fake_live.url
        return
    replies = [Reply(text=text) for text in DEMO_REPLIES] or [Reply()]
    async with FakeRealtimeServer(replies, user_transcripts=list(caller_lines)) as fake:
        yield fake.url


def _settings(env: dict[str, str], upstream_url: str | None, use_fake: bool,
              live: bool = False) -> Settings:
    env.setdefault("CALLBRIDGE_PUBLIC_URL", PUBLIC_URL)
    env.setdefault("TWILIO_AUTH_TOKEN", secrets.token_hex(16))
    if upstream_url is not None:
        env["CALLBRIDGE_LIVE_URL" if live else "CALLBRIDGE_OPENAI_URL"] = upstream_url
    if use_fake:
        env.setdefault("CALLBRIDGE_GREETING", DEMO_GREETING)
    settings = load_settings(env, serving=False)
    # The simulated Twilio signs for this in-process server, whatever the configured public URL.
    return dataclasses.replace(settings, public_url=PUBLIC_URL,
                               twilio_auth_token=env["TWILIO_AUTH_TOKEN"])


async def _call(server_url: str, settings: Settings, state: CallbridgeServer,
                wav: Path | None, caller_lines: tuple[str, ...]) -> SimulationResult:
    async with FakeTwilioCaller(server_url, PUBLIC_URL, settings.twilio_auth_token) as caller:
        await caller.dial()
        await caller.connect()
        started_at = caller.now()
        greeting_at = None
        if settings.agent.greeting:
            greeting_at = await caller.wait_for_agent_audio(timeout=10.0)
            await caller.wait_until_agent_quiet(quiet_for=0.8, timeout=60.0)
        utterances = [read_wav_ulaw(wav)] if wav is not None else [speak(t) for t in caller_lines]
        for audio in utterances:
            await caller.say(audio)
            with contextlib.suppress(TimeoutError):
                await caller.wait_for_agent_audio(timeout=10.0, after=caller.spoken_until)
                await caller.wait_until_agent_quiet(quiet_for=0.8, timeout=60.0)
        await caller.hang_up()
        bridge = state.calls.get(caller.call_sid)
        if bridge is None:
            bridge = state.calls.finished_calls[-1]
        await bridge.finished.wait()
    return SimulationResult(bridge, caller, greeting_at, True, started_at)


def _print_header(out: TextIO, url: str, settings: Settings, use_fake: bool) -> None:
    model = settings.agent.model
    if use_fake:
        model = f"{model} on the local fake model (no OPENAI_API_KEY set)"
    speech = "espeak-ng" if have_espeak() else "a speech-like signal (install espeak-ng and sox)"
    print("callbridge simulate", file=out)
    print(f"  server   {url}  (the simulated Twilio signs for {PUBLIC_URL})", file=out)
    print(f"  model    {model}", file=out)
    print(f"  caller   20 ms μ-law frames in real time, speech from {speech}", file=out)
    print("", file=out, flush=True)


def _print_report(out: TextIO, result: SimulationResult, wav_path: Path) -> None:
    bridge, caller = result.bridge, result.caller
    offset = result.started_at - caller.now() + bridge.now()  # call clock ↔ loop time
    print(f"call {bridge.call_sid}", file=out)
    if result.greeting_heard_at is not None:
        print(f"  greeting heard {result.greeting_heard_at:.2f} s after the stream started",
              file=out)
    print("", file=out)
    for turn in sorted(bridge.transcript, key=lambda t: t.started):
        text = turn.heard if turn.role == "agent" else turn.text
        cut = "  [interrupted]" if turn.interrupted else ""
        print(f"  [{turn.started - offset:5.1f}s] {turn.role:>6}: {text}{cut}", file=out)
    print("", file=out)
    print("  turn   caller: audio ended → agent heard   bridge: speech end → played   model",
          file=out)
    measured = bridge.latencies
    for index, latency in enumerate(caller.turn_latencies, start=1):
        played, model = measured[index - 1] if index - 1 < len(measured) else ("-", None)
        model_text = f"{model} ms" if model is not None else "-"
        print(f"  {index:>4}   {latency * 1000:>29.0f} ms   {played:>24} ms   {model_text:>7}",
              file=out)
    seconds = len(caller.heard()) / 8000
    print(f"\n  wrote {wav_path} ({seconds:.1f} s of what the caller heard)", file=out)
    problems = caller.violations
    if problems:
        print(f"  Twilio protocol problems: {problems[:3]}", file=out)
