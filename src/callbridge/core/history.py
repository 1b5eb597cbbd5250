"""The conversation so far, as Realtime conversation items, for seeding a new upstream session.

The caller's turns are their transcripts, the agent's turns what the caller actually heard, plus
tool calls and their results, and the notes the model was given mid-call (an API `context`, the
wrap-up warning) as system messages, so a replacing session knows them too. A caller turn
takes its place when the caller stops speaking, even though its transcript arrives later, so
the order is the order things were said.
No I/O. No clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class _Entry:
    key: str
    item: dict[str, Any] | None  # None: a caller turn whose transcript has not arrived


class ConversationHistory:
    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self._index: dict[str, _Entry] = {}

    def reserve_caller_turn(self, item_id: str) -> None:
        """The caller finished speaking; their transcript will fill this place."""
        if item_id not in self._index:
            self._append(_Entry(item_id, None))

    def caller_said(self, item_id: str, text: str) -> None:
        item = _message("user", "input_text", text)
        entry = self._index.get(item_id)
        if entry is None:
            self._append(_Entry(item_id, item))
        else:
            entry.item = item

    def agent_said(self, item_id: str, heard: str) -> None:
        if item_id in self._index or not heard:
            return
        self._append(_Entry(item_id, _message("assistant", "output_text", heard)))

    def has_agent_turn(self, item_id: str) -> bool:
        return item_id in self._index

    def tool_called(self, call_id: str, name: str, arguments: str) -> None:
        item = {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}
        self._append(_Entry("call:" + call_id, item))

    def tool_returned(self, call_id: str, output: str) -> None:
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        self._append(_Entry("output:" + call_id, item))

    def noted(self, text: str) -> None:
        """A note the model was given: it sees it, nobody said it."""
        self._append(_Entry(f"note:{len(self._entries)}", _message("system", "input_text", text)))

    def last_is_caller(self) -> bool:
        """True when the caller spoke last (so the agent owes a reply); notes do not count."""
        for entry in reversed(self._entries):
            if entry.item is not None and entry.item.get("role") != "system":
                return entry.item.get("role") == "user"
        return False

    def items(self, max_items: int = 60, max_chars: int = 24_000) -> list[dict[str, Any]]:
        """The most recent items that fit both budgets, oldest first, tool pairs kept whole."""
        chosen: list[dict[str, Any]] = []
        budget = max_chars
        for entry in reversed(self._entries):
            if entry.item is None:
                continue
            size = _size(entry.item)
            if len(chosen) >= max_items or size > budget:
                break
            chosen.append(entry.item)
            budget -= size
        chosen.reverse()
        called = {i["call_id"] for i in chosen if i.get("type") == "function_call"}
        return [
            i for i in chosen
            if i.get("type") != "function_call_output" or i["call_id"] in called
        ]

    def __len__(self) -> int:
        return len(self._entries)

    def _append(self, entry: _Entry) -> None:
        self._entries.append(entry)
        self._index[entry.key] = entry


def _message(role: str, content_type: str, text: str) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": [{"type": content_type, "text": text}]}


def _size(item: dict[str, Any]) -> int:
    if item.get("type") == "message":
        return sum(len(part.get("text", "")) for part in item["content"])
    return len(item.get("arguments", "")) + len(item.get("output", ""))


def heard_text(text: str, fraction: float) -> str:
    """The leading words of `text` the caller heard, given the fraction of the audio played.

    Text is cut at a word boundary, keeping only words that were fully spoken.
    """
    if fraction >= 1.0:
        return text
    if fraction <= 0.0:
        return ""
    limit = len(text) * fraction
    kept: list[str] = []
    position = 0
    for word in text.split():
        position = text.index(word, position) + len(word)
        if position > limit:
            break
        kept.append(word)
    return " ".join(kept)
