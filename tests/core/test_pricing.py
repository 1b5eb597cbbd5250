"""Cost estimates from Realtime usage objects."""

from __future__ import annotations

import pytest

from callbridge.core.pricing import prices_for, response_cost

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
