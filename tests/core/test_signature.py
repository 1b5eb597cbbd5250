"""SignatureChecker: X-Twilio-Signature on webhooks and on the media socket upgrade."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence

import pytest
from starlette.datastructures import FormData, MultiDict

from callbridge.core.signature import SignatureChecker

TOKEN = "12345"

# Twilio's published worked example (webhooks-security page, reproduced by twilio-python's tests):
# token 12345, https://example.com/myapp.php?foo=1&bar=2, these five parameters.
EXAMPLE_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675310",
    "Digits": "1234",
    "From": "+14158675310",
    "To": "+18005551212",
}
EXAMPLE_SIGNATURE = "L/OH5YylLD5NRKLltdqwSvS0BnU="
# The older variant of the same page: mycompany.com and +12349013030.
MYCOMPANY_PARAMS = {
    **EXAMPLE_PARAMS,
    "Caller": "+12349013030",
    "From": "+12349013030",
}
MYCOMPANY_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def twilio_signature(
    url: str, params: Mapping[str, str | Sequence[str]] | None = None, token: str = TOKEN
) -> str:
    """The documented algorithm, written out independently of the code under test.

    URL, then for each name in sorted order each of its values (sorted) as name+value;
    HMAC-SHA1 with the auth token; base64.
    """
    data = url
    for name in sorted(params or {}):
        values = (params or {})[name]
        for value in sorted([values] if isinstance(values, str) else values):
            data += name + value
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def test_the_independent_signer_reproduces_twilios_published_vectors() -> None:
    """The oracle used below agrees with both of Twilio's worked examples."""
    assert (
        twilio_signature("https://example.com/myapp.php?foo=1&bar=2", EXAMPLE_PARAMS),
        twilio_signature("https://mycompany.com/myapp.php?foo=1&bar=2", MYCOMPANY_PARAMS),
    ) == (EXAMPLE_SIGNATURE, MYCOMPANY_SIGNATURE)


# ---------------------------------------------------------------- webhooks


def test_twilios_worked_example_validates() -> None:
    """public_url https://example.com + /myapp.php + foo=1&bar=2 → L/OH5YylLD5NRKLltdqwSvS0BnU=."""
    checker = SignatureChecker(TOKEN, "https://example.com")
    assert checker.webhook_ok("/myapp.php", "foo=1&bar=2", EXAMPLE_PARAMS, EXAMPLE_SIGNATURE)


def test_the_older_worked_example_validates() -> None:
    """The mycompany.com variant of the example validates against its own public URL."""
    checker = SignatureChecker(TOKEN, "https://mycompany.com")
    assert checker.webhook_ok("/myapp.php", "foo=1&bar=2", MYCOMPANY_PARAMS, MYCOMPANY_SIGNATURE)


def test_sign_produces_the_published_signature() -> None:
    """sign() (used by the test kit) gives the signature Twilio would send."""
    checker = SignatureChecker(TOKEN, "https://example.com")
    url = "https://example.com/myapp.php?foo=1&bar=2"
    assert checker.sign(url, EXAMPLE_PARAMS) == EXAMPLE_SIGNATURE


@pytest.mark.parametrize(
    ("path", "query", "params"),
    [
        pytest.param("/myapp.php", "foo=1&bar=2", {**EXAMPLE_PARAMS, "Digits": "1235"},
                     id="tampered-param"),
        pytest.param("/myapp.php", "foo=1&bar=2", {**EXAMPLE_PARAMS, "Extra": "1"},
                     id="added-param"),
        pytest.param("/myapp.php", "foo=1&bar=2",
                     {k: v for k, v in EXAMPLE_PARAMS.items() if k != "To"}, id="dropped-param"),
        pytest.param("/myapp.php", "bar=2&foo=1", EXAMPLE_PARAMS, id="reordered-query"),
        pytest.param("/myapp.php", "", EXAMPLE_PARAMS, id="missing-query"),
        pytest.param("/other.php", "foo=1&bar=2", EXAMPLE_PARAMS, id="other-path"),
        pytest.param("/myapp.php/", "foo=1&bar=2", EXAMPLE_PARAMS, id="trailing-slash"),
    ],
)
def test_a_webhook_that_differs_from_what_was_signed_is_refused(
    path: str, query: str, params: dict[str, str]
) -> None:
    """Any change to the params, the raw query or the path breaks the signature."""
    checker = SignatureChecker(TOKEN, "https://example.com")
    assert checker.webhook_ok(path, query, params, EXAMPLE_SIGNATURE) is False


