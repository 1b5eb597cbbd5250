"""One fault-injection rig: the real server in-process, a fake model — Realtime, or GPT-Live with
`live=True` — (optionally behind a fault proxy), a call record on SQLite or PostgreSQL — and what
each injection is measured by.

Every injection ends in an `Injection`: how the call came out (continued, ended gracefully with
the apology or a clean close, or died), data lost (turns the bridge finished but the record does
not hold; caller frames that reached no upstream session) and the audible gap (the longest
silence the caller heard between the fault and the agent's recovery, from `heard_segments`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.engine import make_url

from callbridge.config import load_settings
from callbridge.server.app import CallbridgeServer, create_app
from callbridge.server.runner import running
from callbridge.testing.fake_caller import FakeTwilioCaller, NotStreaming
from callbridge.testing.fake_live import FakeLiveServer, LiveReply, LiveSession
from callbridge.testing.fake_realtime import FakeRealtimeServer, Reply
from callbridge.testing.fault_proxy import FaultProxy
from callbridge.testing.speech import speechlike
from tests.databases import fresh_database
from tests.e2e.harness import AUTH_TOKEN, PUBLIC_URL, Harness
from tests.e2e.live_harness import LIVE_MODEL, LiveHarness

CONTINUED = "continued"
ENDED_GRACEFULLY = "ended gracefully"
DIED = "died"


@dataclass
class Injection:
    """What one injected fault did to one call."""

    outcome: str
    turns_finished: int
    turns_lost: int | None  # finished by the bridge, missing from the record
    frames_sent: int | None
    frames_lost: int | None  # sent by the caller, appended to no upstream session
    gap_s: float | None  # longest silence heard between the fault and the recovery
    healthy: bool  # /healthz 200, no live call left, every upstream socket closed
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rig:
    """A running rig: the harness (fake model, server, its state) and the fault proxies."""

    h: Harness | LiveHarness
    proxy: FaultProxy | None  # between the server and the fake model
    database_url: str
    database_proxy: FaultProxy | None = None  # between the server and the database

    @property
    def fake(self) -> FakeRealtimeServer:
        """The fake Realtime model (a rig started without `live`)."""
        assert isinstance(self.h.fake, FakeRealtimeServer), "a GPT-Live rig: use `live`"
        return self.h.fake

    @property
    def live(self) -> FakeLiveServer:
        """The fake GPT-Live model (a rig started with `live=True`)."""
        assert isinstance(self.h.fake, FakeLiveServer), "a Realtime rig: use `fake`"
        return self.h.fake

    @property
    def upstreams(self) -> list[Any]:
        """Every upstream socket the fake model accepted, in order: Realtime connections or
        GPT-Live sessions, each with `closed` and `client_events`."""
        fake = self.h.fake
        return list(fake.sessions if isinstance(fake, FakeLiveServer) else fake.connections)

    @property
    def state(self) -> CallbridgeServer:
        return self.h.state

    async def call(self, **options: Any) -> FakeTwilioCaller:
        """A caller that has dialled and connected its media stream."""
        caller = self.h.caller(**options)
        await caller.dial()
        await caller.connect()
        return caller


@contextlib.asynccontextmanager
async def rig(
    tmp_path: Path,
    replies: Sequence[Reply] | Sequence[LiveReply] | None = None,
    *,
    live: bool = False,
    env: dict[str, str] | None = None,
    backend: str = "sqlite",
    proxied: bool = False,
    database_proxied: bool = False,
    **fake_options: Any,
) -> AsyncIterator[Rig]:
    """Start a rig in `tmp_path` (its own directory) on a fresh database of `backend`.
    `live` makes the agent a GPT-Live one (`CALLBRIDGE_MODEL=gpt-live-1.1`) against the fake
    GPT-Live server (strict: it checks every client event), `replies` being `LiveReply`s.
    `proxied` puts a `FaultProxy` between the server and the fake model, `database_proxied`
    one between the server and the database (PostgreSQL)."""
    await asyncio.to_thread(tmp_path.mkdir, parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(_database(backend, tmp_path))
        database_proxy = None
        if database_proxied:
            target = make_url(database_url)
            database_proxy = await stack.enter_async_context(
                FaultProxy(target.host or "127.0.0.1", target.port or 5432))
            database_url = target.set(port=database_proxy.port).render_as_string(
                hide_password=False)
        fake = await stack.enter_async_context(_fake_model(live, replies, fake_options))
        proxy = None
        model_url = urlsplit(fake.url)
        upstream_url = fake.url
        if proxied:
            proxy = await stack.enter_async_context(
                FaultProxy("127.0.0.1", model_url.port or 0))
            upstream_url = f"ws://127.0.0.1:{proxy.port}{model_url.path}"
        model_env = ({"CALLBRIDGE_LIVE_URL": upstream_url, "CALLBRIDGE_MODEL": LIVE_MODEL}
                     if live else {"CALLBRIDGE_OPENAI_URL": upstream_url})
        settings = load_settings({
            "CALLBRIDGE_PUBLIC_URL": PUBLIC_URL, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            **model_env, "OPENAI_API_KEY": "sk-test",
            "DATABASE_URL": database_url, "CALLBRIDGE_INSTANCE_ID": f"faults-{tmp_path.name}",
            "CALLBRIDGE_JOURNAL": str(tmp_path / "journal.jsonl"),
            "CALLBRIDGE_RECORDINGS_DIR": str(tmp_path / "recordings"),
            **(env or {}),
        })
        app = create_app(settings)
        state: CallbridgeServer = app.state.callbridge
        state.calls.keep_finished = 100
        server = await stack.enter_async_context(running(app))
        h = (LiveHarness(fake, server, state) if isinstance(fake, FakeLiveServer)
             else Harness(fake, server, state))
        yield Rig(h, proxy, database_url, database_proxy)


def _fake_model(live: bool, replies: Sequence[Any] | None,
                options: dict[str, Any]) -> FakeRealtimeServer | FakeLiveServer:
    if live:
        return FakeLiveServer(replies or [LiveReply("Sure.", audio=speechlike(1.0, seed=9))],
                              strict=True, **options)
    return FakeRealtimeServer(replies or [Reply(text="Sure.", audio=speechlike(1.0, seed=9))],
                              **options)


@contextlib.asynccontextmanager
async def _database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    databases = fresh_database(backend, tmp_path)
    async with _migrations():  # Alembic's context is global: one migration at a time
        url = await anext(databases)
    try:
        yield url
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await anext(databases)


_MIGRATION_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary())


def _migrations() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    return _MIGRATION_LOCKS.setdefault(loop, asyncio.Lock())


# ---------------------------------------------------------------- driving a call


async def turn(caller: FakeTwilioCaller, seed: int, *, seconds: float = 0.6,
               within: float = 8.0) -> bool:
    """The caller says something and hears a whole reply; False if no reply came."""
    try:
        await caller.say(speechlike(seconds, seed=seed))
        await caller.wait_for_agent_audio(timeout=within, after=caller.spoken_until)
        await caller.wait_until_agent_quiet(quiet_for=0.4, timeout=within)
    except (TimeoutError, NotStreaming):
        return False
    return caller.closed_by_server_at is None


async def into_a_reply(caller: FakeTwilioCaller, *, seed: int) -> float:
    """The caller says something and the agent's reply starts: where most faults are injected.
    Returns the call's clock at that moment."""
    await caller.say(speechlike(0.6, seed=seed))
    await caller.wait_for_agent_audio(timeout=8.0, after=caller.spoken_until)
    return caller.now()


