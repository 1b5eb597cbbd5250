"""The turns so far of a call carried elsewhere come in pages that each fit one cluster message
(PostgreSQL's NOTIFY limit), in order, none lost, none twice."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from callbridge.core.actions import TurnFinished
from callbridge.server.cluster import MAX_PAYLOAD
from callbridge.server.live_calls import page_of_turns


def _turn(i: int, text: str) -> TurnFinished:
    return TurnFinished("agent" if i % 2 else "caller", text, text, False, f"item_{i}",
                        float(i), float(i))


def _pages(transcript: list[TurnFinished]) -> list[dict[str, Any]]:
    bridge: Any = SimpleNamespace(transcript=transcript)
    pages, after = [], 0
    while True:
        page = page_of_turns(bridge, after)
        envelope = {**page, "op": "reply", "id": "0" * 32, "from": "instance-name-01"}
        assert len(json.dumps(envelope, separators=(",", ":")).encode()) <= MAX_PAYLOAD
        pages.append(page)
        after += len(page["turns"])
        if not page["more"]:
            return pages


def test_a_long_transcript_comes_in_pages_that_each_fit_one_message() -> None:
    transcript = [_turn(i, f"turn {i} " + "words " * 150) for i in range(40)]
    pages = _pages(transcript)
    assert len(pages) > 3
    got = [turn for page in pages for turn in page["turns"]]
    assert [t["item_id"] for t in got] == [f"item_{i}" for i in range(40)]
    assert [t["text"] for t in got] == [t.text for t in transcript]


def test_a_turn_too_large_for_any_message_is_clipped_not_dropped() -> None:
    huge = "é" * 2000  # six bytes each once JSON escapes it
    got = [turn for page in _pages([_turn(0, "hi"), _turn(1, huge), _turn(2, "bye")])
           for turn in page["turns"]]
    assert [t["item_id"] for t in got] == ["item_0", "item_1", "item_2"]
    assert got[1]["text"].startswith("é" * 300)
    assert got[1]["text"].endswith("…")


def test_nothing_after_the_end() -> None:
    bridge: Any = SimpleNamespace(transcript=[_turn(0, "hi")])
    assert page_of_turns(bridge, 1) == {"status": 202, "turns": [], "more": False}
