"""One response of the fake Realtime server, streamed in the GA event order.

Owns the life of a response from `response.created` to `response.done`: the assistant audio
message (transcript and audio deltas interleaved, paced at `speed`× real time), a text message,
or a function call, and how it ends when interrupted. A barge-in keeps streaming
`late_deltas_after_interrupt` more deltas (the real race) before ending with status `cancelled`.
It talks to its connection only through `ResponseHost`; it does not touch the socket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from callbridge.testing import fake_realtime_wire as wire
from callbridge.testing.fake_realtime_audio import bytes_to_ms, encode_output
from callbridge.testing.fake_realtime_config import FakeConfig, Recorder, Reply, ToolCall
from callbridge.testing.fake_realtime_wire import JsonDict
from callbridge.testing.speech import speak

_SPEAK_LOCK = threading.Lock()


def _speak_once(text: str) -> bytes:
    """`speak()` with its cache filled once per text, even when many calls want it at once."""
    with _SPEAK_LOCK:
        return speak(text)


# A message's content part by kind: its item content type and the key holding its text.
_PARTS = {"audio": ("output_audio", "transcript"), "text": ("output_text", "text")}


class ResponseHost(Protocol):
    """What a response needs from its connection."""

    config: FakeConfig
    recorder: Recorder

    async def emit(self, event: JsonDict) -> None: ...

    def add_output_item(self, item: JsonDict) -> str | None:
        """Append an output item to the conversation; return the previous item's id."""

    def set_item_audio_ms(self, item_id: str, ms: float) -> None: ...

    def finish_item(self, item: JsonDict) -> JsonDict:
        """Record the item's final state; return it as it goes on the wire."""

    def input_usage(self) -> tuple[int, int, int, int]:
        """(text, audio, cached text, cached audio) input tokens for a new response."""

    def response_finished(self, stream: ResponseStream) -> None: ...


@dataclass(frozen=True)
class ResponsePlan:
    """Everything decided when `response.create` (or VAD) starts a response."""

    reply: Reply
    modalities: list[str]
    output_format: str
    audio_output: Mapping[str, Any]
    in_conversation: bool
    conversation_id: str | None
    max_output_tokens: object = "inf"
    metadata: Mapping[str, str] | None = None
    response_id: str = field(default_factory=lambda: wire.new_id("resp"))


