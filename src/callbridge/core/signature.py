"""Checks of Twilio's `X-Twilio-Signature` on webhooks and on the media socket upgrade.

Owns which URL is validated: always the configured public base URL plus the path and the raw query
as received — never the Host header, which proxies rewrite. Twilio signs the upgrade as
`wss://host/path` with empty params; we also accept `https://` (proxies) and a trailing slash
(Twilio's own tip). The HMAC itself is twilio's `RequestValidator`, which is pure.
No I/O. No clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator


class SignatureChecker:
    """Validates signatures against one auth token and one public base URL."""

    def __init__(self, auth_token: str, public_url: str) -> None:
        self._validator = RequestValidator(auth_token)
        parts = urlsplit(public_url.rstrip("/"))
        self._base = f"{parts.scheme}://{parts.netloc}{parts.path}"
        self._host_and_prefix = f"{parts.netloc}{parts.path}"

    def webhook_ok(
        self,
        path: str,
        query: str,
        params: Mapping[str, Any],
        signature: str | None,
    ) -> bool:
        """A form-encoded webhook (POST params, or GET with an empty mapping)."""
        if not signature:
            return False
        url = self._base + path + (f"?{query}" if query else "")
        return bool(self._validator.validate(url, _MultiParams(params), signature))

    def upgrade_ok(self, path: str, query: str, signature: str | None) -> bool:
        """The WebSocket upgrade of a media stream: `wss://host/path`, empty params."""
        if not signature:
            return False
        suffix = f"?{query}" if query else ""
        for scheme in ("wss", "https"):
            base = f"{scheme}://{self._host_and_prefix}{path}"
            for url in (base, base.rstrip("/") + "/"):
                if self._validator.validate(url + suffix, {}, signature):
                    return True
        return False

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        """The signature Twilio would send for `url` and `params` (tests and the test kit)."""
        return str(self._validator.compute_signature(url, dict(params)))


class _MultiParams(dict[str, str]):
    """Lets RequestValidator see every value of a repeated form key (it calls `getall`)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        getlist = getattr(params, "getlist", None) or getattr(params, "getall", None)
        self._lists: dict[str, list[str]] = {}
        for key in params:
            values = getlist(key) if getlist is not None else params[key]
            self._lists[key] = [values] if isinstance(values, str) else [str(v) for v in values]
        super().__init__({key: values[-1] for key, values in self._lists.items()})

    def getall(self, key: str) -> list[str]:
        return self._lists[key]