async def through_a_stall(r: Rig, caller: FakeTwilioCaller, seconds: float, *,
                          seed: int) -> tuple[float, bool]:
    """Into a reply, the network between us and the model carries nothing for `seconds` (the
    rig must be `proxied`), then the caller takes a turn. Returns (the audible gap, whether
    that turn was answered)."""
    assert r.proxy is not None
    stalled_at = await into_a_reply(caller, seed=seed + 400)
    r.proxy.stall()
    await asyncio.sleep(seconds)
    r.proxy.resume()
    await caller.wait_for_agent_audio(timeout=8.0, after=caller.now())
    return await settle_and_turn(caller, since=stalled_at, seed=seed, quiet_for=0.6,
                                 within=15.0)


async def settle_and_turn(caller: FakeTwilioCaller, *, since: float, seed: int,
                          quiet_for: float = 0.4, within: float = 10.0) -> tuple[float, bool]:
    """After a fault: wait until the agent is quiet, measure the audible gap since `since`, then
    take one more turn. Returns (the gap, whether that turn was answered)."""
    await caller.wait_until_agent_quiet(quiet_for=quiet_for, timeout=within)
    gap = audible_gap(caller.heard_segments, since, caller.now())
    return gap, await turn(caller, seed=seed)


async def until(predicate: Callable[[], bool], within: float = 8.0) -> bool:
    """Poll `predicate` every 5 ms; False when `within` wall seconds pass first."""
    try:
        async with asyncio.timeout(within):
            while not predicate():  # noqa: ASYNC110 - arbitrary predicates can only be polled
                await asyncio.sleep(0.005)
    except TimeoutError:
        return False
    return True