@pytest.mark.parametrize("signature", [None, ""], ids=["absent", "empty"])
def test_a_webhook_without_a_signature_is_refused(signature: str | None) -> None:
    """No X-Twilio-Signature header → refused."""
    checker = SignatureChecker(TOKEN, "https://example.com")
    assert checker.webhook_ok("/myapp.php", "foo=1&bar=2", EXAMPLE_PARAMS, signature) is False


def test_a_signature_made_with_another_token_is_refused() -> None:
    """The right URL and params signed with a different auth token do not validate."""
    checker = SignatureChecker("54321", "https://example.com")
    assert checker.webhook_ok("/myapp.php", "foo=1&bar=2", EXAMPLE_PARAMS, EXAMPLE_SIGNATURE) is (
        False
    )


def test_a_signature_for_another_host_is_refused() -> None:
    """The URL validated is the configured public URL, not whatever the request says."""
    checker = SignatureChecker(TOKEN, "https://example.org")
    assert checker.webhook_ok("/myapp.php", "foo=1&bar=2", EXAMPLE_PARAMS, EXAMPLE_SIGNATURE) is (
        False
    )


def test_a_get_webhook_signs_the_url_alone() -> None:
    """A GET webhook has its data in the query and an empty params mapping."""
    checker = SignatureChecker(TOKEN, "https://voice.example.com")
    signature = twilio_signature("https://voice.example.com/status?CallSid=CA1&CallStatus=ringing")
    assert checker.webhook_ok("/status", "CallSid=CA1&CallStatus=ringing", {}, signature)


@pytest.mark.parametrize(
    "public_url", ["https://example.com/", "https://example.com"], ids=["slash", "no-slash"]
)
def test_a_trailing_slash_on_the_public_url_does_not_matter(public_url: str) -> None:
    """public_url with or without a trailing slash validates the same webhook."""
    checker = SignatureChecker(TOKEN, public_url)
    assert checker.webhook_ok("/myapp.php", "foo=1&bar=2", EXAMPLE_PARAMS, EXAMPLE_SIGNATURE)


def test_a_public_url_with_a_path_prefix_is_part_of_the_signed_url() -> None:
    """Behind a proxy mounting us at /prefix, the webhook signed for /prefix/voice validates."""
    checker = SignatureChecker(TOKEN, "https://x.test/prefix")
    signed = twilio_signature("https://x.test/prefix/voice", EXAMPLE_PARAMS)
    unprefixed = twilio_signature("https://x.test/voice", EXAMPLE_PARAMS)
    assert checker.webhook_ok("/voice", "", EXAMPLE_PARAMS, signed)
    assert checker.webhook_ok("/voice", "", EXAMPLE_PARAMS, unprefixed) is False


# ---------------------------------------------------------------- repeated form keys

REPEATED = [("CallSid", "CA1"), ("Tag", "b"), ("Tag", "a"), ("To", "+15550001111")]
URL = "https://voice.example.com/voice"
SIGNED_ALL_VALUES = twilio_signature(
    URL, {"CallSid": "CA1", "Tag": ["b", "a"], "To": "+15550001111"}
)


