"""Who may use the console: sign-in, the session cookie, CSRF tokens and sign-out.

Owns the console's only secret material. A session is a cookie holding `expiry.nonce.signature`
(HMAC-SHA256 under a key derived from the API token), sent HttpOnly, SameSite=Strict, and Secure
whenever the request came over HTTPS. Every state-changing request carries a CSRF token bound to
its session's nonce; the sign-in form carries one bound to a short-lived pre-session cookie.
Signing out forgets the nonce in this process and clears the cookie. Failed sign-ins are
counted per client address: after `MAX_FAILURES` in `FAILURE_WINDOW_S` that address waits.
Nothing here touches I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass

COOKIE = "callbridge_console"
PRE_COOKIE = "callbridge_console_signin"
SESSION_SECONDS = 12 * 3600
PRE_SESSION_SECONDS = 600
MAX_REVOKED = 10_000
MAX_FAILURES = 10
FAILURE_WINDOW_S = 60.0
MAX_TRACKED_CLIENTS = 10_000


@dataclass(frozen=True)
class Session:
    nonce: str
    expires: int


class ConsoleAuth:
    """Checks credentials and issues, reads and revokes console sessions."""

    def __init__(self, api_token: str, password: str = "") -> None:
        self._token = api_token
        self._password = password
        self._key = hashlib.sha256(b"callbridge console sessions\n" + api_token.encode()).digest()
        self._revoked: dict[str, int] = {}
        self._failures: dict[str, deque[float]] = {}

    @property
    def enabled(self) -> bool:
        return bool(self._token)

    def credentials_ok(self, given: str) -> bool:
        """The API token, or the console password when one is set; compared in constant time."""
        if not given:
            return False
        candidates = [self._token] + ([self._password] if self._password else [])
        ok = False
        for expected in candidates:
            ok |= hmac.compare_digest(given.encode(), expected.encode())
        return ok

    def may_try(self, client: str, now: float | None = None) -> bool:
        """False while `client` has failed `MAX_FAILURES` times within `FAILURE_WINDOW_S`."""
        now = time.time() if now is None else now
        failures = self._failures.get(client)
        if failures is None:
            return True
        while failures and failures[0] <= now - FAILURE_WINDOW_S:
            failures.popleft()
        if not failures:
            del self._failures[client]
        return len(failures) < MAX_FAILURES

    def failed(self, client: str, now: float | None = None) -> None:
        if len(self._failures) >= MAX_TRACKED_CLIENTS and client not in self._failures:
            self._failures.clear()  # a flood of addresses: start counting afresh
        self._failures.setdefault(client, deque(maxlen=MAX_FAILURES)).append(
            time.time() if now is None else now)

    # ---------------------------------------------------------------- sessions

    def issue(self, now: float | None = None) -> tuple[str, Session]:
        expires = int((time.time() if now is None else now) + SESSION_SECONDS)
        nonce = secrets.token_urlsafe(18)
        return self._sealed("session", nonce, expires), Session(nonce, expires)

    def read(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie holds, or None when it is absent, forged, expired or revoked."""
        opened = self._opened("session", cookie, now)
        if opened is None or opened.nonce in self._revoked:
            return None
        return opened

    def revoke(self, session: Session) -> None:
        if len(self._revoked) >= MAX_REVOKED:
            now = time.time()
            self._revoked = {n: e for n, e in self._revoked.items() if e > now}
        self._revoked[session.nonce] = session.expires

    # ---------------------------------------------------------------- CSRF

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.nonce)

    def csrf_ok(self, session: Session, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given), self.csrf_token(session))

    def issue_pre_session(self, now: float | None = None) -> tuple[str, str]:
        """A pre-session cookie for the sign-in form, and the CSRF token that form carries."""
        expires = int((time.time() if now is None else now) + PRE_SESSION_SECONDS)
        nonce = secrets.token_urlsafe(18)
        return self._sealed("signin", nonce, expires), self._mac("signin-csrf", nonce)

    def sign_in_csrf_ok(self, cookie: str | None, given: str | None,
                        now: float | None = None) -> bool:
        opened = self._opened("signin", cookie, now)
        return (opened is not None and bool(given)
                and hmac.compare_digest(str(given), self._mac("signin-csrf", opened.nonce)))

    # ---------------------------------------------------------------- sealing

    def _mac(self, purpose: str, message: str) -> str:
        return hmac.new(self._key, f"{purpose}\n{message}".encode(), hashlib.sha256).hexdigest()

    def _sealed(self, purpose: str, nonce: str, expires: int) -> str:
        return f"{expires}.{nonce}.{self._mac(purpose, f'{expires}.{nonce}')}"

    def _opened(self, purpose: str, value: str | None, now: float | None) -> Session | None:
        if not value or not self.enabled:
            return None
        expires, _, rest = value.partition(".")
        nonce, _, signature = rest.rpartition(".")
        if not expires.isascii() or not expires.isdigit() or not nonce:
            return None
        if not hmac.compare_digest(signature, self._mac(purpose, f"{expires}.{nonce}")):
            return None
        if int(expires) < (time.time() if now is None else now):
            return None
        return Session(nonce, int(expires))
