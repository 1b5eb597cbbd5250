"""The voice-webhook answer as Twilio reads it: TwiML parsed into what the fake caller acts on.

Owns parsing a webhook response (§2 of the Twilio reference): the `<Response>` verbs in order, the
`<Connect><Stream url>` with its `<Parameter>`s, the verbs Twilio runs once the stream ends, and the
rules a `<Connect><Stream>` must follow (wss only, no query string, inbound track only). Breaking
those is reported in `TwiMLResult.problems`; a body Twilio could not run at all raises
`InvalidTwiML`.

Independent of `callbridge.server` on purpose. Pure: no I/O, no clock.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit

_TWIML_CONTENT_TYPES = frozenset({"text/xml", "application/xml"})
_ENDS_CALL = frozenset({"Hangup", "Reject", "Redirect", "Connect"})


class InvalidTwiML(ValueError):
    """The webhook answer is not TwiML Twilio could run (12100 parse error, 12300 content type)."""


class TwiMLVerb(NamedTuple):
    """One top-level verb: its name and its text, or its attributes when it has no text."""

    verb: str
    content: str | dict[str, str]


@dataclass(frozen=True, slots=True)
class TwiMLResult:
    """A parsed webhook answer.

    `verbs` lists every top-level verb; `after_connect` those after the first `<Connect>`, which
    Twilio runs when the stream ends unless `<Connect action>` names a URL to fetch instead.
    """

    status: int
    xml: str
    verbs: list[TwiMLVerb]
    stream_url: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    after_connect: list[TwiMLVerb] = field(default_factory=list)
    connect_action: str | None = None
    stream_attrs: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def say_texts_after_connect(self) -> list[str]:
        """Texts of the `<Say>` verbs after `</Connect>`, in order."""
        says = (verb.content for verb in self.after_connect if verb.verb == "Say")
        return [text for text in says if isinstance(text, str)]

    @property
    def fallback_texts(self) -> list[str]:
        """The `<Say>` texts heard when the stream ends, up to a verb that leaves this document."""
        if self.connect_action is not None:
            return []
        texts: list[str] = []
        for verb in self.after_connect:
            if verb.verb in _ENDS_CALL:
                break
            if verb.verb == "Say" and isinstance(verb.content, str):
                texts.append(verb.content)
        return texts

    def has_verb(self, name: str) -> bool:
        """True when a top-level verb of this name is present (e.g. "Reject", "Hangup")."""
        return any(v.verb == name for v in self.verbs)


def check_content_type(content_type: str | None, transfer_encoding: str | None) -> None:
    """Raise `InvalidTwiML` unless the response is buffered XML Twilio reads as TwiML (§2.6)."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in _TWIML_CONTENT_TYPES:
        raise InvalidTwiML(f"12300 Content-Type {content_type!r}: need text/xml or application/xml")
    if "chunked" in (transfer_encoding or "").lower():
        raise InvalidTwiML("12100 chunked transfer encoding: Twilio does not read chunked TwiML")


def parse_twiml(status: int, xml: str) -> TwiMLResult:
    """Parse a TwiML document; raises `InvalidTwiML` when it is not a `<Response>` document."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise InvalidTwiML(f"12100 TwiML does not parse: {exc}") from exc
    if root.tag != "Response":
        raise InvalidTwiML(f"12100 TwiML root is <{root.tag}>, not <Response>")
    verbs = [TwiMLVerb(child.tag, _content(child)) for child in root]
    connect_index = next((i for i, child in enumerate(root) if child.tag == "Connect"), None)
    if connect_index is None:
        return TwiMLResult(status, xml, verbs)
    connect = root[connect_index]
    stream = connect.find("Stream")
    problems: list[str] = []
    parameters: dict[str, str] = {}
    if stream is not None:
        parameters = _parameters(stream, problems)
        problems += _stream_problems(stream)
    return TwiMLResult(
        status, xml, verbs,
        stream_url=None if stream is None else stream.get("url"),
        parameters=parameters,
        after_connect=verbs[connect_index + 1 :],
        connect_action=connect.get("action"),
        stream_attrs={} if stream is None else dict(stream.attrib),
        problems=problems,
    )


def _content(element: ET.Element) -> str | dict[str, str]:
    text = "".join(element.itertext()).strip()
    return text if text else dict(element.attrib)


def _parameters(stream: ET.Element, problems: list[str]) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for parameter in stream.findall("Parameter"):
        name, value = parameter.get("name"), parameter.get("value")
        if name is None or value is None:
            problems.append(f"TwiML <Parameter> needs both name and value, got {parameter.attrib}")
            continue
        parameters[name] = value
    return parameters


def _stream_problems(stream: ET.Element) -> list[str]:
    url = stream.get("url")
    if not url:
        return ["TwiML <Connect><Stream> has no url"]
    problems: list[str] = []
    parts = urlsplit(url)
    if parts.scheme not in ("", "wss"):  # a relative url is resolved against the webhook's host
        problems.append(f"31922 TwiML <Stream url> scheme {parts.scheme!r}: Twilio uses wss only")
    if parts.query:
        problems.append("31920 TwiML <Stream url> has a query string: Twilio strips or rejects it")
    track = stream.get("track")
    if track not in (None, "inbound_track"):
        problems.append(f"31941 TwiML <Connect><Stream track={track!r}>: only inbound_track")
    return problems
