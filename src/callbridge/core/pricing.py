"""What a model's work costs: a Realtime response from its `usage`, a GPT-Live session from its
active seconds, and the GPT-Live Responses backend from its token usage.

Prices are USD (OpenAI's model pages, 2026): Realtime and backend models per million tokens,
GPT-Live per active minute, billed per second. Cached input is a subset of input and is billed at
the cached rate. Unknown models are priced as the most expensive of their kind, so an estimate is
never optimistic. No I/O. No clock.
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


# GPT-Live bills active time, silence and backend waits included, per second, not rounded.
LIVE_USD_PER_ACTIVE_MINUTE = 0.05


def live_active_cost(seconds: float) -> float:
    """USD for a GPT-Live session's active seconds (`session.usage.updated`/`session.closed`)."""
    return max(seconds, 0.0) / 60.0 * LIVE_USD_PER_ACTIVE_MINUTE


@dataclass(frozen=True, slots=True)
class TextPrices:
    input: float
    cached: float
    output: float  # reasoning tokens are output tokens


BACKEND_PRICES: dict[str, TextPrices] = {
    "gpt-5.4": TextPrices(2.50, 0.25, 15.00),
    "gpt-5.4-mini": TextPrices(0.75, 0.075, 4.50),
    "gpt-5.4-nano": TextPrices(0.20, 0.02, 1.25),
}
_BACKEND_MAX = BACKEND_PRICES["gpt-5.4"]


def backend_cost(model: str, usage: Mapping[str, Any]) -> float:
    """USD for one Responses `usage` object of the GPT-Live backend (`response.completed`)."""
    p = BACKEND_PRICES.get(model, _BACKEND_MAX)
    cached = min(_n(_mapping(usage.get("input_tokens_details")), "cached_tokens"),
                 _n(usage, "input_tokens"))
    usd = ((_n(usage, "input_tokens") - cached) * p.input + cached * p.cached
           + _n(usage, "output_tokens") * p.output)
    return usd / 1_000_000
