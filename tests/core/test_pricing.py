"""Cost estimates: Realtime usage objects, GPT-Live active seconds and its backend's tokens."""

from __future__ import annotations

import pytest

from callbridge.core.pricing import (
    backend_cost,
    live_active_cost,
    prices_for,
    response_cost,
)

USAGE = {
    "total_tokens": 1321, "input_tokens": 1270, "output_tokens": 51,
    "input_token_details": {"text_tokens": 292, "audio_tokens": 978, "image_tokens": 0,
                            "cached_tokens": 640,
                            "cached_tokens_details": {"text_tokens": 256, "audio_tokens": 384}},
    "output_token_details": {"text_tokens": 20, "audio_tokens": 31},
}


def test_cached_tokens_are_billed_at_the_cached_rate() -> None:
    """The reference's worked usage object, priced for gpt-realtime-2.1."""
    expected = ((292 - 256) * 4.00 + 256 * 0.40 + (978 - 384) * 32.00 + 384 * 0.40
                + 20 * 24.00 + 31 * 64.00) / 1e6
    assert response_cost("gpt-realtime-2.1", USAGE) == pytest.approx(expected)


def test_the_mini_model_is_cheaper_and_unknown_models_are_priced_high() -> None:
    """An unknown model never gets an optimistic estimate."""
    assert response_cost("gpt-realtime-2.1-mini", USAGE) < response_cost("gpt-realtime-2.1",
                                                                          USAGE)
    assert prices_for("some-future-model") == prices_for("gpt-realtime-2.1")


def test_missing_or_odd_fields_count_as_zero() -> None:
    """An empty usage object costs nothing; booleans and strings are ignored."""
    assert response_cost("gpt-realtime-2.1", {}) == 0.0
    odd = {"input_token_details": {"text_tokens": True, "audio_tokens": "12"}}
    assert response_cost("gpt-realtime-2.1", odd) == 0.0


def test_gpt_live_bills_five_cents_per_active_minute_by_the_second() -> None:
    """$0.05 per minute, per second, not rounded up: 90.5 s cost 90.5/60 × $0.05."""
    assert live_active_cost(60.0) == pytest.approx(0.05)
    assert live_active_cost(90.5) == pytest.approx(90.5 / 60 * 0.05)
    assert live_active_cost(0.0) == 0.0
    assert live_active_cost(-3.0) == 0.0  # a nonsense usage value never makes money back


def test_the_backend_bills_its_tokens_with_cached_input_at_the_cached_rate() -> None:
    """A Responses usage object of the default backend: cached input is a subset of input."""
    usage = {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1000},
             "output_tokens": 80, "output_tokens_details": {"reasoning_tokens": 40}}
    expected = (200 * 0.75 + 1000 * 0.075 + 80 * 4.50) / 1e6
    assert backend_cost("gpt-5.4-mini", usage) == pytest.approx(expected)


def test_an_unknown_backend_model_is_priced_as_the_most_expensive_and_junk_counts_zero() -> None:
    """Never optimistic; fields of the wrong type, or more cached than input, count sanely."""
    usage = {"input_tokens": 1000, "output_tokens": 100}
    assert backend_cost("some-future-model", usage) == backend_cost("gpt-5.4", usage)
    assert backend_cost("gpt-5.4", {"input_tokens": "many", "output_tokens": True}) == 0.0
    odd = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 50}}
    assert backend_cost("gpt-5.4", odd) == pytest.approx(10 * 0.25 / 1e6)
