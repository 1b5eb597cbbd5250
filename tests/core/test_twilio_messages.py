"""Twilio Media Streams frames: every inbound shape parsed, every outbound shape Twilio accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.core import twilio_messages as tw
from callbridge.errors import TwilioProtocolError
from callbridge.testing.twilio_rules import check_outbound

STREAM_SID = "MZ" + "0123456789abcdef" * 2
CALL_SID = "CA" + "fedcba9876543210" * 2
ACCOUNT_SID = "AC" + "00112233445566778899aabbccddeeff"
PAYLOAD = "//////////8="  # 8 bytes of μ-law silence

# The shapes of twilio.md §1.2, with our SIDs.
CONNECTED: dict[str, Any] = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
START: dict[str, Any] = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": ACCOUNT_SID,
        "streamSid": STREAM_SID,
        "callSid": CALL_SID,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"},
    },
    "streamSid": STREAM_SID,
}
MEDIA: dict[str, Any] = {
    "event": "media",
    "sequenceNumber": "4",
    "media": {"track": "inbound", "chunk": "2", "timestamp": "5", "payload": PAYLOAD},
    "streamSid": STREAM_SID,
}
DTMF: dict[str, Any] = {
    "event": "dtmf",
    "streamSid": STREAM_SID,
    "sequenceNumber": "5",
    "dtmf": {"track": "inbound_track", "digit": "1"},
}
MARK: dict[str, Any] = {
    "event": "mark",
    "sequenceNumber": "4",
    "streamSid": STREAM_SID,
    "mark": {"name": "my label"},
}
STOP: dict[str, Any] = {
    "event": "stop",
    "sequenceNumber": "5",
    "stop": {"accountSid": ACCOUNT_SID, "callSid": CALL_SID},
    "streamSid": STREAM_SID,
}


def frame(base: dict[str, Any], **nested: dict[str, Any]) -> str:
    """`base` as JSON text, with the nested objects named in `nested` updated."""
    message = json.loads(json.dumps(base))
    for key, changes in nested.items():
        message[key].update(changes)
    return json.dumps(message)


def without(base: dict[str, Any], key: str, field: str) -> str:
    """`base` as JSON text with `base[key][field]` removed."""
    message = json.loads(json.dumps(base))
    del message[key][field]
    return json.dumps(message)


# ---------------------------------------------------------------- inbound: every shape


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(CONNECTED, tw.Connected(protocol="Call", version="1.0.0"), id="connected"),
        pytest.param(
            START,
            tw.Start(
                stream_sid=STREAM_SID,
                call_sid=CALL_SID,
                account_sid=ACCOUNT_SID,
                tracks=("inbound",),
                encoding="audio/x-mulaw",
                sample_rate=8000,
                channels=1,
                custom_parameters={"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"},
            ),
            id="start",
        ),
        pytest.param(
            MEDIA, tw.Media(track="inbound", chunk=2, timestamp=5, payload=PAYLOAD), id="media"
        ),
        pytest.param(DTMF, tw.Dtmf(digit="1", track="inbound_track"), id="dtmf"),
        pytest.param(MARK, tw.MarkEcho(name="my label"), id="mark"),
        pytest.param(STOP, tw.Stop(call_sid=CALL_SID, account_sid=ACCOUNT_SID), id="stop"),
    ],
)
def test_each_documented_inbound_frame_parses_to_its_dataclass(
    message: dict[str, Any], expected: tw.Inbound
) -> None:
    """Each frame of twilio.md §1.2 becomes the matching dataclass with every field converted."""
    assert tw.parse(json.dumps(message)) == expected


def test_a_frame_given_as_bytes_parses_like_text() -> None:
    """A frame handed over as UTF-8 bytes parses exactly as the same text would."""
    assert tw.parse(json.dumps(MEDIA).encode()) == tw.parse(json.dumps(MEDIA))


def test_media_counters_arrive_as_strings_and_leave_as_ints() -> None:
    """String `chunk` and `timestamp` are converted to int, not kept as text."""
    media = tw.parse(frame(MEDIA, media={"chunk": "1201", "timestamp": "24020"}))
    assert media == tw.Media(track="inbound", chunk=1201, timestamp=24020, payload=PAYLOAD)
    assert isinstance(media, tw.Media)
    assert (type(media.chunk), type(media.timestamp)) == (int, int)


def test_custom_parameter_values_are_kept_as_strings() -> None:
    """`<Parameter>` pairs arrive in customParameters and are handed on unchanged."""
    params = {"token": "tok_1", "from": "+15551234567", "note": 'say "hi" ☎'}
    start = tw.parse(frame(START, start={"customParameters": params}))
    assert isinstance(start, tw.Start)
    assert start.custom_parameters == params


def test_a_start_without_custom_parameters_has_none() -> None:
    """A `start` with no customParameters (no `<Parameter>` in the TwiML) yields an empty dict."""
    start = tw.parse(without(START, "start", "customParameters"))
    assert isinstance(start, tw.Start)
    assert start.custom_parameters == {}


# ---------------------------------------------------------------- inbound: malformed


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("not json", id="prose"),
        pytest.param('{"event": "media"', id="truncated"),
        pytest.param(b"\xff\xfe\x00", id="not-utf8"),
        pytest.param("[]", id="array"),
        pytest.param('"media"', id="string"),
        pytest.param("42", id="number"),
        pytest.param("null", id="null"),
        pytest.param("{}", id="no-event"),
        pytest.param('{"event": null}', id="null-event"),
        pytest.param('{"event": "close"}', id="legacy-close"),
        pytest.param('{"event": "Media"}', id="wrong-case"),
        pytest.param('{"event": ["media"]}', id="event-not-a-string"),
        pytest.param(without(MEDIA, "media", "payload"), id="media-without-payload"),
        pytest.param(frame(MEDIA, media={"payload": 1234}), id="payload-number"),
        pytest.param(frame(MEDIA, media={"payload": None}), id="payload-null"),
        pytest.param(frame(MEDIA, media={"payload": [PAYLOAD]}), id="payload-list"),
        pytest.param(without(MEDIA, "media", "timestamp"), id="media-without-timestamp"),
        pytest.param(frame(MEDIA, media={"timestamp": "five"}), id="timestamp-word"),
        pytest.param(frame(MEDIA, media={"timestamp": ""}), id="timestamp-empty"),
        pytest.param(frame(MEDIA, media={"timestamp": "5.5"}), id="timestamp-decimal-text"),
        pytest.param(frame(MEDIA, media={"timestamp": None}), id="timestamp-null"),
        pytest.param(
            '{"event": "media", "media": {"timestamp": NaN, "payload": "x"}}', id="timestamp-nan"
        ),
        pytest.param(frame(MEDIA, media={"chunk": "two"}), id="chunk-word"),
        pytest.param('{"event": "media", "media": "payload"}', id="media-not-an-object"),
        pytest.param(without(START, "start", "streamSid"), id="start-without-streamSid"),
        pytest.param(without(START, "start", "callSid"), id="start-without-callSid"),
        pytest.param(frame(START, start={"streamSid": 7}), id="streamSid-number"),
        pytest.param('{"event": "start", "start": ["MZ"]}', id="start-not-an-object"),
        pytest.param(frame(START, start={"customParameters": ["token", "t"]}), id="params-list"),
        pytest.param(frame(START, start={"customParameters": "token=t"}), id="params-string"),
        pytest.param(frame(START, start={"customParameters": 5}), id="params-number"),
        pytest.param(without(MARK, "mark", "name"), id="mark-without-name"),
        pytest.param(frame(MARK, mark={"name": 3}), id="mark-name-number"),
        pytest.param('{"event": "mark", "mark": "m1"}', id="mark-not-an-object"),
        pytest.param(without(DTMF, "dtmf", "digit"), id="dtmf-without-digit"),
        pytest.param(frame(DTMF, dtmf={"digit": 1}), id="dtmf-digit-number"),
        pytest.param('{"event": "stop", "stop": ["CA"]}', id="stop-not-an-object"),
    ],
)
def test_a_malformed_frame_raises_only_twilio_protocol_error(text: str | bytes) -> None:
    """Anything unusable is reported as TwilioProtocolError, never as another exception."""
    with pytest.raises(TwilioProtocolError):
        tw.parse(text)


@pytest.mark.parametrize("params", [[], "", 0, False], ids=["list", "string", "zero", "false"])
def test_empty_custom_parameters_that_are_not_an_object_are_refused(params: object) -> None:
    """customParameters must be an object even when it is empty or falsy."""
    with pytest.raises(TwilioProtocolError):
        tw.parse(frame(START, start={"customParameters": params}))


@pytest.mark.parametrize(
    "text",
    [
        '{"event":"media","media":{"timestamp":Infinity,"payload":"x"}}',
        '{"event":"media","media":{"timestamp":1e400,"payload":"x"}}',
        '{"event":"media","media":{"timestamp":"5","chunk":-Infinity,"payload":"x"}}',
        '{"event":"start","start":{"streamSid":"MZ","callSid":"CA",'
        '"mediaFormat":{"sampleRate":1e999}}}',
    ],
    ids=["infinity", "overflowing-literal", "chunk-minus-infinity", "sample-rate"],
)
def test_an_infinite_number_is_a_protocol_error(text: str) -> None:
    """A counter of ±Infinity (or a literal such as 1e400 that overflows) is a protocol error."""
    with pytest.raises(TwilioProtocolError):
        tw.parse(text)


def test_a_deeply_nested_frame_is_a_protocol_error() -> None:
    """A frame nested deeper than the JSON decoder can follow is TwilioProtocolError."""
    with pytest.raises(TwilioProtocolError):
        tw.parse("[" * 100_000)


# Arbitrary text, bytes and JSON against the parser: tests/fuzz/test_twilio_frames.py.


# ---------------------------------------------------------------- outbound


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            tw.SendMedia(STREAM_SID, PAYLOAD),
            {"event": "media", "streamSid": STREAM_SID, "media": {"payload": PAYLOAD}},
            id="media",
        ),
        pytest.param(
            tw.SendMark(STREAM_SID, "m17"),
            {"event": "mark", "streamSid": STREAM_SID, "mark": {"name": "m17"}},
            id="mark",
        ),
        pytest.param(
            tw.SendClear(STREAM_SID), {"event": "clear", "streamSid": STREAM_SID}, id="clear"
        ),
    ],
)
def test_outbound_messages_carry_exactly_the_fields_twilio_accepts(
    message: tw.Outbound, expected: dict[str, Any]
) -> None:
    """media, mark and clear serialize to Twilio's exact shapes and pass its 31951 rules."""
    text = message.serialize()
    assert json.loads(text) == expected
    assert check_outbound(text, STREAM_SID) == []


@pytest.mark.parametrize(
    "name",
    ['say "hi"', "naïve café ☎", "emoji 📞", "back\\slash", "tab\tand\nnewline", "</script>"],
)
def test_a_mark_name_survives_the_round_trip_through_twilio(name: str) -> None:
    """A mark name with quotes or non-ASCII text comes back in Twilio's echo unchanged."""
    sent = json.loads(tw.SendMark(STREAM_SID, name).serialize())
    echo = {"event": "mark", "sequenceNumber": "9", "streamSid": STREAM_SID, "mark": sent["mark"]}
    assert check_outbound(tw.SendMark(STREAM_SID, name).serialize(), STREAM_SID) == []
    assert tw.parse(json.dumps(echo)) == tw.MarkEcho(name)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1))
def test_any_mark_name_is_sent_validly_and_echoed_unchanged(name: str) -> None:
    """For every non-empty name the mark is valid for Twilio and its echo parses to that name."""
    text = tw.SendMark(STREAM_SID, name).serialize()
    assert check_outbound(text, STREAM_SID) == []
    echo = {"event": "mark", "streamSid": STREAM_SID, "mark": json.loads(text)["mark"]}
    assert tw.parse(json.dumps(echo, ensure_ascii=False)) == tw.MarkEcho(name)
