"""One WebSocket session of the fake GPT-Live server: the protocol as the server sees it.

Owns a connection's state and every client event: `session.start` first (anything else before it
is an error and the socket closes), strict validation of each event against the SDK's types (a
failure is a recorded violation answered with a non-fatal `error` event), the caller's input
(clock, gaps, mute, VAD, barge-in), the model's turns (scripted, echo, greeting on commentary),
delegation in both modes, usage, `session.close` and expiry. The voice lives in
`fake_live_speech`, the backend's rules in `fake_live_delegation` and its responses in
`fake_live_backend`. It never crashes on bad input: every problem becomes an `error` event.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed

from callbridge.audio.g711 import pcm16_to_ulaw
from callbridge.testing import fake_live_wire as wire
from callbridge.testing.fake_live_audio import CallerInput, CallerTurn, InputGap
from callbridge.testing.fake_live_backend import BackendResponse
from callbridge.testing.fake_live_config import Dropped, FakeLiveConfig, LiveRecorder, LiveReply
from callbridge.testing.fake_live_delegation import Delegation, Delegations, Refused
from callbridge.testing.fake_live_speech import Utterance, Voice
from callbridge.testing.fake_live_wire import JsonDict
from callbridge.testing.fake_model_server import client_event
from callbridge.testing.fake_tasks import ConnectionTasks
from callbridge.testing.live_validation import (
    ClientEventInvalid,
    ServerEventInvalid,
    validate_live_client_event,
    validate_live_server_event,
)

logger = logging.getLogger(__name__)

# "…", “…” or '…' (a single quote only where it is not an apostrophe inside a word).
_QUOTED = re.compile(r""""([^"]{2,})"|“([^”]{2,})”|(?<!\w)'([^']{2,})'(?!\w)""")
_ASKS_TO_SPEAK = re.compile(r"\b(greet|say|tell|speak)\b", re.IGNORECASE)
_BACKEND_LATENCY_S = 0.05
_FIXTURE_MAX_BYTES = 30 * 24_000 * 2
# Audio events carry no event_id (the SDK's models declare none).
_WITHOUT_EVENT_ID = frozenset({"session.output_audio.delta", "session.input_audio.append"})


def speakable(content: str) -> str:
    """What the model says for commentary: the quoted text if any, else the content itself."""
    match = _QUOTED.search(content)
    if match is None:
        return content
    return next(group for group in match.groups() if group is not None)


