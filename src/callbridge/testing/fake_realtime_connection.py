"""One WebSocket session of the fake Realtime server: the GA protocol as the server sees it.

Owns a connection's state and every client event: validation (each event against the SDK's types;
a failure is a recorded violation answered with an `error` event), `session.update`, input audio
and server VAD, the conversation (items, truncation), and starting and cancelling responses (the
streaming itself lives in `fake_realtime_response`). It records what it received and sent for
tests. It must never crash on bad input: every problem becomes an `error` event.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import json
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed

from callbridge.testing import fake_realtime_wire as wire
from callbridge.testing.fake_model_server import client_event
from callbridge.testing.fake_realtime_audio import (
    SUPPORTED_FORMATS,
    InputAudio,
    TurnEnded,
    TurnStarted,
    VadSettings,
    bytes_to_ms,
    format_type,
    vad_settings,
)
from callbridge.testing.fake_realtime_config import Dropped, FakeConfig, Recorder, Reply
from callbridge.testing.fake_realtime_conversation import Conversation, ItemRefused
from callbridge.testing.fake_realtime_response import ResponsePlan, ResponseStream
from callbridge.testing.fake_realtime_wire import JsonDict
from callbridge.testing.fake_tasks import ConnectionTasks
from callbridge.testing.openai_validation import (
    ClientEventInvalid,
    ServerEventInvalid,
    validate_client_event,
    validate_server_event,
)

logger = logging.getLogger(__name__)

_TRANSCRIPTION_DELAY_S = 0.02


class FakeConnection:
    """What one client did on the fake server, and the session it had.

    Public attributes are for tests to inspect: `request_headers`, `path`, `query`,
    `client_events` (every JSON object received, in order), `sent_events`, `session` (the effective
    configuration), `items` (the conversation, in order), `violations`, `closed`, `close_code`.
    """

    def __init__(
        self, ws: ServerConnection, config: FakeConfig, recorder: Recorder, number: int
    ) -> None:
        request = ws.request
        assert request is not None, "the handshake is complete when a connection is created"
        url = urlsplit(request.path)
        self.request_headers: Headers = request.headers
        self.path = url.path
        self.query = dict(parse_qsl(url.query, keep_blank_values=True))
        self.client_events: list[JsonDict] = []
        self.sent_events: list[JsonDict] = []
        self.conversation = Conversation()
        self.items = self.conversation.items
        self.violations: list[str] = []
        self.closed = False
        self.close_code: int | None = None
        self.config, self.recorder = config, recorder
        self.session = wire.default_session(
            model=self.query.get("model", ""),
            expires_at=int(time.time() + (config.session_max_seconds or 3600)),
            silence_duration_ms=config.silence_duration_ms,
        )
        self.conversation_id = wire.new_id("conv")
        self._ws, self._where = ws, f"connection {number}"
        self._tasks = ConnectionTasks("fake realtime server", self._violation)
        self._closing = self._aborted = False
        self._response: ResponseStream | None = None
        self._auto_response_pending = False
        self._reply_index = self._transcript_index = 0
        self._audio_produced = False
        self._last_user_audio: bytes | None = None
        self._last_user_transcript = ""
        self._previous_input = (0, 0)
        self._input = InputAudio(
            self._format("input"), self._vad_settings(), lambda: wire.new_id("item")
        )
        self._handlers: dict[str, Callable[[JsonDict], Coroutine[Any, Any, None]]] = {
            "session.update": self._on_session_update,
            "input_audio_buffer.append": self._on_append,
            "input_audio_buffer.commit": self._on_commit,
            "input_audio_buffer.clear": self._on_clear,
            "output_audio_buffer.clear": self._on_output_clear,
            "conversation.item.create": self._on_item_create,
            "conversation.item.delete": self._on_item_delete,
            "conversation.item.retrieve": self._on_item_retrieve,
            "conversation.item.truncate": self._on_truncate,
            "response.create": self._on_response_create,
            "response.cancel": self._on_response_cancel,
        }

    # ---- life cycle -------------------------------------------------------------------------

    async def serve(self) -> None:
        """Run the session until the socket closes. Called once by the server's handler."""
        try:
            if "OpenAI-Beta" in self.request_headers:
                await self._refuse_beta()
                return
            await self.emit({"type": "session.created", "session": copy.deepcopy(self.session)})
            if self.config.session_max_seconds is not None:
                self._tasks.spawn(self._expire(self.config.session_max_seconds))
            async for message in self._ws:
                await self._receive(message)
        except (ConnectionClosed, Dropped):
            pass
        finally:
            self._closing = True
            await self._tasks.cancel()
            self.closed = True
            self.close_code = 1006 if self._aborted else self._ws.close_code

    def abort(self) -> None:
        """Drop the TCP connection without a close frame; the client sees 1006."""
        if not self.closed:
            self._aborted = self.closed = True
            self.close_code = 1006
            self._ws.transport.abort()

    async def send_error(self, code: str, message: str, type_: str) -> None:
        """Send an `error` event (test control); a closed connection is skipped."""
        if not self.closed:
            with contextlib.suppress(ConnectionClosed, Dropped):
                await self.emit(wire.error_event(code, message, type_=type_))

    async def emit(self, event: JsonDict) -> None:
        """Send one server event (adds `event_id`); honours `drop_when` and strict checking."""
        event = {"type": event["type"], "event_id": wire.new_id("event"), **event}
        if self.recorder.should_drop(event["type"]):
            self.abort()
            raise Dropped(event["type"])
        if self.config.strict:
            try:
                validate_server_event(event)
            except ServerEventInvalid as exc:
                self._violation(f"server emitted an invalid event: {exc}")
        self.sent_events.append(event)
        try:
            await self._ws.send(json.dumps(event))
        except ConnectionClosed:
            self.sent_events.remove(event)
            raise

    def item_audio_ms(self, item_id: str) -> float:
        """Audio an item holds in ms: sent so far, committed, or what a truncate left."""
        return self.conversation.audio_ms(item_id)

    async def _refuse_beta(self) -> None:
        self._violation("sent the OpenAI-Beta header; the beta interface is gone")
        message = "The Realtime beta API shape is disabled. Remove the OpenAI-Beta header."
        await self.emit(wire.error_event("beta_api_shape_disabled", message))
        await self._ws.close(4000, "beta_api_shape_disabled")

    async def _expire(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        minutes = f"{seconds / 60:g}"
        await self._ws.close(1001, f"Your session hit the maximum duration of {minutes} minutes.")

    # ---- receiving --------------------------------------------------------------------------

    async def _receive(self, message: str | bytes) -> None:
        event = client_event(message)
        if isinstance(event, tuple):
            await self._reject(*event)
            return
        self.client_events.append(event)
        try:
            validate_client_event(event)
        except ClientEventInvalid as exc:
            if event.get("type") == "conversation.item.truncate":
                self.recorder.truncate_errors += 1
            await self._reject(exc.code, str(exc), event, param=exc.param)
            return
        await self._handlers[event["type"]](event)

    def _violation(self, message: str) -> None:
        self.violations.append(message)
        self.recorder.violation(self._where, message)

    async def _error(
        self, code: str, message: str, event: JsonDict | None = None, param: str | None = None
    ) -> None:
        """An `error` event for a legitimate runtime condition (not a violation)."""
        event_id = event.get("event_id") if event is not None else None
        await self.emit(
            wire.error_event(
                code,
                message,
                param=param,
                client_event_id=event_id if isinstance(event_id, str) else None,
            )
        )

    async def _reject(
        self, code: str, message: str, event: JsonDict | None = None, param: str | None = None
    ) -> None:
        """An `error` event for something a correct client never sends (a violation)."""
        self._violation(message)
        await self._error(code, message, event, param)

    # ---- session ----------------------------------------------------------------------------

    async def _on_session_update(self, event: JsonDict) -> None:
        update: JsonDict = event["session"]
        problem = wire.session_update_problem(
            self.session, update, audio_produced=self._audio_produced
        )
        if problem is not None:
            code, message, param = problem
            await self._reject(code, message, event, param)
            return
        self.session = wire.merge_session(
            self.session, update, silence_ms=self.config.silence_duration_ms
        )
        self._input.configure(self._format("input"), self._vad_settings())
        await self.emit({"type": "session.updated", "session": copy.deepcopy(self.session)})

    def _format(self, direction: str) -> str:
        return format_type(self.session["audio"][direction].get("format"))

    def _turn_option(self, name: str) -> bool:
        """`create_response` / `interrupt_response` of the session's turn detection (default on)."""
        detection = self.session["audio"]["input"].get("turn_detection")
        return isinstance(detection, dict) and bool(detection.get(name, True))

    def _vad_settings(self) -> VadSettings | None:
        return vad_settings(
            self.session["audio"]["input"].get("turn_detection"),
            centre_dbfs=self.config.vad_threshold_dbfs,
            start_ms=self.config.vad_start_ms,
            silence_duration_ms=self.config.silence_duration_ms,
        )

    # ---- input audio ------------------------------------------------------------------------

    async def _on_append(self, event: JsonDict) -> None:
        try:
            data = base64.b64decode(event["audio"], validate=True)
        except binascii.Error:
            message = "input_audio_buffer.append: audio is not valid base64."
            await self._reject("invalid_value", message, event, "audio")
            return
        for turn in self._input.receive(data):
            if isinstance(turn, TurnStarted):
                await self._speech_started(turn)
            else:
                await self._speech_stopped(turn)

    async def _speech_started(self, turn: TurnStarted) -> None:
        response = self._response
        if response and response.in_conversation and self._turn_option("interrupt_response"):
            # Flag before sending: every later delta of this response counts as late.
            response.interrupt("turn_detected", self.config.late_deltas_after_interrupt)
        await self.emit(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": turn.audio_start_ms,
                "item_id": turn.item_id,
            }
        )

    async def _speech_stopped(self, turn: TurnEnded) -> None:
        await self.emit(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": turn.audio_end_ms,
                "item_id": turn.item_id,
            }
        )
        await self._commit(turn, create_response=self._turn_option("create_response"))

    async def _on_commit(self, event: JsonDict) -> None:
        buffered = self._input.buffered_ms
        if buffered < 100:
            message = (
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of"
                f" audio, but buffer only has {buffered:.2f}ms of audio."
            )
            await self._error("input_audio_buffer_commit_empty", message, event)
            return
        await self._commit(self._input.commit(), create_response=False)

    async def _on_clear(self, event: JsonDict) -> None:
        self._input.clear()
        await self.emit({"type": "input_audio_buffer.cleared"})

    async def _on_output_clear(self, event: JsonDict) -> None:
        message = "output_audio_buffer.clear is only supported for WebRTC and SIP connections."
        await self._reject("invalid_value", message, event)

    async def _commit(self, turn: TurnEnded, *, create_response: bool) -> None:
        previous = self.conversation.last_id()
        await self.emit(
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous,
                "item_id": turn.item_id,
            }
        )
        item = wire.user_audio_item(turn.item_id)
        self.conversation.append(item, audio_ms=len(turn.audio) / 8)
        self._last_user_audio = turn.audio
        for event_type in ("conversation.item.added", "conversation.item.done"):
            await self.emit(
                {"type": event_type, "previous_item_id": previous, "item": wire.public_item(item)}
            )
        seconds = len(turn.audio) / 8000
        self._last_user_transcript = self._next_transcript(seconds)
        if self.session["audio"]["input"].get("transcription"):
            self._tasks.spawn(self._transcribe(item, self._last_user_transcript, seconds))
        if create_response:
            if self._response is None:
                self._start_response({})
            else:
                self._auto_response_pending = True

    def _next_transcript(self, seconds: float) -> str:
        scripted = self.config.user_transcripts
        index, self._transcript_index = self._transcript_index, self._transcript_index + 1
        if scripted is not None and index < len(scripted):
            return scripted[index]
        return f"(caller spoke {seconds:.1f} s)"

    async def _transcribe(self, item: JsonDict, transcript: str, seconds: float) -> None:
        await asyncio.sleep(_TRANSCRIPTION_DELAY_S)
        item["content"][0]["transcript"] = transcript
        await self.emit(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item["id"],
                "content_index": 0,
                "transcript": transcript,
                "usage": {"type": "duration", "seconds": round(seconds, 3)},
            }
        )

    # ---- conversation -----------------------------------------------------------------------

    async def _on_item_create(self, event: JsonDict) -> None:
        item: JsonDict = copy.deepcopy(event["item"])
        try:
            previous = self.conversation.insert(
                item, event.get("previous_item_id"), self._client_audio_ms(item)
            )
        except ItemRefused as exc:
            await self._reject(exc.code, str(exc), event, exc.param)
            return
        for event_type in ("conversation.item.added", "conversation.item.done"):
            await self.emit(
                {"type": event_type, "previous_item_id": previous, "item": wire.public_item(item)}
            )

    def _client_audio_ms(self, item: JsonDict) -> float:
        total = 0.0
        for part in item.get("content", []):
            if part.get("type") == "input_audio" and part.get("audio"):
                nbytes = len(part["audio"]) * 3 // 4
                total += bytes_to_ms(nbytes, self._format("input"))
        return total

    async def _on_item_delete(self, event: JsonDict) -> None:
        try:
            self.conversation.delete(event["item_id"])
        except ItemRefused as exc:
            await self._reject(exc.code, str(exc), event, exc.param)
            return
        await self.emit({"type": "conversation.item.deleted", "item_id": event["item_id"]})

    async def _on_item_retrieve(self, event: JsonDict) -> None:
        item = self.conversation.find(event["item_id"])
        if item is None:
            message = f"Item with id '{event['item_id']}' not found."
            await self._reject("invalid_value", message, event, "item_id")
            return
        await self.emit({"type": "conversation.item.retrieved", "item": wire.public_item(item)})

    async def _on_truncate(self, event: JsonDict) -> None:
        item_id, content_index = event["item_id"], event["content_index"]
        end_ms = event["audio_end_ms"]
        try:
            self.conversation.truncate(item_id, content_index, end_ms)
        except ItemRefused as exc:
            self.recorder.truncate_errors += 1
            await self._error(exc.code, str(exc), event, exc.param)
            return
        await self.emit(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": content_index,
                "audio_end_ms": end_ms,
            }
        )

    # ---- responses --------------------------------------------------------------------------

    async def _on_response_create(self, event: JsonDict) -> None:
        if self._response is not None:
            self.recorder.active_response_conflicts += 1
            message = (
                f"Conversation already has an active response in progress: {self._response.id}."
                " Wait until the response is finished before creating a new one."
            )
            await self._error("conversation_already_has_active_response", message, event)
            return
        params: JsonDict = event.get("response") or {}
        fmt = (params.get("audio") or {}).get("output", {}).get("format")
        if fmt is not None and format_type(fmt) not in SUPPORTED_FORMATS:
            message = f"The fake supports audio/pcmu and audio/pcm, not {fmt}."
            await self._reject("invalid_value", message, event, "response.audio.output.format")
            return
        self._start_response(params)

    async def _on_response_cancel(self, event: JsonDict) -> None:
        response, wanted = self._response, event.get("response_id")
        active = response is not None and wanted in (None, response.id)
        if response is None or not active or not response.interrupt("client_cancelled"):
            message = "Cancellation failed: no active response found"
            await self._error("response_cancel_not_active", message, event)

    def _start_response(self, params: JsonDict) -> None:
        output = self.session["audio"]["output"]
        audio_output = {"format": output["format"], "voice": output["voice"]}
        audio_output.update((params.get("audio") or {}).get("output") or {})
        modalities = list(params.get("output_modalities") or self.session["output_modalities"])
        in_conversation = params.get("conversation", "auto") != "none"
        reply = self._choose_reply(params.get("instructions"))
        plan = ResponsePlan(
            reply=reply,
            modalities=modalities,
            output_format=format_type(audio_output["format"]),
            audio_output=audio_output,
            in_conversation=in_conversation,
            conversation_id=self.conversation_id if in_conversation else None,
            max_output_tokens=params.get("max_output_tokens", self.session["max_output_tokens"]),
            metadata=params.get("metadata"),
        )
        if "audio" in modalities and reply.tool_call is None:
            self._audio_produced = True
        self._response = ResponseStream(self, plan)
        self._tasks.spawn(self._response.run())

    def _choose_reply(self, instructions: object) -> Reply:
        reply = self._scripted_reply(instructions)
        if self.config.latency_ms:
            reply = replace(reply, delay_ms=reply.delay_ms + self.config.latency_ms)
        return reply

    def _scripted_reply(self, instructions: object) -> Reply:
        said = wire.say_exactly(instructions)
        if said is not None:
            return Reply(text=said)
        if self.config.echo and self._last_user_audio is not None:
            return Reply(text=self._last_user_transcript, audio=self._last_user_audio)
        replies = self.config.replies or (Reply(),)
        reply = replies[min(self._reply_index, len(replies) - 1)]
        self._reply_index += 1
        return reply

    # ---- ResponseHost -----------------------------------------------------------------------

    def add_output_item(self, item: JsonDict) -> str | None:
        return self.conversation.append(item)

    def set_item_audio_ms(self, item_id: str, ms: float) -> None:
        self.conversation.set_audio_ms(item_id, ms)

    def finish_item(self, item: JsonDict) -> JsonDict:
        self.conversation.cut_transcript(item)
        return wire.public_item(item)

    def input_usage(self) -> tuple[int, int, int, int]:
        text, audio = self.conversation.input_tokens(str(self.session.get("instructions") or ""))
        cached_text = min(text, self._previous_input[0])
        cached_audio = min(audio, self._previous_input[1])
        self._previous_input = (text, audio)
        return text, audio, cached_text, cached_audio

    def response_finished(self, stream: ResponseStream) -> None:
        if self._response is stream:
            self._response = None
        if self._auto_response_pending and not self._closing:
            self._auto_response_pending = False
            self._start_response({})
