"""Masking personal data for logs. The database keeps the real values (the user's system of
record); log lines get these."""

from __future__ import annotations


def mask_number(number: str) -> str:
    """`+15551234567` → `+1555•••4567`; SIP and client identities keep only their scheme."""
    if not number:
        return ""
    if ":" in number:
        return number.split(":", 1)[0] + ":•••"
    if len(number) <= 6:
        return "•••"
    return number[:5] + "•••" + number[-4:]