class LiveSession:
    """What one client did on the fake server, and the session it had.

    For tests: `request_headers`, `client_events` (every JSON object received, in order),
    `sent_events`, `session_id`, `resource` (the `SessionResource`), `input_audio` (every μ-law byte
    received), `input_gaps` / `input_missing_ms` (input that stopped), `muted_ranges`,
    `clock_ms`, `spoken` (`Utterance`s), `delegations`, `function_outputs`, `response_creates`,
    `violations`, `closed_reason` (of the `session.closed` sent, if any), `closed`, `close_code`.
    """

    def __init__(self, ws: ServerConnection, config: FakeLiveConfig, recorder: LiveRecorder,
                 number: int, next_reply: Callable[[], LiveReply]) -> None:
        assert ws.request is not None, "the handshake is complete when a session is created"
        self.request_headers: Headers = ws.request.headers
        self.config, self.recorder = config, recorder
        self.client_events: list[JsonDict] = []
        self.sent_events: list[JsonDict] = []
        self.violations: list[str] = []
        self.session_id: str | None = None
        self.resource: JsonDict | None = None
        self.spoken: list[Utterance] = []
        self.function_outputs: dict[str, str] = {}
        self.response_creates = 0
        self.closed_reason: str | None = None
        self.closed = False
        self.close_code: int | None = None
        self.input = CallerInput(
            threshold_dbfs=config.vad_threshold_dbfs,
            start_ms=config.vad_start_ms,
            silence_ms=config.silence_duration_ms,
            gap_tolerance_ms=config.gap_tolerance_ms,
        )
        self._delegations = Delegations()
        self._ws, self._where, self._next_reply = ws, f"session {number}", next_reply
        self._voice = Voice(self)
        self._tasks = ConnectionTasks("fake GPT-Live server", self._violation)
        self._clock_moved = asyncio.Event()
        self._pending_acks: list[JsonDict] = []
        self._closing = self._aborted = self._hung_up = False
        self._started_at = 0.0
        self._transcript_index = 0
        self._backchannelled_turn: float | None = None
        self._context_appends = 0  # commentary/thinking so far: they cancel pending fillers
        self._handlers: dict[str, Callable[[JsonDict], Coroutine[Any, Any, None]]] = {
            "session.start": self._on_second_start,
            "session.update": self._on_update,
            "session.close": self._on_close,
            "session.input_audio.append": self._on_append,
            "session.input_audio.mute": self._on_mute,
            "session.input_audio.unmute": self._on_mute,
            "session.output_audio.fixture.play": self._on_fixture,
            "session.instructions.append": self._on_append_context,
            "session.thinking.append": self._on_append_context,
            "session.commentary.append": self._on_append_context,
            "decision.create": self._unsupported,
            "decision.item.create": self._unsupported,
            "decision.item.delete": self._unsupported,
            "response.item.create": self._on_item_create,
            "response.create": self._on_response_create,
        }

    # ---- what happened ----------------------------------------------------------------------

    @property
    def clock_ms(self) -> float:
        """The session clock: ms of caller audio received."""
        return self.input.clock_ms

    @property
    def input_audio(self) -> bytes:
        return bytes(self.input.audio)

    @property
    def input_gaps(self) -> list[InputGap]:
        return list(self.input.gaps)

    @property
    def input_missing_ms(self) -> float:
        return self.input.missing_ms

    @property
    def muted_ranges(self) -> list[tuple[float, float | None]]:
        return list(self.input.muted_ranges)

    @property
    def delegations(self) -> list[Delegation]:
        return list(self._delegations.all)

    @property
    def delegation_mode(self) -> str | None:
        if self.resource is None:
            return None
        return str(self.resource["delegation"]["type"])

    # ---- life cycle -------------------------------------------------------------------------

    async def serve(self) -> None:
        """Run the session until the socket closes. Called once by the server's handler."""
        try:
            self._tasks.spawn(self._voice.run())
            async for message in self._ws:
                await self._receive(message)
        except (ConnectionClosed, Dropped):
            pass
        finally:
            self._closing = True
            self._clock_moved.set()
            await self._tasks.cancel()
            self.closed = True
            self.close_code = 1006 if self._aborted else self._ws.close_code

    def abort(self) -> None:
        """Drop the TCP connection without a close frame; the client sees 1006."""
        if not self.closed:
            self._aborted = self.closed = True
            self.close_code = 1006
            self._ws.transport.abort()

    async def send_error(self, code: str, message: str, type_: str, *, fatal: bool) -> None:
        """Send an `error` event (test control); fatal: then close the socket (1011)."""
        if self.closed:
            return
        with contextlib.suppress(ConnectionClosed, Dropped):
            await self.emit(wire.error_event(code, message, type_=type_))
            if fatal:
                await self._ws.close(1011, code)

    async def emit(self, event: JsonDict) -> None:
        """Send one server event (adds `event_id` where the API has one); honours stalls,
        `drop_when` and `strict`."""
        await self.recorder.sending.wait()
        if event["type"] not in _WITHOUT_EVENT_ID:
            event = {"type": event["type"], "event_id": wire.new_id("event"), **event}
        if self.recorder.should_drop(event["type"]):
            self.abort()
            raise Dropped(event["type"])
        if self.config.strict:
            try:
                validate_live_server_event(event)
            except ServerEventInvalid as exc:
                self._violation(f"server emitted an invalid event: {exc}")
        self.sent_events.append(event)
        await self._ws.send(json.dumps(event))

    def _close_soon(self, code: int, reason: str) -> None:
        """Close the socket from a task of its own: the receive loop must keep reading meanwhile
        (a client still streaming audio would otherwise fill the buffer and hide its close
        frame), and everything it reads from now on is ignored."""
        self._hung_up = True
        self._tasks.spawn(self._ws.close(code, reason))

    async def _pause(self, ms: float) -> None:
        await asyncio.sleep(ms / 1000 / self.config.speed)

    # ---- SpeechHost -------------------------------------------------------------------------

    async def caller_quiet(self) -> None:
        while self.input.in_turn and not self._closing:
            await self._wait_clock()

    async def clock_reaches(self, ms: float) -> None:
        while self.clock_ms < ms and not self._closing:
            await self._wait_clock()

    async def _wait_clock(self) -> None:
        self._clock_moved.clear()
        await self._clock_moved.wait()

    def _say(self, text: str, why: str, audio: bytes | None = None, after_ms: float = 0.0) -> None:
        """Queue speech that starts no sooner than `after_ms` (the model's reaction time) from
        now; its audio is made meanwhile, and the receive loop never waits for it."""
        not_before = asyncio.get_running_loop().time() + after_ms / 1000 / self.config.speed
        utterance = Utterance(text=text, why=why, audio_planned=audio, not_before=not_before)
        self.spoken.append(utterance)
        self._voice.say(utterance)

    # ---- receiving --------------------------------------------------------------------------

    async def _receive(self, message: str | bytes) -> None:
        if self._hung_up:
            return
        event = client_event(message)
        if isinstance(event, tuple):
            await self._reject(*event)
            return
        self.client_events.append(event)
        try:
            validate_live_client_event(event)
        except ClientEventInvalid as exc:
            await self._reject(exc.code, str(exc), event, exc.param)
            if self.resource is None:
                self._close_soon(1008, "invalid session.start")
            return
        if self.resource is None:
            await self._before_start(event)
        elif self._closing and event["type"] != "session.input_audio.append":
            await self._error("session_closing", "The session is closing.", event)
        else:
            await self._handlers[event["type"]](event)

    def _violation(self, message: str) -> None:
        self.violations.append(message)
        self.recorder.violation(self._where, message)

    async def _error(self, code: str, message: str, event: JsonDict | None = None,
                     param: str | None = None) -> None:
        """An `error` event for a legitimate runtime condition (not a violation)."""
        event_id = event.get("event_id") if event is not None else None
        await self.emit(wire.error_event(
            code, message, param=param,
            client_event_id=event_id if isinstance(event_id, str) else None,
        ))

    async def _reject(self, code: str, message: str, event: JsonDict | None = None,
                      param: str | None = None) -> None:
        """An `error` event for something a correct client never sends (a violation)."""
        self._violation(message)
        await self._error(code, message, event, param)

    # ---- session ----------------------------------------------------------------------------

    async def _before_start(self, event: JsonDict) -> None:
        if event["type"] != "session.start":
            message = f"Send session.start first and wait for session.started; got {event['type']}."
            await self._reject("session_not_started", message, event)
            self._close_soon(1008, "session.start must come first")
            return
        config: JsonDict = event["session"]
        problem = wire.startup_problem(config)
        if problem is not None:
            await self._reject(problem.code, str(problem), event, problem.param)
            self._close_soon(1008, problem.code)
            return
        self.session_id = wire.new_id("live")
        expires_at = int(time.time() + self.config.expires_in_s)
        self.resource = wire.session_resource(self.session_id, config, expires_at)
        self._started_at = time.monotonic()
        await self.emit(self._ack("session.started", event, session=self.resource))
        self._tasks.spawn(self._report_usage())
        self._tasks.spawn(self._expire())

    def _ack(self, event_type: str, event: JsonDict, **fields: Any) -> JsonDict:
        ack: JsonDict = {"type": event_type, **fields}
        if isinstance(event.get("event_id"), str):
            ack["client_event_id"] = event["event_id"]
        return ack

    async def _on_second_start(self, event: JsonDict) -> None:
        await self._reject("session_already_started", "The session has already started.", event)

    async def _on_update(self, event: JsonDict) -> None:
        assert self.resource is not None
        update: JsonDict = event["session"]
        current = self.resource["delegation"]
        delegation = update.get("delegation")
        if delegation is not None and delegation["type"] != current["type"]:
            message = "The delegation type cannot change after startup."
            await self._reject("immutable_field_update", message, event, "session.delegation.type")
            return
        if delegation is not None:
            for key, value in delegation.items():
                if isinstance(value, dict) and isinstance(current.get(key), dict):
                    current[key].update(value)
                else:
                    current[key] = value
        if "triggers" in update:
            self.resource["triggers"] = update["triggers"]
        await self.emit(self._ack("session.updated", event, session=self.resource))

    async def _on_close(self, event: JsonDict) -> None:
        self._closing = True
        self._clock_moved.set()  # the voice drains without waiting for input
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.close_drain_ms / 1000 / self.config.speed):
                await self._voice.idle()
        await self._finish("close_requested", event)

    async def _finish(self, reason: str, event: JsonDict | None = None) -> None:
        self.closed_reason = reason
        closed = {"reason": reason, "session": self.resource, "usage": self._usage()}
        await self.emit(self._ack("session.closed", event or {}, **closed))
        self._close_soon(1000, reason)

    def _usage(self) -> JsonDict:
        return {"seconds": round(time.monotonic() - self._started_at, 3)}

    async def _report_usage(self) -> None:
        while True:
            await asyncio.sleep(self.config.usage_interval_s)
            await self.emit({"type": "session.usage.updated", "usage": self._usage()})

    async def _expire(self) -> None:
        await asyncio.sleep(self.config.expires_in_s)
        self._closing = True
        self._clock_moved.set()
        await self._finish("expired")

    async def _unsupported(self, event: JsonDict) -> None:
        message = f"The fake GPT-Live server does not implement {event['type']}."
        await self._error("unsupported_by_fake", message, event)

    # ---- input audio ------------------------------------------------------------------------

    async def _on_append(self, event: JsonDict) -> None:
        if self._closing:
            return
        try:
            data = base64.b64decode(event["audio"], validate=True)
        except binascii.Error:
            message = "session.input_audio.append: audio is not valid base64."
            await self._reject("invalid_value", message, event, "audio")
            return
        turns = self.input.receive(data, time.monotonic())
        self._clock_moved.set()
        await self._release_acks()
        current = self._voice.current
        talking = self._voice.speaking and current is not None and current.why != "backchannel"
        if talking and self.input.speaking_ms >= self.config.barge_in_ms:
            self._voice.stop()
        self._maybe_backchannel()
        for turn in turns:
            await self._caller_turn(turn)

    def _maybe_backchannel(self) -> None:
        """Once per long caller turn, while the model is quiet, a short "Mhm." over the caller."""
        after, turn = self.config.backchannel_after_ms, self.input.turn_start_ms
        if after is None or turn is None or turn == self._backchannelled_turn:
            return
        if self.input.speaking_ms >= after and not self._voice.busy:
            self._backchannelled_turn = turn
            self._say("Mhm.", "backchannel")

    async def _on_mute(self, event: JsonDict) -> None:
        muted = event["type"] == "session.input_audio.mute"
        self.input.mute(muted)
        await self.emit(self._ack("session.input_audio.muted" if muted else
                                  "session.input_audio.unmuted", event))

    async def _release_acks(self) -> None:
        """Context appends are acknowledged once the input clock has moved past them."""
        acks, self._pending_acks = self._pending_acks, []
        for ack in acks:
            await self.emit(ack)

    async def _on_fixture(self, event: JsonDict) -> None:
        """Play a PCM16 24 kHz clip through the output (as μ-law): it cuts the model's speech,
        input is dropped while it plays, one at a time; acked `playing`, then `played`."""
        if self.input.held:
            await self._error("fixture_active", "An audio fixture is already playing.", event)
            return
        try:
            pcm = base64.b64decode(event["audio"], validate=True)
        except binascii.Error:
            await self._reject("invalid_value", "audio is not valid base64.", event, "audio")
            return
        if len(pcm) % 2 or not pcm:
            message = "Fixture audio must be whole PCM16LE samples."
            await self._reject("invalid_audio", message, event, "audio")
            return
        if len(pcm) > _FIXTURE_MAX_BYTES:
            await self._reject("invalid_value", "Fixtures are at most 30 s.", event, "audio")
            return
        samples = np.frombuffer(pcm, dtype="<i2")[::3]  # 24 kHz → 8 kHz; a fake need not filter
        clip = Utterance(text="", why="fixture", audio_planned=pcm16_to_ulaw(samples))
        self.input.held = True
        self.spoken.append(clip)
        await self.emit(self._ack("session.output_audio.fixture.playing", event))
        self._voice.play_now(clip)
        self._tasks.spawn(self._fixture_played(clip, event))

    async def _fixture_played(self, clip: Utterance, event: JsonDict) -> None:
        await clip.finished.wait()
        self.input.held = False
        await self.emit(self._ack("session.output_audio.fixture.played", event))

    # ---- the model's turns ------------------------------------------------------------------

    async def _caller_turn(self, turn: CallerTurn) -> None:
        text = self._next_transcript(turn)
        await self.emit({"type": "session.input_transcript.delta", "delta": " " + text,
                         "start_ms": int(turn.start_ms), "end_ms": int(turn.end_ms)})
        talked_over = any(
            u.interrupted and (u.end_ms or 0) >= turn.start_ms for u in self.spoken
        )
        backchannel = (
            turn.end_ms - turn.start_ms < self.config.barge_in_ms
            and self._voice.speaking
            and not talked_over
        )
        if backchannel:
            return
        self._tasks.spawn(self._respond(turn, text))

    def _next_transcript(self, turn: CallerTurn) -> str:
        scripted = self.config.user_transcripts
        index, self._transcript_index = self._transcript_index, self._transcript_index + 1
        if scripted is not None and index < len(scripted):
            return scripted[index]
        return f"(caller spoke {(turn.end_ms - turn.start_ms) / 1000:.1f} s)"

    async def _respond(self, turn: CallerTurn, transcript: str) -> None:
        if self.config.echo:
            self._say(transcript, "echo", turn.audio, after_ms=self.config.reaction_ms)
            return
        reply = self._next_reply()
        if not reply.delegates:
            self._say(reply.text, "reply", reply.audio, self.config.reaction_ms + reply.delay_ms)
            return
        await self._pause(self.config.reaction_ms + reply.delay_ms)
        if self.delegation_mode == "responses":
            await self._delegate_to_backend(reply)
        else:
            await self._delegate_to_client(reply)

    async def _on_append_context(self, event: JsonDict) -> None:
        assert self.resource is not None
        content: str = event["content"]
        if self.input.held and event["type"] == "session.commentary.append":
            message = "Commentary is rejected while an audio fixture is active."
            await self._error("fixture_active", message, event)
            return
        if wire.text_tokens(content) > wire.MAX_APPEND_TOKENS:
            message = f"content exceeds {wire.MAX_APPEND_TOKENS} tokens."
            await self._reject("invalid_value", message, event, "content")
            return
        delegation: Delegation | None = None
        if event["delegation_id"] is not None:
            delegation = await self._client_delegation(event)
            if delegation is None:
                return
        kind = event["type"].split(".")[1]
        if kind in ("commentary", "thinking"):
            self._context_appends += 1
        at = int(self.clock_ms)
        end = at + (int(len(content.split()) * 60000 / 175) if kind == "commentary" else 0)
        self._pending_acks.append(self._ack(f"session.{kind}.appended", event,
                                            start_ms=at, end_ms=end))
        if delegation is not None and kind == "commentary":
            delegation.answers.append(content)
            self._say(speakable(content), "commentary", after_ms=self.config.reaction_ms)
        elif kind == "commentary" or (kind == "instructions" and self._asks_to_speak(content)):
            greeting = self.config.greeting
            first = not any(u.why == "greeting" for u in self.spoken)
            text = greeting if greeting is not None and first else speakable(content)
            self._say(text, "greeting" if first else "commentary", after_ms=self.config.reaction_ms)

    @staticmethod
    def _asks_to_speak(content: str) -> bool:
        return bool(_QUOTED.search(content) or _ASKS_TO_SPEAK.search(content))

    async def _client_delegation(self, event: JsonDict) -> Delegation | None:
        delegation_id = str(event["delegation_id"])
        if self.delegation_mode == "responses":
            message = "Non-null delegation_id is not accepted with Responses delegation."
            await self._reject("invalid_value", message, event, "delegation_id")
            return None
        delegation = self._delegations.find(delegation_id)
        if delegation is None or delegation.target != "client":
            message = f"Unknown client delegation '{delegation_id}'."
            await self._reject("invalid_value", message, event, "delegation_id")
            return None
        return delegation

    # ---- delegation -------------------------------------------------------------------------

    async def _announce(self, delegation: Delegation, response_id: str | None = None) -> None:
        self._delegations.all.append(delegation)
        body: JsonDict = {"id": delegation.id, "type": "delegation", "target": delegation.target}
        if response_id is not None:
            body["response_id"] = response_id
        await self.emit({"type": "session.delegation.created", "delegation": body,
                         "offset_ms": delegation.offset_ms})
        if delegation.reply.filler:
            self._tasks.spawn(self._acknowledge(delegation.reply.filler))

    async def _acknowledge(self, filler: str) -> None:
        """The automatic spoken acknowledgement: requested `acknowledgement_delay_ms` after the
        delegation, cancelled by any commentary or thinking appended meanwhile."""
        assert self.resource is not None
        appended = self._context_appends
        await self._pause(float(self.resource["delegation"].get("acknowledgement_delay_ms") or 0))
        if self._context_appends == appended:
            self._say(filler, "filler")

    async def _delegate_to_client(self, reply: LiveReply) -> None:
        delegation = Delegation(wire.new_id("del"), "client", reply, int(self.clock_ms))
        await self._announce(delegation)

    async def _delegate_to_backend(self, reply: LiveReply) -> None:
        delegation = Delegation(wire.new_id("del"), "responses", reply, int(self.clock_ms))
        response_id = wire.new_id("resp")
        await self._announce(delegation, response_id)
        backend = BackendResponse(self.emit, self._delegations, delegation.id, response_id,
                                  model=self._backend_model())
        await backend.start()
        await backend.item(wire.reasoning_item())
        for call in reply.tool_calls:
            call_id = call.call_id or wire.new_id("call")
            delegation.calls[call_id] = call
            await backend.item(wire.function_call_item(call_id, call.name,
                                                       json.dumps(call.arguments)))
        if reply.backend_fails:
            delegation.discarded = True
            await backend.fail()
            self._say(reply.text, "apology", reply.audio)
            return
        if not reply.tool_calls:
            await backend.item(wire.message_item(reply.text))
        await backend.complete()
        if not reply.tool_calls:
            self._say(reply.text, "backend", reply.audio)

    def _backend_model(self) -> str:
        assert self.resource is not None
        return str((self.resource["delegation"].get("responses") or {}).get("model", "gpt-5.6"))

    async def _on_item_create(self, event: JsonDict) -> None:
        if self.delegation_mode != "responses":
            message = "response.item.create requires Responses delegation."
            await self._reject("invalid_request_error", message, event)
            return
        item: JsonDict = event["item"]
        if item.get("type") != "function_call_output":
            return  # queued for the backend's next response; the fake's backend ignores it
        output = item["output"] if isinstance(item["output"], str) else json.dumps(item["output"])
        try:
            self._delegations.add_output(item["call_id"], output)
        except Refused as exc:
            if exc.violation:
                self._violation(str(exc))
            await self._error(exc.code, str(exc), event, exc.param)
            return
        self.function_outputs[item["call_id"]] = output

    async def _on_response_create(self, event: JsonDict) -> None:
        self.response_creates += 1
        if self.delegation_mode != "responses":
            message = "response.create requires Responses delegation."
            await self._reject("invalid_request_error", message, event)
            return
        try:
            resumed = self._delegations.continue_all()
        except Refused as exc:
            await self._reject(exc.code, str(exc), event, exc.param)
            return
        for delegation in resumed:
            self._tasks.spawn(self._continue(delegation))

    async def _continue(self, delegation: Delegation) -> None:
        outputs = "; ".join(delegation.outputs[call_id] for call_id in delegation.calls)
        text = delegation.reply.text.replace("{outputs}", outputs)
        backend = BackendResponse(self.emit, self._delegations, delegation.id, wire.new_id("resp"),
                                  model=self._backend_model())
        await backend.start()
        await asyncio.sleep(_BACKEND_LATENCY_S / self.config.speed)
        await backend.item(wire.message_item(text))
        await backend.complete()
        self._say(text, "backend")