class ResponseStream:
    """Streams one response; `interrupt()` ends it early. Run it with `await stream.run()`."""

    def __init__(self, host: ResponseHost, plan: ResponsePlan) -> None:
        self.id = plan.response_id
        self.in_conversation = plan.in_conversation
        self.cancel_reason: str | None = None
        self.generating = True  # False once output is complete: too late to cancel
        self._host, self._plan = host, plan
        self._late_budget = 0
        self._wake = asyncio.Event()
        self._output_text = 0
        self._output_audio_ms = 0.0

    def interrupt(self, reason: str, late_deltas: int = 0) -> bool:
        """Cancel while generating, after `late_deltas` more audio deltas; False if too late."""
        if not self.generating or self.cancel_reason is not None:
            return False
        self.cancel_reason, self._late_budget = reason, late_deltas
        self._wake.set()
        return True

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            self.generating = False
            self._host.response_finished(self)

    async def _run(self) -> None:
        plan, host = self._plan, self._host
        text_in, audio_in, cached_text, cached_audio = host.input_usage()
        response = wire.response_object(
            self.id,
            status="in_progress",
            conversation_id=plan.conversation_id,
            modalities=plan.modalities,
            audio_output=plan.audio_output,
            max_output_tokens=plan.max_output_tokens,
            metadata=plan.metadata,
        )
        await host.emit({"type": "response.created", "response": response})
        await host.emit(wire.rate_limits(text_in + audio_in))
        await self._pause(plan.reply.delay_ms / 1000)
        output: list[JsonDict] = []
        if self.cancel_reason is None:
            if plan.reply.tool_call is not None:
                output.append(await self._function_call(plan.reply.tool_call))
            elif "audio" in plan.modalities:
                output.append(await self._audio_message())
            else:
                output.append(await self._text_message())
        self.generating = False
        status = "completed" if self.cancel_reason is None else "cancelled"
        usage = wire.usage(
            input_text=text_in,
            input_audio=audio_in,
            cached_text=cached_text,
            cached_audio=cached_audio,
            output_text=self._output_text,
            output_audio=round(self._output_audio_ms / 50),  # assistant audio: 20 tokens/s
        )
        response.update(
            status=status,
            status_details=wire.status_details(status, self.cancel_reason),
            output=output,
            usage=usage,
        )
        await host.emit({"type": "response.done", "response": response})

    async def _open_item(self, item: JsonDict) -> str | None:
        await self._host.emit(
            {
                "type": "response.output_item.added",
                "response_id": self.id,
                "output_index": 0,
                "item": wire.public_item(item),
            }
        )
        if not self.in_conversation:
            return None
        previous = self._host.add_output_item(item)
        await self._host.emit(
            {
                "type": "conversation.item.added",
                "previous_item_id": previous,
                "item": wire.public_item(item),
            }
        )
        return previous

    async def _close_item(self, item: JsonDict, previous: str | None) -> JsonDict:
        item["status"] = "completed" if self.cancel_reason is None else "incomplete"
        final = self._host.finish_item(item) if self.in_conversation else wire.public_item(item)
        await self._host.emit(
            {
                "type": "response.output_item.done",
                "response_id": self.id,
                "output_index": 0,
                "item": final,
            }
        )
        if self.in_conversation:
            await self._host.emit(
                {"type": "conversation.item.done", "previous_item_id": previous, "item": final}
            )
        return final

    def _part_event(self, event_type: str, item_id: str, **fields: object) -> JsonDict:
        return {
            "type": event_type,
            "response_id": self.id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            **fields,
        }

    async def _open_message(self, kind: str) -> tuple[JsonDict, str | None]:
        """A new assistant message with one empty content part of `kind` ("audio" or "text");
        returns the item and the item before it."""
        item = wire.assistant_item(wire.new_id("item"))
        previous = await self._open_item(item)
        await self._set_part(item, kind, "", "response.content_part.added")
        return item, previous

    async def _set_part(self, item: JsonDict, kind: str, value: str, event_type: str) -> None:
        """The message's one content part now holds `value`; say so with `event_type`."""
        content_type, key = _PARTS[kind]
        item["content"] = [{"type": content_type, key: value}]
        part = {"type": kind, key: value}
        await self._host.emit(self._part_event(event_type, item["id"], part=part))

    async def _audio_message(self) -> JsonDict:
        host, plan = self._host, self._plan
        item, previous = await self._open_message("audio")
        item_id = item["id"]
        audio = plan.reply.audio
        if audio is None:
            audio = await asyncio.to_thread(_speak_once, plan.reply.text)
        transcript = await self._stream_audio(item_id, audio)
        self.generating = False
        self._output_text = wire.text_tokens(transcript)
        await host.emit(self._part_event("response.output_audio.done", item_id))
        done = self._part_event(
            "response.output_audio_transcript.done", item_id, transcript=transcript
        )
        await host.emit(done)
        await self._set_part(item, "audio", transcript, "response.content_part.done")
        return await self._close_item(item, previous)

    async def _stream_audio(self, item_id: str, audio: bytes) -> str:
        """Send `audio` as paced deltas with the transcript spread over them; return the
        transcript actually sent. Stops early (after the late deltas) when interrupted."""
        host, fmt = self._host, self._plan.output_format
        step = max(1, round(host.config.delta_ms * 8))
        chunks = [audio[start : start + step] for start in range(0, len(audio), step)]
        words = wire.split_words(self._plan.reply.text, len(chunks))
        transcript, sent_bytes = "", 0
        loop = asyncio.get_running_loop()
        started, played_ms = loop.time(), 0.0
        for chunk, text in zip(chunks, words, strict=True):
            late = self.cancel_reason is not None
            if late and self._late_budget <= 0:
                break
            self._late_budget -= late
            if text:
                transcript += text
                event = "response.output_audio_transcript.delta"
                await host.emit(self._part_event(event, item_id, delta=text))
            data = encode_output(chunk, fmt)
            encoded = base64.b64encode(data).decode("ascii")
            await host.emit(self._part_event("response.output_audio.delta", item_id, delta=encoded))
            sent_bytes += len(data)
            self._output_audio_ms = bytes_to_ms(sent_bytes, fmt)
            host.set_item_audio_ms(item_id, self._output_audio_ms)
            if late:
                host.recorder.interrupted_audio.append(data)
            played_ms += len(chunk) / 8
            await _sleep_until(loop, started + played_ms / 1000 / host.config.speed)
        return transcript

    async def _text_message(self) -> JsonDict:
        host, words = self._host, self._plan.reply.text.split()
        item, previous = await self._open_message("text")
        item_id = item["id"]
        text = ""
        for delta in wire.split_words(" ".join(words), (len(words) + 3) // 4):
            if self.cancel_reason is not None:
                break
            text += delta
            await host.emit(self._part_event("response.output_text.delta", item_id, delta=delta))
            await asyncio.sleep(host.config.delta_ms / 1000 / host.config.speed)
        self.generating = False
        self._output_text = wire.text_tokens(text)
        await host.emit(self._part_event("response.output_text.done", item_id, text=text))
        await self._set_part(item, "text", text, "response.content_part.done")
        return await self._close_item(item, previous)

    async def _function_call(self, call: ToolCall) -> JsonDict:
        host, call_id = self._host, call.call_id or wire.new_id("call")
        item = wire.function_call_item(wire.new_id("item"), call_id, call.name)
        previous = await self._open_item(item)
        if self.cancel_reason is None:
            arguments = json.dumps(call.arguments)
            ids = {
                "response_id": self.id,
                "item_id": item["id"],
                "output_index": 0,
                "call_id": call_id,
            }
            await host.emit(
                {"type": "response.function_call_arguments.delta", **ids, "delta": arguments}
            )
            await host.emit(
                {
                    "type": "response.function_call_arguments.done",
                    **ids,
                    "name": call.name,
                    "arguments": arguments,
                }
            )
            item["arguments"] = arguments
            self._output_text = wire.text_tokens(arguments)
        self.generating = False
        return await self._close_item(item, previous)

    async def _pause(self, seconds: float) -> None:
        """Model latency: wait `seconds`, or less if the response is interrupted meanwhile."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)


async def _sleep_until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    # Always yield, so the connection's receive loop runs between deltas even at high speed.
    await asyncio.sleep(max(0.0, deadline - loop.time()))
