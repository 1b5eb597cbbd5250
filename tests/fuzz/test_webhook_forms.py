"""Fuzzing the webhooks: any form, correctly signed, POSTed to any of Twilio's routes is answered
without a server error; so is any unsigned body of any content type.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from tests.e2e.harness import AUTH_TOKEN, PUBLIC_URL
from tests.fuzz.conftest import LiveApp

ROUTES = ["/voice", "/twilio/status", "/twilio/recording", "/twilio/amd", "/twilio/outbound"]
TWILIO_KEYS = ["CallSid", "AccountSid", "From", "To", "Direction", "CallStatus", "CallDuration",
               "AnsweredBy", "RecordingSid", "RecordingUrl", "RecordingStatus",
               "RecordingDuration", "Digits", "ApiVersion"]
VALUES = (st.text(max_size=40)
          | st.sampled_from(["", "CA" + "a" * 32, "completed", "ringing", "in-progress",
                             "outbound-api", "machine_start", "42", "²", "③", "١٢", "-1", "1e9",
                             "+15550002222", "\x00", "' OR 1=1 --", "<Say>hi</Say>"]))
FORMS = st.dictionaries(st.sampled_from(TWILIO_KEYS) | st.text(max_size=12), VALUES,
                        max_size=8)
_validator = RequestValidator(AUTH_TOKEN)


def signed_post(app: LiveApp, path: str, form: dict[str, str]) -> int:
    signature = _validator.compute_signature(PUBLIC_URL + path, form)
    response = app.client.post(path, data=form, headers={"X-Twilio-Signature": signature})
    app.end_calls()
    return response.status_code


@pytest.mark.parametrize("path", ROUTES)
@settings(max_examples=60, deadline=None)
@given(form=FORMS)
def test_a_signed_form_of_any_content_is_never_a_server_error(
    live_app: LiveApp, path: str, form: dict[str, str],
) -> None:
    """Any fields and values, signed with the account's token: 2xx, 400 or 403, never 5xx."""
    assert signed_post(live_app, path, form) < 500


CONTENT_TYPES = st.sampled_from(["application/x-www-form-urlencoded", "multipart/form-data",
                                 "multipart/form-data; boundary=xyz", "application/json",
                                 "text/plain", ""])


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(ROUTES), CONTENT_TYPES, st.binary(max_size=200),
       st.none() | st.text(max_size=30))
def test_an_unsigned_or_forged_body_of_any_kind_is_refused_without_a_server_error(
    live_app: LiveApp, path: str, content_type: str, body: bytes, signature: str | None,
) -> None:
    """Raw bytes, any content type, no or a made-up signature: 400 or 403, never 5xx."""
    headers = {"Content-Type": content_type} if content_type else {}
    if signature is not None and signature.isascii() and signature.isprintable():
        headers["X-Twilio-Signature"] = signature
    response = live_app.client.post(path, content=body, headers=headers)
    live_app.end_calls()
    assert response.status_code in (400, 403), response.text


def test_a_typical_signed_status_callback_is_accepted(live_app: LiveApp) -> None:
    """The properties above really get past the signature check: a plain callback is 204."""
    form = {"CallSid": "CA" + "b" * 32, "CallStatus": "completed", "CallDuration": "42"}
    assert signed_post(live_app, "/twilio/status", form) == 204


@pytest.mark.parametrize(("path", "key"), [("/twilio/status", "CallDuration"),
                                           ("/twilio/recording", "RecordingDuration")])
@pytest.mark.parametrize("duration", ["²", "③"])
def test_a_duration_in_superscript_or_circled_digits_is_not_a_server_error(
    live_app: LiveApp, path: str, key: str, duration: str,
) -> None:
    """A signed callback whose duration is not a number is accepted or refused: < 500."""
    form = {"CallSid": "CA" + "c" * 32, "CallStatus": "completed", key: duration}
    assert signed_post(live_app, path, form) < 500
