"""TwiML documents the webhooks answer, built with twilio's own TwiML builder (pure, no I/O).

`connect_stream()` answers an admitted call: `<Connect><Stream>` with `<Parameter>`s, then the
spoken apology Twilio plays only if our side closes the stream (an upstream outage), then
`<Hangup/>`. No I/O. No clock.
"""

from __future__ import annotations

from twilio.twiml.voice_response import Connect, VoiceResponse

DEFAULT_APOLOGY = (
    "We're sorry, our assistant is having trouble right now. Please call again in a few minutes."
)


def connect_stream(
    stream_url: str,
    parameters: dict[str, str],
    *,
    apology: str = DEFAULT_APOLOGY,
    status_callback: str | None = None,
) -> str:
    """TwiML that connects the call to our media socket, with the apology after `</Connect>`."""
    response = VoiceResponse()
    connect = Connect()
    stream_args: dict[str, str] = {"url": stream_url}
    if status_callback:
        stream_args["status_callback"] = status_callback
        stream_args["status_callback_method"] = "POST"
    stream = connect.stream(**stream_args)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    response.say(apology)
    response.hangup()
    return str(response.to_xml(xml_declaration=False))


def say_and_hang_up(text: str) -> str:
    """TwiML that says `text` and ends the call (refusals, overflow, misconfiguration)."""
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response.to_xml(xml_declaration=False))
