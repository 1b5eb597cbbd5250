"""TwiML answers: <Connect><Stream> with parameters, the apology after it, then <Hangup/>."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from callbridge.core.twiml import DEFAULT_APOLOGY, connect_stream, say_and_hang_up

STREAM_URL = "wss://voice.example.com/media"


def shape(xml: str) -> list[tuple[str, dict[str, str], str | None, list[object]]]:
    """The document as nested (tag, attributes, text, children) tuples, for whole-value compares."""

    def walk(element: ET.Element) -> tuple[str, dict[str, str], str | None, list[object]]:
        return (element.tag, dict(element.attrib), element.text, [walk(e) for e in element])

    return [walk(ET.fromstring(xml))]


def test_connect_stream_is_connect_stream_then_apology_then_hangup() -> None:
    """Response = Connect(Stream url + Parameters in order), Say apology, Hangup last."""
    xml = connect_stream(STREAM_URL, {"token": "tok_1", "from": "+15551230000", "caller": "Ada"})
    assert shape(xml) == [
        ("Response", {}, None, [
            ("Connect", {}, None, [
                ("Stream", {"url": STREAM_URL}, None, [
                    ("Parameter", {"name": "token", "value": "tok_1"}, None, []),
                    ("Parameter", {"name": "from", "value": "+15551230000"}, None, []),
                    ("Parameter", {"name": "caller", "value": "Ada"}, None, []),
                ]),
            ]),
            ("Say", {}, DEFAULT_APOLOGY, []),
            ("Hangup", {}, None, []),
        ]),
    ]


def test_connect_stream_has_no_xml_declaration() -> None:
    """The document starts at <Response>: no 38-character XML declaration."""
    assert connect_stream(STREAM_URL, {"token": "t"}).startswith("<Response>")


def stream_of(xml: str) -> ET.Element:
    stream = ET.fromstring(xml).find("Connect/Stream")
    assert stream is not None
    return stream


def test_parameters_travel_as_parameters_not_as_a_query_string() -> None:
    """The stream URL is exactly the one given, without a query; data goes in <Parameter>s."""
    stream = stream_of(connect_stream(STREAM_URL, {"token": "t"}))
    url = stream.get("url", "")
    assert (url, "?" in url) == (STREAM_URL, False)
    assert [p.attrib for p in stream] == [{"name": "token", "value": "t"}]


def test_a_custom_apology_replaces_the_default() -> None:
    """apology= is what Twilio says if our side closes the stream."""
    [(_, _, _, children)] = shape(connect_stream(STREAM_URL, {}, apology="Sorry, goodbye."))
    assert [(tag, text) for tag, _, text, _ in children] == [
        ("Connect", None),
        ("Say", "Sorry, goodbye."),
        ("Hangup", None),
    ]


def test_status_callback_adds_the_callback_and_post() -> None:
    """status_callback → statusCallback plus statusCallbackMethod POST on <Stream>."""
    xml = connect_stream(STREAM_URL, {}, status_callback="https://voice.example.com/stream-status")
    assert stream_of(xml).attrib == {
        "url": STREAM_URL,
        "statusCallback": "https://voice.example.com/stream-status",
        "statusCallbackMethod": "POST",
    }


def test_parameter_values_with_markup_characters_survive_escaping() -> None:
    """Values with <, &, quotes and non-ASCII text come back unchanged from the parsed XML."""
    value = 'a<b & "c" \'d\' ☎'
    stream = stream_of(connect_stream(STREAM_URL, {"note": value}))
    assert [p.attrib for p in stream] == [{"name": "note", "value": value}]


def test_say_and_hang_up_says_the_text_then_hangs_up() -> None:
    """say_and_hang_up → <Response><Say>text</Say><Hangup/></Response>, no declaration."""
    xml = say_and_hang_up("All lines are busy & we are sorry.")
    assert xml.startswith("<Response>")
    assert shape(xml) == [
        ("Response", {}, None, [
            ("Say", {}, "All lines are busy & we are sorry.", []),
            ("Hangup", {}, None, []),
        ]),
    ]