def agent_turns(r: Rig, caller: FakeTwilioCaller) -> list[str]:
    """The texts of the agent turns the bridge has finished so far."""
    return [t.text for t in r.h.bridge_of(caller).transcript if t.role == "agent"]


async def through_a_cut(r: Rig, caller: FakeTwilioCaller, *, seed: int) -> tuple[float, bool]:
    """The first upstream session is being cut mid-reply (`drop_when` set): wait for the cut,
    for the interrupted reply and the one after it to finish, then `settle_and_turn` from the
    moment of the cut. Returns (the gap, whether the next turn was answered)."""
    await until(lambda: bool(r.upstreams) and r.upstreams[0].closed)
    fault_at = caller.now()
    await until(lambda: len(agent_turns(r, caller)) >= 2, within=12.0)
    return await settle_and_turn(caller, since=fault_at, seed=seed)


def client_events(r: Rig, kind: str) -> list[dict[str, Any]]:
    """Every client event of `kind` the fake model received, over all sessions."""
    return [e for c in r.upstreams for e in c.client_events if e.get("type") == kind]


def greetings_requested(r: Rig) -> int:
    """`response.create` events carrying instructions (the greeting), over all sessions."""
    return sum(1 for e in client_events(r, "response.create") if "response" in e)


def no_violations(r: Rig, caller: FakeTwilioCaller) -> None:
    """Neither fake saw a protocol violation: the fault did not make the bridge misbehave."""
    assert r.h.fake.violations == []
    assert caller.violations == []


def outcome(caller: FakeTwilioCaller, went_on: bool) -> str:
    """continued (a turn after the fault worked), ended gracefully (the apology), or died."""
    if went_on and caller.closed_by_server_at is None:
        return CONTINUED
    if caller.closed_by_server_at is not None and caller.fallback_said:
        return ENDED_GRACEFULLY
    return DIED


# ---------------------------------------------------------------- measuring


def audible_gap(segments: list[tuple[float, float]], start: float, end: float) -> float:
    """The longest silence in [start, end] before the last audio heard in it; all of it when
    nothing was heard. Silence after the agent finished is not a gap."""
    cursor, longest, heard = start, 0.0, False
    for seg_start, seg_end in sorted(segments):
        if seg_end <= cursor:
            continue
        if seg_start >= end:
            break
        longest = max(longest, seg_start - cursor)
        cursor, heard = max(cursor, seg_end), True
    return round(longest if heard else end - start, 3)


async def frames_lost(r: Rig, caller: FakeTwilioCaller) -> int:
    """Caller frames no upstream session received: the smallest `sent − appended` over 10
    samples 7 ms apart, so a frame in flight on loopback is not counted as lost. Appended
    audio (Realtime's `input_audio_buffer.append`, GPT-Live's `session.input_audio.append`,
    which also carries the μ-law silence the bridge sends while caller frames are late) is
    counted in 20 ms frames of each session's format, since a PCM16 session gets it
    resampled and in appends of any length; there libsoxr may hold up to 73 ms back (docs/
    audio.md), which is not lost while the call goes on, so up to 4 frames are allowed for."""
    pcm16 = any(_pcm16(c) for c in r.upstreams)
    held = 4 if pcm16 else 0
    differences = []
    for _ in range(10):
        differences.append(caller.frames_sent - _frames_appended(r))
        await asyncio.sleep(0.007)
    return max(0, math.floor(min(differences) + 1e-9) - held)


_APPENDS = frozenset({"input_audio_buffer.append", "session.input_audio.append"})


