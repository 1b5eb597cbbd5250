"""Console sessions and CSRF tokens: only what this key sealed, unexpired and not revoked."""

from __future__ import annotations

from callbridge.server.console.auth import (
    FAILURE_WINDOW_S,
    MAX_FAILURES,
    SESSION_SECONDS,
    ConsoleAuth,
)


def test_a_session_cookie_reads_back_until_it_expires() -> None:
    """The cookie it issued opens; past its expiry it does not."""
    auth = ConsoleAuth("token")
    cookie, session = auth.issue(now=1000.0)
    assert auth.read(cookie, now=1000.0 + SESSION_SECONDS - 1) == session
    assert auth.read(cookie, now=1000.0 + SESSION_SECONDS + 1) is None


def test_a_tampered_or_foreign_cookie_is_refused() -> None:
    """Changing any part, or sealing under another token, gives no session."""
    auth = ConsoleAuth("token")
    cookie, _ = auth.issue(now=1000.0)
    expires, nonce, signature = cookie.split(".")
    other, _ = ConsoleAuth("another token").issue(now=1000.0)
    for forged in (f"{int(expires) + 99}.{nonce}.{signature}", f"{expires}.x{nonce}.{signature}",
                   f"{expires}.{nonce}.{signature[:-1]}0", other, "", "1.2", "a.b.c"):
        assert auth.read(forged, now=1000.0) is None, forged


def test_a_revoked_session_is_refused() -> None:
    """Signing out forgets the session for good."""
    auth = ConsoleAuth("token")
    cookie, session = auth.issue()
    auth.revoke(session)
    assert auth.read(cookie) is None


def test_csrf_tokens_are_bound_to_their_session() -> None:
    """A session's CSRF token is refused for another session, and blank is refused."""
    auth = ConsoleAuth("token")
    _, mine = auth.issue()
    _, theirs = auth.issue()
    assert auth.csrf_ok(mine, auth.csrf_token(mine))
    assert not auth.csrf_ok(mine, auth.csrf_token(theirs))
    assert not auth.csrf_ok(mine, "")
    assert not auth.csrf_ok(mine, None)


def test_the_sign_in_token_must_match_its_pre_session_cookie() -> None:
    """The sign-in form's CSRF token works only with the cookie it came with."""
    auth = ConsoleAuth("token")
    cookie, csrf = auth.issue_pre_session()
    _other_cookie, other_csrf = auth.issue_pre_session()
    assert auth.sign_in_csrf_ok(cookie, csrf)
    assert not auth.sign_in_csrf_ok(cookie, other_csrf)
    assert not auth.sign_in_csrf_ok(None, csrf)


def test_the_token_or_the_password_signs_in_and_nothing_else() -> None:
    """Either credential is accepted; blanks and near misses are not."""
    auth = ConsoleAuth("token", password="hunter2")
    assert auth.credentials_ok("token")
    assert auth.credentials_ok("hunter2")
    assert not any(auth.credentials_ok(x) for x in ("", "toke", "token ", "hunter"))
    assert not ConsoleAuth("token").credentials_ok("")


def test_an_address_that_keeps_failing_waits_a_minute() -> None:
    """After MAX_FAILURES failures in the window the address may not try; others may; the
    window passing lets it try again."""
    auth = ConsoleAuth("token")
    for attempt in range(MAX_FAILURES):
        assert auth.may_try("10.0.0.1", now=100.0 + attempt)
        auth.failed("10.0.0.1", now=100.0 + attempt)
    assert not auth.may_try("10.0.0.1", now=100.0 + MAX_FAILURES)
    assert auth.may_try("10.0.0.2", now=100.0 + MAX_FAILURES)
    assert auth.may_try("10.0.0.1", now=100.0 + MAX_FAILURES + FAILURE_WINDOW_S)
