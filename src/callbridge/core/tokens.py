"""One-time stream tokens: minted by the voice webhook, redeemed once by the media socket.

A token binds a media stream to the CallSid (and From/To) that Twilio signed in the webhook, so a
replayed or forged `start` cannot attach to someone else's call. A token works once and expires.
The adapter supplies the random token text and the time. No I/O. No clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Grant:
    call_sid: str
    from_number: str
    to_number: str
    expires_at: float


class StreamTokens:
    def __init__(self, ttl_seconds: float = 30.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._grants: dict[str, Grant] = {}

    def issue(self, token: str, call_sid: str, from_number: str, to_number: str, now: float) -> str:
        """Remember `token` for `call_sid` until `now + ttl_seconds`; returns the token."""
        self._prune(now)
        self._grants[token] = Grant(call_sid, from_number, to_number, now + self.ttl_seconds)
        return token

    def redeem(self, token: str, call_sid: str, now: float) -> Grant | None:
        """The grant if `token` is live and bound to `call_sid`; it can never be redeemed again."""
        grant = self._grants.pop(token, None)
        if grant is None or grant.expires_at < now or grant.call_sid != call_sid:
            return None
        return grant

    def _prune(self, now: float) -> None:
        if len(self._grants) > 64:
            self._grants = {t: g for t, g in self._grants.items() if g.expires_at >= now}

    def __len__(self) -> int:
        return len(self._grants)
