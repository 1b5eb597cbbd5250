"""Webhook signatures: made by callbridge, checked by the snippet users copy from the docs."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from callbridge.analytics.delivery import event_body
from callbridge.webhooks import sign, verify_signature

DOC = Path(__file__).parents[2] / "docs" / "analytics.md"
SECRET = "whsec_test"
T = 1_790_000_000
BODY = b'{"id":"CA1:call.ended","type":"call.ended"}'

Verify = Callable[..., bool]


def documented_snippet() -> Verify:
    """`verify_signature` as defined by the Python block in docs/analytics.md."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    [snippet] = [b for b in blocks if "def verify_signature" in b]
    namespace: dict[str, Any] = {}
    exec(compile(snippet, str(DOC), "exec"), namespace)
    verify: Verify = namespace["verify_signature"]
    return verify


VERIFIERS = pytest.mark.parametrize("verify", [verify_signature, documented_snippet()],
                                    ids=["library", "docs snippet"])


def test_the_signature_is_hmac_sha256_of_the_timestamp_and_the_body() -> None:
    """Anyone can recompute it from the documented recipe."""
    digest = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, T) == f"t={T},v1={digest}"


@VERIFIERS
def test_a_genuine_signature_verifies(verify: Verify) -> None:
    """A signature made now, or within the tolerance, is accepted."""
    header = sign(SECRET, BODY, T)
    assert verify(SECRET, header, BODY, now=T)
    assert verify(SECRET, header, BODY, now=T + 299)
    assert verify(SECRET, f"t={T},v1=deadbeef,v1={header.split('v1=')[1]}", BODY, now=T)


@VERIFIERS
@pytest.mark.parametrize(("secret", "header", "body", "now"), [
    (SECRET, sign(SECRET, BODY, T), BODY.replace(b"ended", b"ENDED"), T),
    (SECRET, sign(SECRET, BODY, T), BODY + b" ", T),
    ("another secret", sign(SECRET, BODY, T), BODY, T),
    (SECRET, sign(SECRET, BODY, T), BODY, T + 301),
    (SECRET, sign(SECRET, BODY, T), BODY, T - 301),
    (SECRET, sign(SECRET, BODY, T).replace(f"t={T}", f"t={T + 60}"), BODY, T + 60),
    (SECRET, "", BODY, T),
    (SECRET, "t=soon,v1=00", BODY, T),
    (SECRET, f"v1={sign(SECRET, BODY, T).split('v1=')[1]}", BODY, T),
    (SECRET, f"t={T},v1=é", BODY, T),
], ids=["tampered body", "extra byte", "wrong secret", "stale", "from the future",
        "timestamp changed", "empty header", "bad timestamp", "no timestamp", "non-ascii"])
def test_a_forged_tampered_or_stale_request_is_rejected(verify: Verify, secret: str,
                                                        header: str, body: bytes,
                                                        now: float) -> None:
    """Changed bytes, another key, an old or altered timestamp, or junk: all refused."""
    assert not verify(secret, header, body, now=now)


def test_an_event_body_is_the_same_bytes_on_every_retry() -> None:
    """The id and created_at come from the call and the job, not the moment of sending."""
    call = {"call_sid": "CA1", "status": "completed", "transcript": [{"role": "caller"}],
            "events": [], "analysis": {"summary": "s"}, "webhook_deliveries": []}
    first = event_body("call.analyzed", call, T)
    assert first == event_body("call.analyzed", call, T)
    assert first == (b'{"id":"CA1:call.analyzed","type":"call.analyzed",'
                     b'"created_at":"2026-09-21T14:13:20+00:00","data":{"call":{"call_sid":"CA1",'
                     b'"status":"completed"},"transcript":[{"role":"caller"}],'
                     b'"analysis":{"summary":"s"}}}')
    assert b'"analysis"' not in event_body("call.ended", call, T)
