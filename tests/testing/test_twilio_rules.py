"""Twilio's rules for messages a bridge sends on a bidirectional Media Stream."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from callbridge.testing.speech import tone
from callbridge.testing.twilio_rules import check_outbound, inspect_outbound

SID = "MZ" + "a" * 32
AUDIO = tone(0.04)  # 320 bytes: two 20 ms frames
PAYLOAD = base64.b64encode(AUDIO).decode()


def frame(message: dict[str, Any]) -> str:
    """A message as the JSON text a bridge would send."""
    return json.dumps(message)


def codes(problems: list[str]) -> list[str]:
    """The Twilio error code each problem starts with."""
    return [problem.split()[0] for problem in problems]


@pytest.mark.parametrize(
    "message",
    [
        {"event": "media", "streamSid": SID, "media": {"payload": PAYLOAD}},
        {"event": "mark", "streamSid": SID, "mark": {"name": "turn-1:3200"}},
        {"event": "clear", "streamSid": SID},
    ],
)
def test_well_formed_messages_pass(message: dict[str, Any]) -> None:
    """media, mark and clear in their exact documented shapes have no problems."""
    assert check_outbound(frame(message), SID) == []


def test_media_check_returns_the_decoded_audio() -> None:
    """inspect_outbound hands back the parsed message and the decoded payload."""
    message = {"event": "media", "streamSid": SID, "media": {"payload": PAYLOAD}}
    check = inspect_outbound(frame(message), SID)
    assert check.ok
    assert check.audio == AUDIO
    assert check.message == message
    assert check.warnings == ()


def test_extra_fields_are_violations_at_every_level() -> None:
    """Fields Twilio does not document, top-level or nested, break the message (31951)."""
    top = {"event": "clear", "streamSid": SID, "sequenceNumber": "3"}
    nested = {"event": "media", "streamSid": SID, "media": {"payload": PAYLOAD, "track": "x"}}
    assert check_outbound(frame(top), SID) == ["31951 clear: extra field 'sequenceNumber'"]
    assert check_outbound(frame(nested), SID) == ["31951 media.media: extra field 'track'"]


def test_a_mark_without_a_mark_object_is_a_violation() -> None:
    """`{"event": "mark", "streamSid": …}` alone is invalid, as is a mark with an empty name."""
    assert check_outbound(frame({"event": "mark", "streamSid": SID}), SID) == [
        "31951 mark: missing field 'mark'"
    ]
    empty = {"event": "mark", "streamSid": SID, "mark": {"name": ""}}
    assert codes(check_outbound(frame(empty), SID)) == ["31951"]
    not_object = {"event": "mark", "streamSid": SID, "mark": "done"}
    assert codes(check_outbound(frame(not_object), SID)) == ["31951"]


def test_snake_case_stream_sid_is_a_violation() -> None:
    """`stream_sid` is an extra field and `streamSid` is then missing."""
    problems = check_outbound(frame({"event": "clear", "stream_sid": SID}), SID)
    assert problems == [
        "31951 clear: missing field 'streamSid'",
        "31951 clear: extra field 'stream_sid'",
    ]


def test_a_foreign_or_premature_stream_sid_is_a_violation() -> None:
    """The streamSid must be this stream's, and nothing may be sent before `start`."""
    message = frame({"event": "clear", "streamSid": "MZ" + "b" * 32})
    assert codes(check_outbound(message, SID)) == ["31951"]
    assert "before 'start'" in check_outbound(frame({"event": "clear", "streamSid": SID}), None)[0]


def test_binary_frames_are_violations() -> None:
    """Any binary frame is malformed (31950), whatever it holds."""
    assert codes(check_outbound(AUDIO, SID)) == ["31950"]
    assert codes(check_outbound(frame({"event": "clear", "streamSid": SID}).encode(), SID)) == [
        "31950"
    ]


def test_a_wav_header_in_the_payload_is_a_violation() -> None:
    """A payload that starts with RIFF is a WAV file, not raw μ-law (31924)."""
    wav = base64.b64encode(b"RIFF\x24\x00\x00\x00WAVEfmt " + AUDIO).decode()
    message = {"event": "media", "streamSid": SID, "media": {"payload": wav}}
    problems = check_outbound(frame(message), SID)
    assert codes(problems) == ["31924"]
    assert "RIFF" in problems[0]


@pytest.mark.parametrize(
    "payload",
    [
        PAYLOAD.rstrip("="),  # padding dropped
        base64.urlsafe_b64encode(b"\xfb\xff" * 160).decode(),  # url-safe alphabet
        "",
        12,
    ],
)
def test_payloads_must_be_non_empty_standard_base64(payload: object) -> None:
    """Unpadded, url-safe, empty or non-string payloads are rejected."""
    message = frame({"event": "media", "streamSid": SID, "media": {"payload": payload}})
    assert len(check_outbound(message, SID)) == 1


def test_a_payload_of_odd_length_is_only_a_warning() -> None:
    """Audio that is not a multiple of 160 bytes is legal, so it is a warning, not a problem."""
    odd = base64.b64encode(AUDIO[:100]).decode()
    message = {"event": "media", "streamSid": SID, "media": {"payload": odd}}
    check = inspect_outbound(frame(message), SID)
    assert check.problems == ()
    assert check.warnings == ("media.payload is 100 bytes, not a multiple of 160",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "31951 invalid JSON"),
        ("[1, 2]", "31951 message is a JSON list"),
        ('{"streamSid": "x"}', "31951 missing field 'event'"),
        ('{"event": "start", "streamSid": "x"}', "31951 event 'start' is not one of"),
        ('{"event": ["media"]}', "31951 event ['media'] is not one of"),
    ],
)
def test_unparseable_or_unknown_messages_are_violations(text: str, expected: str) -> None:
    """Invalid JSON, non-objects, a missing or unknown event each give one 31951 problem."""
    problems = check_outbound(text, SID)
    assert len(problems) == 1
    assert problems[0].startswith(expected)
