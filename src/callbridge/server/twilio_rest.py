"""Twilio's REST API, the part callbridge uses: live-call control, outbound calls, phone numbers.

Owns the wire format of `/2010-04-01/Accounts/{AC}/…` (Basic auth, form-encoded POSTs with
repeated keys for lists, Twilio's JSON error body), the translation of every httpx and HTTP failure
into `TwilioRestError` at one boundary, retries of idempotent requests, and the outbound-call
pacing Twilio's calls-per-second (CPS) limit asks for (`CallPacer`).

It must not decide when to call Twilio: callers do (e.g. wait for the goodbye mark before hanging
up). Plain httpx, not the twilio SDK, so `base_url` can point at `FakeTwilioRest`. Create it inside
the running event loop that uses it, and close it (`aclose()` or `async with`).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx

from callbridge.closing import AsyncClosing
from callbridge.errors import CallbridgeError

log = logging.getLogger("callbridge.twilio_rest")

API_VERSION = "2010-04-01"
NOT_FOUND = 20404  # Twilio's code for a resource that does not exist (e.g. a call that has ended)
MAX_TWIML_CHARS = 4000  # Twilio's limit on inline `Twiml` (§5.2)
DEFAULT_STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
MACHINE_DETECTION = ("Enable", "DetectMessageEnd")
_MAX_RETRY_DELAY = 5.0

Form = Mapping[str, str | Iterable[str]]


class TwilioRestError(CallbridgeError):
    """A Twilio REST request failed.

    `status` is the HTTP status (None when no answer came: connection refused, timeout),
    `code` Twilio's error code from the JSON body (e.g. 20404, 20003; None when absent) and
    `message` Twilio's message (or the transport failure). Transport failures chain the httpx
    exception as `__cause__`.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        answer = f"HTTP {status}" if status is not None else "no answer"
        detail = f"{answer}, code {code}" if code is not None else answer
        super().__init__(f"Twilio {method} {path}: {detail}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.method = method
        self.path = path

    @property
    def not_found(self) -> bool:
        """True for 404 / 20404: the resource does not exist (a call that has already ended)."""
        return self.status == 404 or self.code == NOT_FOUND


@dataclass(frozen=True, slots=True)
class CallResource:
    """A call as Twilio returned it. `status` right after create is `queued`: nothing has rung."""

    sid: str
    status: str
    to: str
    from_: str
    direction: str
    uri: str

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> CallResource:
        """From Twilio's JSON call resource; raises `TwilioRestError` when `sid` is missing."""
        return cls(
            sid=_required(body, "sid"),
            status=_text(body, "status") or "",
            to=_text(body, "to") or "",
            from_=_text(body, "from") or "",
            direction=_text(body, "direction") or "",
            uri=_text(body, "uri") or "",
        )


@dataclass(frozen=True, slots=True)
class NumberResource:
    """An incoming phone number of the account and where it sends its calls."""

    sid: str
    phone_number: str
    voice_url: str | None
    voice_fallback_url: str | None
    status_callback: str | None
    friendly_name: str | None

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> NumberResource:
        """From Twilio's JSON IncomingPhoneNumber resource (empty strings become None)."""
        return cls(
            sid=_required(body, "sid"),
            phone_number=_text(body, "phone_number") or "",
            voice_url=_text(body, "voice_url"),
            voice_fallback_url=_text(body, "voice_fallback_url"),
            status_callback=_text(body, "status_callback"),
            friendly_name=_text(body, "friendly_name"),
        )


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    return str(value) if value not in (None, "") else None


def _required(body: Mapping[str, Any], key: str) -> str:
    value = _text(body, key)
    if value is None:
        raise TwilioRestError(f"the response has no {key!r}")
    return value


class CallPacer:
    """Spaces outbound call creations at most `cps` per second, first come first served.

    `await wait()` returns when the caller may send its create: the first at once, each later one
    at least 1/cps seconds after the previous release. Waiters queue in FIFO order; a waiter
    cancelled while queued gives up its place without using a slot. Time is the running event
    loop's clock; the pacer sleeps on one timer, never polls.
    """

    def __init__(self, cps: float = 1.0) -> None:
        if not cps > 0:
            raise ValueError(f"cps must be positive, not {cps}")
        self.interval = 1.0 / cps
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._next_release = float("-inf")
        self._timer: asyncio.TimerHandle | None = None

    async def wait(self) -> None:
        """Return when the next call may be created; see the class docstring."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self._release()
        await future

    def _release(self) -> None:
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        while self._waiters:
            if self._waiters[0].done():  # cancelled while queued
                self._waiters.popleft()
                continue
            now = loop.time()
            if now < self._next_release:
                self._timer = loop.call_at(self._next_release, self._on_timer)
                return
            self._waiters.popleft().set_result(None)
            self._next_release = now + self.interval

    def _on_timer(self) -> None:
        self._timer = None
        self._release()


class TwilioRest(AsyncClosing):
    """An async client for the REST calls callbridge makes; see the module docstring.

    Requests that are safe to repeat (updates, hang-ups, GETs, number configuration) are retried
    up to `retries` times on a connection failure, 429 or 5xx, after `backoff`, 2×`backoff`, …
    seconds (or Twilio's `Retry-After`, at most 5 s). `create_call`, `start_recording` and
    `buy_number` are never retried: a repeat could place a second call, start a second recording
    or buy a second number. `create_call` waits its turn at a `CallPacer(cps)`.
    """

    def __init__(
        self,
        base_url: str,
        account_sid: str,
        auth_token: str,
        *,
        timeout: float = 10.0,
        cps: float = 1.0,
        retries: int = 2,
        backoff: float = 0.25,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("account_sid and auth_token are required")
        self.account_sid = account_sid
        self.pacer = CallPacer(cps)
        self._retries = retries
        self._backoff = backoff
        self._account = f"/{API_VERSION}/Accounts/{quote(account_sid, safe='')}"
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            auth=httpx.BasicAuth(account_sid, auth_token),
            timeout=timeout,
            headers={"Accept": "application/json", "User-Agent": "callbridge"},
            transport=transport,
            verify=_ssl_context(),
            trust_env=False,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the connection pool. Safe to call twice."""
        await self._client.aclose()

    # ---- calls ------------------------------------------------------------------------------

    async def create_call(
        self,
        to: str,
        from_: str,
        *,
        url: str | None = None,
        twiml: str | None = None,
        status_callback: str | None = None,
        status_callback_event: Iterable[str] = DEFAULT_STATUS_EVENTS,
        machine_detection: str | None = None,
        async_amd: bool = False,
        async_amd_status_callback: str | None = None,
        timeout: int | None = None,  # noqa: ASYNC109 - Twilio's ring time (Timeout), not ours
        time_limit: int | None = None,
    ) -> CallResource:
        """Place an outbound call (POST Calls.json), paced by `pacer`; never retried.

        Exactly one of `url` (TwiML fetched at answer) and `twiml` (inline, ≤ 4000 characters).
        `status_callback_event` is sent (repeated `StatusCallbackEvent`) only with a
        `status_callback`. `async_amd` needs `machine_detection` ("Enable" or
        "DetectMessageEnd"); use it, not synchronous AMD, with media streams (§5.2).
        """
        form = _call_form(to, from_, url, twiml, status_callback, status_callback_event)
        form |= _amd_form(machine_detection, async_amd, async_amd_status_callback)
        form |= _optional(Timeout=timeout, TimeLimit=time_limit)
        await self.pacer.wait()
        body = await self._request("POST", f"{self._account}/Calls.json", form=form, retry=False)
        return CallResource.parse(body)

    async def update_call(
        self,
        call_sid: str,
        *,
        twiml: str | None = None,
        url: str | None = None,
        status: Literal["completed", "canceled"] | None = None,
    ) -> None:
        """Redirect a live call to new TwiML (`twiml` or `url`, not both) or end it (`status`).

        With `status`, 404 / 20404 (the call has already ended) is success. A redirect of an
        ended call raises `TwilioRestError` with `not_found` true: the transfer did not happen.
        """
        if twiml is not None and url is not None:
            raise ValueError("twiml and url are mutually exclusive")
        if twiml is None and url is None and status is None:
            raise ValueError("give twiml, url or status")
        if status not in (None, "completed", "canceled"):
            raise ValueError(f"status must be 'completed' or 'canceled', not {status!r}")
        form = _optional(Twiml=twiml, Url=url, Status=status)
        path = f"{self._account}/Calls/{quote(call_sid, safe='')}.json"
        try:
            await self._request("POST", path, form=form, retry=True)
        except TwilioRestError as exc:
            if status is None or not exc.not_found:
                raise
            log.debug("call %s had already ended (%s)", call_sid, exc.code)

    async def hang_up(self, call_sid: str) -> None:
        """End the call (`Status=completed`); a call that has already ended is success."""
        await self.update_call(call_sid, status="completed")

    async def start_recording(
        self,
        call_sid: str,
        *,
        status_callback: str,
        channels: Literal["mono", "dual"] = "dual",
        track: Literal["inbound", "outbound", "both"] = "both",
    ) -> str:
        """Start recording a live call; returns the recording SID (`RE…`). Never retried.

        Twilio POSTs `status_callback` when the recording is `completed` or `absent`.
        """
        form: dict[str, str | list[str]] = {
            "RecordingChannels": channels,
            "RecordingTrack": track,
            "RecordingStatusCallback": status_callback,
            "RecordingStatusCallbackEvent": ["completed", "absent"],
        }
        path = f"{self._account}/Calls/{quote(call_sid, safe='')}/Recordings.json"
        body = await self._request("POST", path, form=form, retry=False)
        return _required(body, "sid")

    # ---- phone numbers ---------------------------------------------------------------------

    async def list_numbers(self, *, page_size: int = 50) -> list[NumberResource]:
        """Every incoming phone number of the account, following `next_page_uri` page by page."""
        numbers: list[NumberResource] = []
        path: str | None = f"{self._account}/IncomingPhoneNumbers.json"
        params: dict[str, str] | None = {"PageSize": str(page_size)}
        while path is not None:
            body = await self._request("GET", path, params=params, retry=True)
            numbers += [NumberResource.parse(n) for n in _items(body, "incoming_phone_numbers")]
            path, params = _text(body, "next_page_uri"), None  # the next URI carries its query
        return numbers

    async def find_available(
        self,
        country: str = "US",
        *,
        area_code: str | int | None = None,
        contains: str | None = None,
        limit: int = 5,
    ) -> list[str]:
        """Up to `limit` local, voice-capable numbers (E.164) that can be bought in `country`."""
        params = {"VoiceEnabled": "true", "PageSize": str(limit)}
        params |= {k: str(v) for k, v in _optional(AreaCode=area_code, Contains=contains).items()}
        path = f"{self._account}/AvailablePhoneNumbers/{quote(country, safe='')}/Local.json"
        body = await self._request("GET", path, params=params, retry=True)
        found = (_text(n, "phone_number") for n in _items(body, "available_phone_numbers"))
        return [number for number in found if number][:limit]

    async def buy_number(
        self,
        phone_number: str,
        *,
        voice_url: str,
        voice_fallback_url: str | None = None,
        status_callback: str | None = None,
    ) -> NumberResource:
        """Buy `phone_number` and point its calls at `voice_url` (all POST). Never retried."""
        form: dict[str, str | list[str]] = {"PhoneNumber": phone_number}
        form |= _number_form(voice_url, voice_fallback_url, status_callback)
        path = f"{self._account}/IncomingPhoneNumbers.json"
        return NumberResource.parse(await self._request("POST", path, form=form, retry=False))

    async def configure_number(
        self,
        number_sid: str,
        *,
        voice_url: str,
        voice_fallback_url: str | None = None,
        status_callback: str | None = None,
    ) -> NumberResource:
        """Point an owned number's calls at `voice_url` (all POST); a None URL is left unchanged."""
        form = _number_form(voice_url, voice_fallback_url, status_callback)
        path = f"{self._account}/IncomingPhoneNumbers/{quote(number_sid, safe='')}.json"
        return NumberResource.parse(await self._request("POST", path, form=form, retry=True))

    # ---- the one boundary --------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        form: Form | None = None,
        params: Mapping[str, str] | None = None,
        retry: bool,
    ) -> dict[str, Any]:
        """Send one request, retrying transient failures when `retry`; the JSON body on 2xx."""
        attempts = 1 + (self._retries if retry else 0)
        for attempt in range(attempts):
            try:
                return await self._send(method, path, form, params)
            except _Transient as transient:
                if attempt + 1 == attempts:
                    raise transient.error from transient.error.__cause__
                delay = max(self._backoff * 2**attempt, transient.retry_after)
                delay = min(delay, _MAX_RETRY_DELAY)
                log.info("%s; retrying in %.2f s", transient.error, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self, method: str, path: str, form: Form | None, params: Mapping[str, str] | None
    ) -> dict[str, Any]:
        try:
            response = await self._client.request(method, path, data=form, params=params)
        except httpx.TransportError as exc:
            error = TwilioRestError(repr(exc), method=method, path=path)
            error.__cause__ = exc
            raise _Transient(error, 0.0) from exc
        except httpx.HTTPError as exc:
            raise TwilioRestError(repr(exc), method=method, path=path) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise _Transient(_http_error(response, method, path), _retry_after(response))
        if not response.is_success:
            raise _http_error(response, method, path)
        try:
            body = response.json()
        except ValueError as exc:
            raise TwilioRestError(
                "the response is not JSON", status=response.status_code, method=method, path=path
            ) from exc
        if not isinstance(body, dict):
            raise TwilioRestError(
                "the response is not a JSON object", status=response.status_code,
                method=method, path=path,
            )
        return body


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default certificate check, built once (building it costs ~50 ms per client)."""
    return httpx.create_ssl_context()


class _Transient(Exception):
    """Internal: a failure worth retrying; carries the error to raise when retries run out."""

    def __init__(self, error: TwilioRestError, retry_after: float) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _http_error(response: httpx.Response, method: str, path: str) -> TwilioRestError:
    """Twilio's JSON error body `{"code", "message", "status"}` as a `TwilioRestError`."""
    message, code = response.text[:200] or response.reason_phrase, None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = str(body.get("message") or message)
        raw_code = body.get("code")
        code = raw_code if isinstance(raw_code, int) else None
    return TwilioRestError(message, status=response.status_code, code=code, method=method,
                           path=path)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(float(response.headers.get("retry-after", "0")), 0.0)
    except ValueError:
        return 0.0


def _items(body: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = body.get(key)
    if not isinstance(items, list):
        raise TwilioRestError(f"the response has no list {key!r}")
    return [item for item in items if isinstance(item, Mapping)]


def _optional(**fields: str | int | None) -> dict[str, str | list[str]]:
    """The fields that are given, as form values."""
    return {name: str(value) for name, value in fields.items() if value is not None}


def _call_form(
    to: str,
    from_: str,
    url: str | None,
    twiml: str | None,
    status_callback: str | None,
    status_callback_event: Iterable[str],
) -> dict[str, str | list[str]]:
    if (url is None) == (twiml is None):
        raise ValueError("give exactly one of url and twiml")
    if twiml is not None and len(twiml) > MAX_TWIML_CHARS:
        raise ValueError(f"inline TwiML is {len(twiml)} characters; Twilio takes {MAX_TWIML_CHARS}")
    form = {"To": to, "From": from_} | _optional(Url=url, Twiml=twiml)
    if status_callback is not None:
        form |= {"StatusCallback": status_callback,
                 "StatusCallbackEvent": list(status_callback_event)}
    return form


def _amd_form(
    machine_detection: str | None, async_amd: bool, async_amd_status_callback: str | None
) -> dict[str, str | list[str]]:
    if machine_detection is None:
        if async_amd or async_amd_status_callback is not None:
            raise ValueError("async_amd needs machine_detection")
        return {}
    if machine_detection not in MACHINE_DETECTION:
        raise ValueError(f"machine_detection must be one of {MACHINE_DETECTION}")
    form: dict[str, str | list[str]] = {"MachineDetection": machine_detection}
    if async_amd:
        form["AsyncAmd"] = "true"
        form |= _optional(AsyncAmdStatusCallback=async_amd_status_callback)
    elif async_amd_status_callback is not None:
        raise ValueError("async_amd_status_callback needs async_amd=True")
    return form


def _number_form(
    voice_url: str, voice_fallback_url: str | None, status_callback: str | None
) -> dict[str, str | list[str]]:
    return {"VoiceUrl": voice_url, "VoiceMethod": "POST"} | _optional(
        VoiceFallbackUrl=voice_fallback_url, StatusCallback=status_callback,
    ) | {"VoiceFallbackMethod": "POST", "StatusCallbackMethod": "POST"}
