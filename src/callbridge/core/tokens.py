"""One-time stream tokens: minted by the voice webhook, redeemed once by the media socket.

A token binds a media stream to the CallSid, From and To that Twilio signed in the webhook, so a
replayed or forged `start` cannot attach to someone else's call. Tokens verify themselves — an
HMAC-SHA256 over the call, the numbers, the expiry and a nonce, keyed with a secret every
instance shares — so the media socket may land on any instance behind a load balancer. Each
instance refuses a nonce it has seen before (one use) until the token has expired anyway; with a
shared PostgreSQL database the nonce is also redeemed once for all instances (`server.cluster`).
The adapter supplies the secret, the random nonce and the (wall-clock) time. No I/O. No clock.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Grant:
    call_sid: str
    from_number: str
    to_number: str
    expires_at: float
    nonce: str = ""  # for single use across instances (`server.cluster`)


def derive_secret(shared: str) -> bytes:
    """The token key derived from a secret all instances know (the Twilio auth token)."""
    return hmac.new(shared.encode(), b"callbridge stream token v1", hashlib.sha256).digest()


class StreamTokens:
    def __init__(self, secret: bytes, ttl_seconds: float = 30.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._secret = secret
        self._used: dict[str, float] = {}  # nonce → expiry

    def issue(self, call_sid: str, from_number: str, to_number: str, now: float,
              nonce: str) -> str:
        """A token for this call valid until `now + ttl_seconds` (`nonce`: random, URL-safe)."""
        expires = int(now + self.ttl_seconds)
        mac = self._mac(call_sid, from_number, to_number, expires, nonce)
        return f"{expires}.{nonce}.{mac}"

    def redeem(self, token: str, call_sid: str, from_number: str, to_number: str,
               now: float) -> Grant | None:
        """The grant if `token` is genuine for this call and numbers, unexpired and unused here;
        it can never be redeemed on this instance again."""
        parts = token.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return None
        expires, nonce, mac = int(parts[0]), parts[1], parts[2]
        expected = self._mac(call_sid, from_number, to_number, expires, nonce)
        if not hmac.compare_digest(mac, expected) or expires < now:
            return None
        self._prune(now)
        if nonce in self._used:
            return None
        self._used[nonce] = expires
        return Grant(call_sid, from_number, to_number, float(expires), nonce)

    def _mac(self, call_sid: str, from_number: str, to_number: str, expires: int,
             nonce: str) -> str:
        message = "\n".join((call_sid, from_number, to_number, str(expires), nonce)).encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _prune(self, now: float) -> None:
        if len(self._used) > 1024:
            self._used = {n: e for n, e in self._used.items() if e >= now}

    def __len__(self) -> int:
        return len(self._used)
