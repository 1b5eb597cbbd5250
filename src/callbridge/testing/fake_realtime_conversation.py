"""The conversation of one fake Realtime session: items in order, their audio, truncation.

Owns the rules the real API applies to conversation items: where `previous_item_id` inserts an
item, which `function_call_output` is acceptable, and `conversation.item.truncate` (only assistant
audio that was actually sent, never beyond its duration). Each refusal raises `ItemRefused` with
the API's error code; the caller turns it into an `error` event. Also estimates input tokens for
`usage` (user audio 10 tokens/s, assistant audio 20 tokens/s, text 4 characters/token).
No I/O. No clock.
"""

from __future__ import annotations

from typing import Any

from callbridge.testing import fake_realtime_wire as wire
from callbridge.testing.fake_realtime_wire import JsonDict

_CREATABLE = frozenset({"message", "function_call", "function_call_output"})


class ItemRefused(ValueError):
    """The server refuses an item operation; `code`/`param` go into the `error` event."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.param = code, param


class Conversation:
    """Items in conversation order (`items` is the live list) and the audio each one holds."""

    def __init__(self) -> None:
        self.items: list[JsonDict] = []
        self._audio_ms: dict[str, float] = {}

    def find(self, item_id: str) -> JsonDict | None:
        return next((item for item in self.items if item.get("id") == item_id), None)

    def last_id(self) -> str | None:
        return str(self.items[-1]["id"]) if self.items else None

    def append(self, item: JsonDict, audio_ms: float = 0.0) -> str | None:
        """Append an item made by the server; return the previous item's id."""
        previous = self.last_id()
        self.items.append(item)
        self._audio_ms[item["id"]] = audio_ms
        return previous

    def insert(self, item: JsonDict, previous_item_id: str | None, audio_ms: float) -> str | None:
        """Add a client item (`conversation.item.create`); return the id it follows, if any.

        `previous_item_id`: None appends, "root" prepends, an existing id inserts after it.
        """
        self._check_creatable(item)
        item.setdefault("id", wire.new_id("item"))
        item.setdefault("object", "realtime.item")
        item.setdefault("status", "completed")
        if self.find(item["id"]) is not None:
            raise ItemRefused(
                "invalid_value", f"Item with id '{item['id']}' already exists.", "item.id"
            )
        if previous_item_id is None:
            return self.append(item, audio_ms)
        if previous_item_id == "root":
            index, previous = 0, None
        else:
            found = self.find(previous_item_id)
            if found is None:
                message = f"Previous item with id '{previous_item_id}' not found."
                raise ItemRefused("invalid_value", message, "previous_item_id")
            index, previous = self.items.index(found) + 1, previous_item_id
        self.items.insert(index, item)
        self._audio_ms[item["id"]] = audio_ms
        return previous

    def delete(self, item_id: str) -> None:
        item = self.find(item_id)
        if item is None:
            raise ItemRefused("invalid_value", f"Item with id '{item_id}' not found.", "item_id")
        self.items.remove(item)

    def set_audio_ms(self, item_id: str, ms: float) -> None:
        self._audio_ms[item_id] = ms

    def audio_ms(self, item_id: str) -> float:
        """Audio the item holds in ms: sent or committed, or what is left after a truncate."""
        ms = self._audio_ms.get(item_id, 0.0)
        item = self.find(item_id)
        if item is not None and "truncated_at_ms" in item:
            return min(ms, float(item["truncated_at_ms"]))
        return ms

    def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> None:
        """Apply `conversation.item.truncate` like the real API, or raise `ItemRefused`."""
        item = self.find(item_id)
        if item is None:
            raise ItemRefused("invalid_value", f"Item with id '{item_id}' not found.", "item_id")
        if content_index != 0:
            raise ItemRefused("invalid_value", "content_index must be 0.", "content_index")
        duration = self.audio_ms(item_id)
        assistant = item.get("type") == "message" and item.get("role") == "assistant"
        if not assistant or duration <= 0:
            message = "Only model output audio messages can be truncated"
            raise ItemRefused("unsupported_content_type", message, "item_id")
        if audio_end_ms < 0 or audio_end_ms > duration:
            message = f"Audio content of {int(duration)}ms is already shorter than {audio_end_ms}ms"
            raise ItemRefused("invalid_value", message, "audio_end_ms")
        item["truncated_at_ms"] = audio_end_ms
        self.cut_transcript(item)

    def cut_transcript(self, item: JsonDict) -> None:
        """Keep the share of a truncated item's transcript that matches the audio kept."""
        kept_ms = item.get("truncated_at_ms")
        sent_ms = self._audio_ms.get(item["id"], 0.0)
        if kept_ms is None or sent_ms <= 0:
            return
        for part in item.get("content", []):
            if isinstance(part.get("transcript"), str):
                words = part["transcript"].split()
                part["transcript"] = " ".join(words[: round(len(words) * kept_ms / sent_ms)])

    def has_call(self, call_id: str) -> bool:
        return any(
            item.get("type") == "function_call" and item.get("call_id") == call_id
            for item in self.items
        )

    def input_tokens(self, instructions: str) -> tuple[int, int]:
        """(text, audio) tokens a response would read: instructions plus every item."""
        text = wire.text_tokens(instructions)
        audio = 0.0
        for item in self.items:
            text += sum(wire.text_tokens(_item_text(part)) for part in item.get("content", []))
            text += wire.text_tokens(str(item.get("arguments", "") or item.get("output", "")))
            per_second = 20 if item.get("role") == "assistant" else 10
            audio += self.audio_ms(item["id"]) / 1000 * per_second
        return text, round(audio)

    def _check_creatable(self, item: JsonDict) -> None:
        kind = item.get("type")
        if kind not in _CREATABLE:
            raise ItemRefused(
                "invalid_value", f"The fake does not support {kind} items.", "item.type"
            )
        contents = item.get("content", [])
        if item.get("role") == "assistant" and any(
            p.get("type") == "output_audio" for p in contents
        ):
            message = "Clients cannot populate assistant audio messages."
            raise ItemRefused("invalid_value", message, "item.content")
        if kind == "function_call_output" and not self.has_call(str(item.get("call_id"))):
            message = f"No function call with call_id '{item.get('call_id')}' in the conversation."
            raise ItemRefused("invalid_value", message, "item.call_id")


def _item_text(part: Any) -> str:
    if not isinstance(part, dict):
        return ""
    return str(part.get("text") or part.get("transcript") or "")
