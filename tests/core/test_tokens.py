"""StreamTokens: a one-time token binds a media stream to the call the webhook admitted."""

from __future__ import annotations

from callbridge.core.tokens import Grant, StreamTokens

CALL_SID = "CA" + "1" * 32
OTHER_CALL_SID = "CA" + "2" * 32


def issued(ttl: float = 30.0, now: float = 100.0) -> StreamTokens:
    tokens = StreamTokens(ttl_seconds=ttl)
    assert tokens.issue("tok_a", CALL_SID, "+15551230000", "+15559870000", now) == "tok_a"
    return tokens


def test_a_token_redeems_to_its_grant_with_from_and_to() -> None:
    """Redeeming for the right CallSid returns the whole grant the webhook issued."""
    tokens = issued(ttl=30.0, now=100.0)
    assert tokens.redeem("tok_a", CALL_SID, 101.0) == Grant(
        call_sid=CALL_SID, from_number="+15551230000", to_number="+15559870000", expires_at=130.0
    )


def test_a_token_works_only_once() -> None:
    """The second redemption of the same token is refused."""
    tokens = issued()
    assert tokens.redeem("tok_a", CALL_SID, 101.0) is not None
    assert tokens.redeem("tok_a", CALL_SID, 102.0) is None
    assert len(tokens) == 0


def test_a_token_is_live_up_to_its_expiry_and_dead_after() -> None:
    """Issued at t=100 with ttl 30: valid at t=130, refused at t=130.001."""
    assert issued().redeem("tok_a", CALL_SID, 130.0) is not None
    assert issued().redeem("tok_a", CALL_SID, 130.001) is None


def test_a_token_presented_for_another_call_is_refused() -> None:
    """A token bound to one CallSid cannot admit a stream of another call."""
    assert issued().redeem("tok_a", OTHER_CALL_SID, 101.0) is None


def test_a_refused_presentation_spends_the_token() -> None:
    """After a wrong-CallSid attempt the token is gone, even for its own call (one try only)."""
    tokens = issued()
    tokens.redeem("tok_a", OTHER_CALL_SID, 101.0)
    assert tokens.redeem("tok_a", CALL_SID, 102.0) is None


def test_an_unknown_token_is_refused() -> None:
    """A token that was never issued admits nothing."""
    assert issued().redeem("tok_forged", CALL_SID, 101.0) is None


def test_tokens_are_independent() -> None:
    """Two calls' tokens each redeem for their own call only."""
    tokens = issued()
    tokens.issue("tok_b", OTHER_CALL_SID, "+15550000001", "+15559870000", 100.0)
    assert tokens.redeem("tok_b", CALL_SID, 101.0) is None
    assert tokens.redeem("tok_a", CALL_SID, 101.0) is not None


def test_expired_tokens_are_forgotten_once_many_are_held() -> None:
    """Tokens never redeemed do not pile up: past 64 held, expired ones are pruned on issue."""
    tokens = StreamTokens(ttl_seconds=30.0)
    for i in range(65):
        tokens.issue(f"old_{i}", CALL_SID, "", "", 0.0)
    tokens.issue("fresh", CALL_SID, "", "", 100.0)
    assert len(tokens) == 1