@pytest.mark.parametrize(
    "form",
    [
        pytest.param(FormData(REPEATED), id="starlette-formdata"),
        pytest.param(MultiDict(REPEATED), id="starlette-multidict"),
        pytest.param({"CallSid": "CA1", "Tag": ["b", "a"], "To": "+15550001111"}, id="dict-lists"),
    ],
)
def test_every_value_of_a_repeated_form_key_is_signed(form: Mapping[str, str]) -> None:
    """A key sent twice is validated with both values, as Twilio signed it."""
    checker = SignatureChecker(TOKEN, "https://voice.example.com")
    assert checker.webhook_ok("/voice", "", form, SIGNED_ALL_VALUES)


def test_a_repeated_key_signed_with_one_value_only_is_refused() -> None:
    """Dropping one of the repeated values changes the signature, so the check can fail."""
    checker = SignatureChecker(TOKEN, "https://voice.example.com")
    last_only = twilio_signature(URL, {"CallSid": "CA1", "Tag": "a", "To": "+15550001111"})
    assert checker.webhook_ok("/voice", "", FormData(REPEATED), last_only) is False


def test_a_multidict_multidict_is_validated_with_every_value() -> None:
    """multidict.MultiDict (aiohttp's form type) is a Mapping too and must keep repeated values."""
    multidict = pytest.importorskip("multidict")
    checker = SignatureChecker(TOKEN, "https://voice.example.com")
    assert checker.webhook_ok("/voice", "", multidict.MultiDict(REPEATED), SIGNED_ALL_VALUES)


# ---------------------------------------------------------------- the media socket upgrade


@pytest.mark.parametrize(
    "signed_url",
    [
        "wss://voice.example.com/media",
        "wss://voice.example.com/media/",
        "https://voice.example.com/media",
        "https://voice.example.com/media/",
    ],
)
def test_the_upgrade_validates_as_wss_https_and_with_a_trailing_slash(signed_url: str) -> None:
    """Twilio signs wss://host/path with empty params; https and a trailing slash also pass."""
    checker = SignatureChecker(TOKEN, "https://voice.example.com")
    assert checker.upgrade_ok("/media", "", twilio_signature(signed_url))


@pytest.mark.parametrize(
    "signed_url",
    [
        "wss://voice.example.com/other",
        "wss://evil.example.com/media",
        "http://voice.example.com/media",
        "wss://voice.example.com/media?token=1",
    ],
    ids=["other-path", "other-host", "plain-http", "with-query"],
)
def test_an_upgrade_signed_for_another_url_is_refused(signed_url: str) -> None:
    """A signature over a different path, host, scheme or query does not admit /media."""
    checker = SignatureChecker(TOKEN, "https://voice.example.com")
    assert checker.upgrade_ok("/media", "", twilio_signature(signed_url)) is False


@pytest.mark.parametrize("signature", [None, ""], ids=["absent", "empty"])
def test_an_upgrade_without_a_signature_is_refused(signature: str | None) -> None:
    """No X-Twilio-Signature on the upgrade → refused."""
    checker = SignatureChecker(TOKEN, "https://voice.example.com")
    assert checker.upgrade_ok("/media", "", signature) is False


def test_an_upgrade_signed_with_another_token_is_refused() -> None:
    """The right URL signed with a different auth token does not validate."""
    checker = SignatureChecker(TOKEN, "https://voice.example.com")
    forged = twilio_signature("wss://voice.example.com/media", token="54321")
    assert checker.upgrade_ok("/media", "", forged) is False


@pytest.mark.parametrize(
    "public_url", ["https://x.test/prefix", "https://x.test/prefix/"], ids=["bare", "slash"]
)
def test_the_upgrade_honours_a_path_prefix_in_the_public_url(public_url: str) -> None:
    """With public_url https://x.test/prefix, wss://x.test/prefix/media validates for /media."""
    checker = SignatureChecker(TOKEN, public_url)
    assert checker.upgrade_ok("/media", "", twilio_signature("wss://x.test/prefix/media"))
    assert checker.upgrade_ok("/media", "", twilio_signature("wss://x.test/media")) is False
