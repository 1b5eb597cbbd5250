"""As-heard recordings on disk, and the signed, expiring links that serve them.

Owns writing a call's two tracks as a stereo WAV (left the caller, right the agent as played) in a
worker thread — never on the event loop — under `CALLBRIDGE_RECORDINGS_DIR`, and the HMAC-signed
URLs through which the API hands them out: `GET /api/calls/{sid}/recording` (bearer token) returns
a link valid for a few minutes, and `GET /recordings/{sid}.wav?expires=…&signature=…` serves the
file only while that link is valid. (An S3-compatible bucket is not supported yet.)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from pathlib import Path

from callbridge.audio.wav import write_stereo_ulaw_as_pcm16

LINK_SECONDS = 300
_SID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class RecordingStore:
    def __init__(self, directory: str | Path, secret: str) -> None:
        self.directory = Path(directory)
        self._key = hashlib.sha256(b"callbridge recording links\n" + secret.encode()).digest()

    def path(self, call_sid: str) -> Path:
        if not _SID.match(call_sid):
            raise ValueError(f"not a call SID: {call_sid!r}")
        return self.directory / f"{call_sid}.wav"

    async def save(self, call_sid: str, caller: bytes, agent: bytes) -> tuple[Path, float]:
        """Write the stereo WAV off the event loop; returns its path and length in seconds."""
        path = self.path(call_sid)

        def write() -> float:
            self.directory.mkdir(parents=True, exist_ok=True)
            return write_stereo_ulaw_as_pcm16(path, caller, agent)

        seconds = await asyncio.to_thread(write)
        return path, seconds

    def link(self, call_sid: str, now: float | None = None) -> tuple[str, int]:
        """A relative URL to the recording that works for `LINK_SECONDS`, and its expiry."""
        expires = int((time.time() if now is None else now) + LINK_SECONDS)
        return (f"/recordings/{call_sid}.wav?expires={expires}"
                f"&signature={self._sign(call_sid, expires)}", expires)

    def check(self, call_sid: str, expires: str, signature: str, now: float | None = None) -> bool:
        if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
            return False
        return hmac.compare_digest(signature, self._sign(call_sid, int(expires)))

    def _sign(self, call_sid: str, expires: int) -> str:
        return hmac.new(self._key, f"{call_sid}\n{expires}".encode(), hashlib.sha256).hexdigest()
