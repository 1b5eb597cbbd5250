"""The fake caller's configuration and errors, and what Twilio derives from them before a call.

Owns `CallerOptions`, the caller's error types and call states, and what follows from the options:
the voice-webhook form parameters of a ringing inbound call, the URLs Twilio signs (the configured
public URL, `wss://` for the stream) and the loopback URLs actually dialled in their place.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit


def new_sid(prefix: str) -> str:
    """A random Twilio-style SID: a two-letter prefix and 32 hex digits."""
    return prefix + secrets.token_hex(16)


# CallerError
#  ├── CallRefused      the voice webhook answered non-2xx
#  ├── UpgradeRefused   the WebSocket upgrade was answered with an HTTP status instead of 101
#  ├── ConnectFailed    no HTTP answer at all (refused, reset, timed out)
#  └── NotStreaming     a stream operation while no stream is open
# InvalidTwiML (a ValueError, from caller_twiml): the webhook answer is not runnable TwiML.


class CallerError(Exception):
    """The fake call could not go on as asked."""


class CallRefused(CallerError):
    """The voice webhook answered with a non-2xx status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"voice webhook answered HTTP {status}")
        self.status = status
        self.body = body


class UpgradeRefused(CallerError):
    """The WebSocket upgrade was answered with an HTTP status instead of 101 (Twilio 31920)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"WebSocket upgrade answered HTTP {status}, not 101")
        self.status = status


class ConnectFailed(CallerError):
    """The server could not be reached or did not answer (Twilio 11205 / 31901 / 31902)."""


class NotStreaming(CallerError):
    """A stream operation was asked for while no stream is open."""


class CallState(enum.Enum):
    """Where the fake call is: dial() → DIALED, connect() → STREAMING, then ENDED."""

    IDLE = "idle"
    DIALED = "dialed"
    STREAMING = "streaming"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class CallerOptions:
    """Everything that configures a fake caller; `FakeTwilioCaller.from_options` takes one."""

    server_url: str  # where the bridge listens (http or https); ws/wss is derived from it
    public_url: str  # the bridge's configured public base URL, which Twilio signs
    auth_token: str
    account_sid: str = field(default_factory=lambda: new_sid("AC"))
    call_sid: str = field(default_factory=lambda: new_sid("CA"))
    stream_sid: str = field(default_factory=lambda: new_sid("MZ"))
    from_number: str = "+15550001111"
    to_number: str = "+15550002222"
    speed: float = 1.0  # 2.0 = frames and playback twice as fast as real time
    sign_webhook: bool = True
    sign_upgrade: bool = True
    webhook_path: str = "/voice"
    act_on_invalid: bool = False  # True: still play/echo messages that break Twilio's rules
    timeout: float = 10.0  # seconds for the webhook answer and for the upgrade

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError(f"speed must be positive, not {self.speed}")

    def voice_params(self) -> dict[str, str]:
        """The form parameters Twilio POSTs to the voice webhook of a ringing inbound call."""
        caller, called = self.from_number, self.to_number
        params = {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": self.call_sid,
            "CallStatus": "ringing", "Direction": "inbound",
            "Called": called, "Caller": caller, "From": caller, "To": called,
        }
        for who in ("Called", "Caller", "From", "To"):
            params |= {f"{who}City": "", f"{who}Country": "US", f"{who}State": "", f"{who}Zip": ""}
        return params

    def webhook_urls(self) -> tuple[str, str]:
        """(the public URL Twilio signs, the loopback URL posted to) of the voice webhook."""
        path = self.webhook_path
        return self.public_url.rstrip("/") + path, self.server_url.rstrip("/") + path

    def stream_urls(self, url: str) -> tuple[str, str]:
        """(the wss URL Twilio signs, the loopback URL actually dialled) for a `<Stream url>`.

        Twilio drops a query string; a relative url is resolved against the public webhook URL.
        """
        parts = urlsplit(url)
        if not parts.netloc:
            public = urlsplit(self.public_url)
            parts = urlsplit(urljoin(f"wss://{public.netloc}{self.webhook_path}", url))
        signed = urlunsplit(("wss", parts.netloc, parts.path, "", ""))
        server = urlsplit(self.server_url)
        scheme = "wss" if server.scheme == "https" else "ws"
        return signed, urlunsplit((scheme, server.netloc, parts.path or "/", "", ""))