def _pcm16(upstream: Any) -> bool:
    """Whether an upstream session takes PCM16 (24 kHz) audio; GPT-Live ones take μ-law."""
    if isinstance(upstream, LiveSession):
        return False
    fmt = upstream.session.get("audio", {}).get("input", {}).get("format", {})
    return isinstance(fmt, dict) and fmt.get("type", "audio/pcmu") == "audio/pcm"


def _frames_appended(r: Rig) -> float:
    frames = 0.0
    for upstream in r.upstreams:
        bytes_per_frame = 960 if _pcm16(upstream) else 160
        for event in upstream.client_events:
            if event.get("type") in _APPENDS:
                frames += len(base64.b64decode(event.get("audio", ""))) / bytes_per_frame
    return frames


async def turns_lost(r: Rig, caller: FakeTwilioCaller, *, within: float = 20.0) -> int:
    """Turns the bridge finished that the call record does not hold (after it caught up)."""
    bridge = r.h.bridge_of(caller)
    await asyncio.wait_for(bridge.finished.wait(), 5.0)
    writer, store = r.state.writer, r.state.store
    assert writer is not None
    assert store is not None
    await until(lambda: writer.database_up, within=within)
    await writer.flush(within=within)
    call = await store.get_call(caller.call_sid)
    stored = {(t["role"], t["item_id"]) for t in call["transcript"]} if call else set()
    finished = {(t.role, t.item_id) for t in bridge.transcript}
    return len(finished - stored)


async def ended_in_record(r: Rig, caller: FakeTwilioCaller) -> str | None:
    """The stored end reason of the call (None: not stored as ended)."""
    assert r.state.store is not None
    call = await r.state.store.get_call(caller.call_sid)
    if call is None or call["ended_at"] is None:
        return None
    return str(call["end_reason"])


async def healthy(r: Rig) -> bool:
    """/healthz answers 200, no call is live any more and every upstream socket is closed."""
    async with httpx.AsyncClient(base_url=r.h.server.url, trust_env=False) as client:
        status = (await client.get("/healthz")).status_code
    settled = await until(lambda: len(r.state.calls) == 0
                          and all(c.closed for c in r.upstreams), within=3.0)
    return status == 200 and settled


async def conclude(r: Rig, caller: FakeTwilioCaller, *, went_on: bool, gap: float | None,
                   count_frames: bool = True, **notes: Any) -> Injection:
    """Check that neither fake saw a protocol violation, then hang up and measure: outcome,
    turns and frames lost, the gap, the process's health."""
    no_violations(r, caller)
    lost_frames = await frames_lost(r, caller) if count_frames else None
    result = outcome(caller, went_on)
    await caller.hang_up()
    await caller.aclose()
    lost_turns = await turns_lost(r, caller)
    bridge = r.h.bridge_of(caller)
    return Injection(
        outcome=result, turns_finished=len(bridge.transcript), turns_lost=lost_turns,
        frames_sent=caller.frames_sent if count_frames else None, frames_lost=lost_frames,
        gap_s=gap, healthy=await healthy(r),
        notes={"reconnects": bridge.session.stats.reconnects,
               "sessions": len(r.upstreams), **notes},
    )


def assert_survived(results: list[Injection], *, max_gap: float | None = None,
                    frames: bool = True) -> None:
    """Every call went on, lost no turn (and, with `frames`, no caller frame), the process stayed
    healthy, and no audible gap reached `max_gap` seconds."""
    assert [r.outcome for r in results] == [CONTINUED] * len(results), results
    assert all(r.turns_lost == 0 and r.healthy for r in results), results
    if frames:
        assert all(r.frames_lost == 0 for r in results), results
    if max_gap is not None:
        assert all(r.gap_s is not None and r.gap_s < max_gap for r in results), results


Scenario = Callable[[Path, int], Awaitable[Injection]]  # (its own directory, its number) → result


async def inject(n: int, tmp_path: Path, scenario: Scenario) -> list[Injection]:
    """Run `scenario` n times at once, each in a rig of its own (its own fake, server, record);
    if one fails, the others are cancelled."""
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(scenario(tmp_path / f"injection-{i}", i)) for i in range(n)]
    return [task.result() for task in tasks]
