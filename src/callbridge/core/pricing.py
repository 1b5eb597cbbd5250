"""What a Realtime response costs, from its `usage` object and the model's published prices.

Prices are USD per million tokens (OpenAI's model pages, 2026). Cached input is a subset of
input and is billed at the cached rate. Unknown models are priced as gpt-realtime-2.1, the most
expensive, so an estimate is never optimistic. No I/O. No clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Prices:
    text_in: float
    text_cached: float
    text_out: float
    audio_in: float
    audio_cached: float
    audio_out: float


_FULL = Prices(4.00, 0.40, 24.00, 32.00, 0.40, 64.00)
_MINI = Prices(0.60, 0.06, 2.40, 10.00, 0.30, 20.00)
PRICES: dict[str, Prices] = {
    "gpt-realtime-2": _FULL,
    "gpt-realtime-2.1": _FULL,
    "gpt-realtime-1.5": Prices(4.00, 0.40, 16.00, 32.00, 0.40, 64.00),
    "gpt-realtime": Prices(4.00, 0.40, 16.00, 32.00, 0.40, 64.00),
    "gpt-realtime-2.1-mini": _MINI,
    "gpt-realtime-mini": _MINI,
}


def prices_for(model: str) -> Prices:
    return PRICES.get(model, _FULL)


def response_cost(model: str, usage: Mapping[str, Any]) -> float:
    """USD for one `response.done` usage object (image tokens are not priced: phones send none)."""
    p = prices_for(model)
    inputs = _mapping(usage.get("input_token_details"))
    outputs = _mapping(usage.get("output_token_details"))
    cached = _mapping(inputs.get("cached_tokens_details"))
    text_cached = _n(cached, "text_tokens")
    audio_cached = _n(cached, "audio_tokens")
    usd = (
        (_n(inputs, "text_tokens") - text_cached) * p.text_in + text_cached * p.text_cached
        + (_n(inputs, "audio_tokens") - audio_cached) * p.audio_in + audio_cached * p.audio_cached
        + _n(outputs, "text_tokens") * p.text_out + _n(outputs, "audio_tokens") * p.audio_out
    )
    return usd / 1_000_000


def _mapping(value: object) -> Mapping[str, Any]:
    """A nested usage object, or an empty one when the server sent something else."""
    return value if isinstance(value, Mapping) else {}


def _n(values: Mapping[str, Any], key: str) -> int:
    value = values.get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
