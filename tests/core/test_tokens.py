"""StreamTokens: a one-time, self-verifying token binds a media stream to the admitted call."""

from __future__ import annotations

from callbridge.core.tokens import Grant, StreamTokens, derive_secret

CALL_SID = "CA" + "1" * 32
OTHER_CALL_SID = "CA" + "2" * 32
SECRET = derive_secret("twilio-auth-token")
FROM, TO = "+15551230000", "+15559870000"


def issued(ttl: float = 30.0, now: float = 100.0, nonce: str = "n1") -> tuple[StreamTokens, str]:
    tokens = StreamTokens(SECRET, ttl_seconds=ttl)
    return tokens, tokens.issue(CALL_SID, FROM, TO, now, nonce)


def test_a_token_redeems_to_its_grant() -> None:
    """Redeeming for the right call and numbers returns the grant the webhook issued."""
    tokens, token = issued(ttl=30.0, now=100.0)
    assert tokens.redeem(token, CALL_SID, FROM, TO, 101.0) == Grant(CALL_SID, FROM, TO, 130.0,
                                                                    "n1")


def test_another_instance_with_the_same_secret_accepts_it() -> None:
    """The media socket may land on any instance: the token verifies itself."""
    _, token = issued()
    elsewhere = StreamTokens(SECRET)
    assert elsewhere.redeem(token, CALL_SID, FROM, TO, 101.0) is not None


def test_a_token_works_only_once() -> None:
    """The second redemption on an instance is refused."""
    tokens, token = issued()
    assert tokens.redeem(token, CALL_SID, FROM, TO, 101.0) is not None
    assert tokens.redeem(token, CALL_SID, FROM, TO, 102.0) is None


def test_a_token_is_live_up_to_its_expiry_and_dead_after() -> None:
    """Issued at t=100 with ttl 30: valid at t=130, refused at t=130.001."""
    tokens, token = issued()
    assert tokens.redeem(token, CALL_SID, FROM, TO, 130.0) is not None
    tokens, token = issued()
    assert tokens.redeem(token, CALL_SID, FROM, TO, 130.001) is None


def test_a_token_presented_for_another_call_or_other_numbers_is_refused() -> None:
    """CallSid, From and To are all bound by the MAC."""
    tokens, token = issued()
    assert tokens.redeem(token, OTHER_CALL_SID, FROM, TO, 101.0) is None
    assert tokens.redeem(token, CALL_SID, "+15550000000", TO, 101.0) is None
    assert tokens.redeem(token, CALL_SID, FROM, "+15550000000", 101.0) is None
    assert tokens.redeem(token, CALL_SID, FROM, TO, 101.0) is not None


def test_forged_and_malformed_tokens_are_refused() -> None:
    """A changed expiry, another secret or garbage admits nothing."""
    tokens, token = issued()
    expires, nonce, mac = token.split(".")
    assert tokens.redeem(f"{int(expires) + 60}.{nonce}.{mac}", CALL_SID, FROM, TO, 101.0) is None
    other = StreamTokens(derive_secret("another-account")).issue(CALL_SID, FROM, TO, 100.0, "n")
    assert tokens.redeem(other, CALL_SID, FROM, TO, 101.0) is None
    for junk in ["", "abc", "1.2", "x.y.z", "130.n1.", "..."]:
        assert tokens.redeem(junk, CALL_SID, FROM, TO, 101.0) is None


def test_tokens_of_different_calls_are_independent() -> None:
    """Two calls' tokens each redeem for their own call only."""
    tokens, token_a = issued(nonce="a")
    token_b = tokens.issue(OTHER_CALL_SID, FROM, TO, 100.0, "b")
    assert tokens.redeem(token_b, CALL_SID, FROM, TO, 101.0) is None
    assert tokens.redeem(token_b, OTHER_CALL_SID, FROM, TO, 101.0) is not None
    assert tokens.redeem(token_a, CALL_SID, FROM, TO, 101.0) is not None
