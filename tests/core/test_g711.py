"""G.711 μ-law against the ITU/Sun reference values."""

from __future__ import annotations

import pytest

from callbridge.audio.g711 import FRAME_BYTES, SILENCE_BYTE, pcm16_to_ulaw, ulaw_ms, ulaw_to_pcm16


@pytest.mark.parametrize(
    ("sample", "code"),
    [(0, 0xFF), (32767, 0x80), (-32768, 0x00), (1000, 0xCE), (-1000, 0x4E)],
)
def test_encoding_matches_the_reference_codec(sample: int, code: int) -> None:
    """linear2ulaw of the Sun/ITU reference: 0→0xFF, ±full scale→0x80/0x00, ±1000→0xCE/0x4E."""
    assert pcm16_to_ulaw([sample]) == bytes([code])


@pytest.mark.parametrize(
    ("code", "sample"), [(0x00, -32124), (0x80, 32124), (0xFF, 0), (0x7F, 0), (0xCE, 988)]
)
def test_decoding_matches_the_reference_codec(code: int, sample: int) -> None:
    """ulaw2linear of the reference: 0x00→-32124, 0x80→32124, 0xCE→988, both zero codes → 0."""
    assert ulaw_to_pcm16(bytes([code])).tolist() == [sample]


def test_encoding_the_decoded_value_of_every_code_gives_the_code_back() -> None:
    """encode∘decode is the identity on all 256 codes, except μ-law's negative zero 0x7F → 0xFF."""
    codes = bytes(range(256))
    expected = bytes(0xFF if code == 0x7F else code for code in range(256))
    assert pcm16_to_ulaw(ulaw_to_pcm16(codes)) == expected


def test_out_of_range_samples_are_clipped_not_wrapped() -> None:
    """Values beyond int16 encode like full scale instead of wrapping to the other sign."""
    assert pcm16_to_ulaw([40000, -40000, 32767.4]) == bytes([0x80, 0x00, 0x80])


def test_one_frame_of_silence_is_twenty_milliseconds() -> None:
    """160 bytes of 0xFF decode to 160 zero samples and last 20 ms."""
    frame = bytes([SILENCE_BYTE]) * FRAME_BYTES
    assert (ulaw_to_pcm16(frame).tolist(), ulaw_ms(len(frame))) == ([0] * 160, 20.0)
