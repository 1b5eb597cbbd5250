"""Signing callbridge's webhooks, and checking them in your own receiver.

Every event callbridge POSTs carries `Callbridge-Signature: t=<unix seconds>,v1=<hex>`, where the
hex is HMAC-SHA256 of `f"{t}.{raw body}"` under the agent's webhook secret, and
`Callbridge-Event-Id: <call sid>:<event>`, stable across retries so a receiver can drop repeats.
`verify_signature` is the same code as the stdlib-only snippet in docs/analytics.md (a test runs
the snippet from the document). Stdlib only; reads the clock only when `now` is not given.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Callbridge-Signature"
EVENT_ID_HEADER = "Callbridge-Event-Id"
EVENT_TYPE_HEADER = "Callbridge-Event"
DEFAULT_TOLERANCE_S = 300


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `Callbridge-Signature` header value for `body` sent at `timestamp` (Unix seconds)."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes,
                     tolerance: int = DEFAULT_TOLERANCE_S, now: float | None = None) -> bool:
    """True if `header` (the Callbridge-Signature value) signs exactly `body` (the raw request
    body) with `secret` and was made within `tolerance` seconds of `now` (default: the clock)."""
    fields = {}
    signatures = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "v1":
            signatures.append(value)
        else:
            fields[key] = value
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    signed = str(timestamp).encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected.encode(), s.encode()) for s in signatures)
