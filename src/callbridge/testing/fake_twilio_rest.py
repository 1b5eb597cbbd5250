"""A fake Twilio REST API over real loopback sockets, and what Twilio does next to your server.

Owns two halves of Twilio for tests and users:
- the REST side: `/2010-04-01/Accounts/{AC}/…` for calls (create, fetch, update), call recordings
  and phone numbers (list with paging, available, buy, configure), with Basic auth, Twilio's JSON
  error shape and call state (an ended or unknown call answers 404 / 20404). Every request is
  recorded, authorized or not. `reject_next()` scripts transient failures.
- Twilio's side of what follows, on demand: `answer()` fetches the call's TwiML (signed, like
  Twilio) and opens its `<Connect><Stream>` with a `FakeTwilioCaller`; async AMD posts `AnsweredBy`;
  `send_status()` and `complete_recording()` post signed callbacks. Nothing is sent unprompted
  except the AMD callback that `answer()` schedules, and the end of a stream when its call is
  hung up through the API.

Callback URLs are signed exactly as configured (the public URL) but sent to `server_url`: a URL
starting with `public_url` is re-based onto `server_url`. Independent of `callbridge.server`'s REST
client on purpose: it is the yardstick that client is measured against. Reads the event loop's
clock only for the AMD delay.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import hmac
import ssl
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from callbridge.server.runner import running
from callbridge.testing.caller_config import CallRefused, CallState, ConnectFailed, new_sid
from callbridge.testing.caller_twiml import TwiMLResult, check_content_type, parse_twiml
from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.served import Served

API = "/2010-04-01/Accounts/{account}"
CALL_STATUSES = ("queued", "initiated", "ringing", "in-progress", "completed", "busy", "failed",
                 "no-answer", "canceled")
TERMINAL = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
ANSWERED_BY = {
    "Enable": frozenset({"human", "machine_start", "fax", "unknown"}),
    "DetectMessageEnd": frozenset({"human", "machine_end_beep", "machine_end_silence",
                                   "machine_end_other", "fax", "unknown"}),
}
DEFAULT_AVAILABLE = {"US": [f"+1415555{n:04d}" for n in range(100, 105)]
                     + [f"+1212555{n:04d}" for n in range(100, 103)]}
_ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the fake received; `form` and `query` keep every value of repeated keys."""

    method: str
    path: str
    form: dict[str, list[str]]
    query: dict[str, list[str]]
    authorized: bool

    def value(self, key: str) -> str | None:
        """The first value of `key` in the form, else in the query; None when absent."""
        values = self.form.get(key) or self.query.get(key)
        return values[0] if values else None


@dataclass
class FakeRecording:
    """A recording started through the API."""

    sid: str
    call_sid: str
    channels: str
    track: str
    status_callback: str | None
    status_callback_events: list[str]
    status: str = "in-progress"


@dataclass
class FakeCall:
    """Twilio's state of one call: created through the API (`outbound-api`) or added by a test."""

    sid: str
    to: str
    from_: str
    direction: str
    status: str
    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    status_callback: str | None = None
    status_callback_events: list[str] = field(default_factory=list)
    machine_detection: str | None = None
    async_amd: bool = False
    async_amd_status_callback: str | None = None
    answered_by: str | None = None
    twiml_updates: list[str] = field(default_factory=list)
    url_updates: list[str] = field(default_factory=list)
    recordings: list[FakeRecording] = field(default_factory=list)
    callbacks_sent: int = 0
    server_url: str | None = None  # where its callbacks go, when not the fake's default
    public_url: str | None = None


@dataclass
class FakeNumber:
    """An incoming phone number of the fake account."""

    sid: str
    phone_number: str
    friendly_name: str
    voice_url: str | None = None
    voice_method: str = "POST"
    voice_fallback_url: str | None = None
    voice_fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One request the fake made to your server as Twilio: `url` is what was signed, `target`
    where it went. `status` is None and `error` set when no HTTP answer came."""

    kind: str  # "voice" | "amd" | "status" | "recording"
    call_sid: str
    url: str
    target: str
    params: dict[str, str]
    signature: str
    status: int | None
    body: str = ""
    error: str | None = None
    content_type: str | None = None


class _ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error_response(status: int, code: int, message: str) -> JSONResponse:
    """Twilio's JSON error body."""
    return JSONResponse(
        {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
         "status": status},
        status_code=status,
        headers={"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None,
    )


_Handler = Callable[[RecordedRequest, dict[str, str]], Awaitable[Response]]


class FakeTwilioRest(Served):
    """The fake; `start()`/`stop()` it or use it as an async context manager. See the module
    docstring. `server_url`/`public_url` (per call overridable) say where your server listens and
    the public base URL Twilio knows it by."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        server_url: str | None = None,
        public_url: str | None = None,
        available: dict[str, list[str]] | None = None,
        keep_alive: bool = True,
    ) -> None:
        self.account_sid = account_sid
        # False: every webhook is a new connection, as when a balancer spreads them (Twilio
        # does not promise to reuse connections)
        self.keep_alive = keep_alive
        self.auth_token = auth_token
        self.server_url = server_url
        self.public_url = public_url
        self.requests: list[RecordedRequest] = []
        self.calls: dict[str, FakeCall] = {}
        self.numbers: dict[str, FakeNumber] = {}
        self._initial_available = available or DEFAULT_AVAILABLE
        self.available = {k: list(v) for k, v in self._initial_available.items()}
        self.deliveries: list[Delivery] = []
        self._validator = RequestValidator(auth_token)
        self._rejects: list[tuple[int, int, str]] = []
        self._callers: dict[str, FakeTwilioCaller] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._http: httpx.AsyncClient | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._url: str | None = None

    # ---- life cycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on `host:port` (0: any free port); `url` is valid afterwards."""
        if self._stack is not None:
            raise RuntimeError("the fake Twilio REST API is already started")
        async with contextlib.AsyncExitStack() as stack:
            server = await stack.enter_async_context(running(self._app(), host, port))
            self._http = await stack.enter_async_context(
                httpx.AsyncClient(trust_env=False, timeout=10.0, verify=_ssl_context(),
                                  limits=httpx.Limits(max_keepalive_connections=(
                                      20 if self.keep_alive else 0)))
            )
            self._url = server.url
            self._stack = stack.pop_all()

    async def stop(self) -> None:
        """Cancel pending callbacks, hang up the fake callers, stop listening. Safe twice."""
        await self._quiesce()
        if self._stack is not None:
            stack, self._stack, self._http = self._stack, None, None
            await stack.aclose()

    async def reset(self) -> None:
        """Forget every request, call, number, delivery and scripted rejection, and hang up the
        fake callers; the server keeps listening, so one fake can serve many tests."""
        await self._quiesce()
        self.requests.clear()
        self.calls.clear()
        self.numbers.clear()
        self.deliveries.clear()
        self._rejects.clear()
        self.available = {k: list(v) for k, v in self._initial_available.items()}

    async def _quiesce(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        callers, self._callers = list(self._callers.values()), {}
        for caller in callers:
            await caller.aclose()

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`: the value for CALLBRIDGE_TWILIO_API_URL."""
        if self._url is None:
            raise RuntimeError("the fake Twilio REST API is not started")
        return self._url

    # ---- scripting and records --------------------------------------------------------------

    def reject_next(self, n: int = 1, status: int = 503, code: int | None = None,
                    message: str = "Service Unavailable") -> None:
        """Answer the next `n` authorized API requests with `status` (Twilio error `code`)."""
        self._rejects += [(status, code or 20000 + status, message)] * n

    def add_call(self, call_sid: str, *, to: str = "+15550002222", from_: str = "+15550001111",
                 status: str = "in-progress", direction: str = "inbound") -> FakeCall:
        """Make a call Twilio knows of without the API, e.g. an inbound call of a fake caller."""
        call = FakeCall(call_sid, to, from_, direction, status)
        self.calls[call_sid] = call
        return call

    def add_number(self, phone_number: str, **fields: Any) -> FakeNumber:
        """Give the account a phone number (FakeNumber fields as keywords)."""
        number = FakeNumber(new_sid("PN"), phone_number, _friendly(phone_number), **fields)
        self.numbers[number.sid] = number
        return number

    def inbound_caller(self, *, server_url: str | None = None, public_url: str | None = None,
                       **caller_kwargs: Any) -> FakeTwilioCaller:
        """A `FakeTwilioCaller` of this account whose call the API knows (in progress), so that
        hanging it up through the API ends its stream. `stop()` closes it."""
        server_url, public_url = self._urls(server_url, public_url)
        if server_url is None or public_url is None:
            raise ValueError("an inbound caller needs server_url and public_url")
        caller = FakeTwilioCaller(server_url, public_url, self.auth_token,
                                  account_sid=self.account_sid, **caller_kwargs)
        call = self.add_call(caller.call_sid, to=caller.options.to_number,
                             from_=caller.options.from_number)
        call.server_url, call.public_url = server_url, public_url
        self._callers[caller.call_sid] = caller
        return caller

    @property
    def calls_created(self) -> list[RecordedRequest]:
        """The authorized POSTs to Calls.json, in order."""
        return [r for r in self.requests
                if r.authorized and r.method == "POST" and r.path.endswith("/Calls.json")]

    def updates(self, call_sid: str) -> list[RecordedRequest]:
        """The authorized POSTs to Calls/{call_sid}.json, in order."""
        suffix = f"/Calls/{call_sid}.json"
        return [r for r in self.requests
                if r.authorized and r.method == "POST" and r.path.endswith(suffix)]

    async def wait_for_delivery(
        self,
        kind: str,
        call_sid: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - a wall-clock budget, part of the public contract
    ) -> Delivery:
        """The first delivery of `kind` (for `call_sid`), waiting up to `timeout` wall seconds."""
        async with asyncio.timeout(timeout):
            while True:
                for delivery in self.deliveries:
                    if delivery.kind == kind and call_sid in (None, delivery.call_sid):
                        return delivery
                changed = self._changed
                await changed.wait()

    # ---- what Twilio then does --------------------------------------------------------------

    async def answer(
        self,
        call_sid: str,
        *,
        answered_by: str = "human",
        amd_delay: float = 0.5,
        server_url: str | None = None,
        public_url: str | None = None,
        **caller_kwargs: Any,
    ) -> FakeTwilioCaller:
        """The callee picks up: fetch the call's TwiML (signed POST to its `Url`, or its inline
        `Twiml`), schedule the async AMD callback, and open `<Connect><Stream>` if there is one.

        Returns a `FakeTwilioCaller` for the call: streaming when the TwiML has a stream, else
        holding only `twiml`. `stop()` closes it. With synchronous AMD, `AnsweredBy` rides on the
        TwiML request. Raises `CallRefused` on a non-2xx TwiML answer, `InvalidTwiML` on a bad one.
        """
        call = self._live_call(call_sid)
        if call.machine_detection and answered_by not in ANSWERED_BY[call.machine_detection]:
            raise ValueError(f"AnsweredBy {answered_by!r} is not a {call.machine_detection} value")
        server_url, public_url = self._urls(server_url, public_url)
        call.server_url, call.public_url = server_url, public_url
        call.status = "in-progress"
        params = self._standard_params(call)
        if call.machine_detection:
            call.answered_by = answered_by
            if not call.async_amd:
                params["AnsweredBy"] = answered_by
            elif call.async_amd_status_callback:
                self._spawn(self._send_amd(call, amd_delay, server_url, public_url))
        twiml = await self._call_twiml(call, params, server_url, public_url)
        url_path = urlsplit(call.url).path if call.url else ""
        caller = FakeTwilioCaller(
            server_url or "http://127.0.0.1:9", public_url or server_url or "", self.auth_token,
            account_sid=self.account_sid, call_sid=call.sid, from_number=call.from_,
            to_number=call.to, webhook_path=url_path or "/", **caller_kwargs,
        )
        self._callers[call.sid] = caller
        caller.twiml = twiml  # what dial() would have set
        caller.violations.extend(twiml.problems)
        caller.state = CallState.DIALED
        if twiml.stream_url is not None:
            if server_url is None:
                raise ValueError("the TwiML opens a stream: give server_url")
            await caller.connect(twiml.stream_url, parameters=twiml.parameters)
        return caller

    async def send_status(self, call_sid: str, status: str, **extra: str) -> Delivery:
        """Move the call to `status` (a CallStatus) and POST the signed status callback.

        A terminal status ends the call's stream first. `extra` adds or overrides parameters.
        Raises `ConnectFailed` when the server does not answer.
        """
        if status not in CALL_STATUSES:
            raise ValueError(f"not a CallStatus: {status!r}")
        call = self._known_call(call_sid)
        if call.status_callback is None:
            raise ValueError(f"call {call_sid} has no StatusCallback")
        call.status = status
        if status in TERMINAL:
            await self._end_stream(call.sid)
        params = self._standard_params(call) | {
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(call.callbacks_sent),
            "Timestamp": _now(),
        }
        if status in TERMINAL:
            params |= {"CallDuration": "0", "Duration": "0"}
        if call.answered_by and not call.async_amd:
            params["AnsweredBy"] = call.answered_by
        call.callbacks_sent += 1
        return _raise_undelivered(
            await self._deliver("status", call.sid, call.status_callback, params | extra,
                                server_url=call.server_url, public_url=call.public_url)
        )

    async def complete_recording(self, call_sid: str, *, duration: int = 5) -> Delivery:
        """Finish the call's latest recording and POST its signed recording status callback."""
        call = self._known_call(call_sid)
        recording = next((r for r in reversed(call.recordings) if r.status == "in-progress"), None)
        if recording is None or recording.status_callback is None:
            raise ValueError(f"call {call_sid} has no recording in progress with a callback")
        recording.status = "completed"
        params = {
            "AccountSid": self.account_sid, "CallSid": call.sid,
            "RecordingSid": recording.sid,
            "RecordingUrl": f"https://api.twilio.com{API.format(account=self.account_sid)}"
                            f"/Recordings/{recording.sid}",
            "RecordingStatus": "completed", "RecordingDuration": str(duration),
            "RecordingChannels": "2" if recording.channels == "dual" else "1",
            "RecordingStartTime": _now(), "RecordingSource": "StartCallRecordingAPI",
            "RecordingTrack": recording.track,
        }
        return _raise_undelivered(
            await self._deliver("recording", call.sid, recording.status_callback, params,
                                server_url=call.server_url, public_url=call.public_url)
        )

    def _urls(
        self, server_url: str | None, public_url: str | None
    ) -> tuple[str | None, str | None]:
        return server_url or self.server_url, public_url or self.public_url

    def _known_call(self, call_sid: str) -> FakeCall:
        call = self.calls.get(call_sid)
        if call is None:
            raise LookupError(f"no call {call_sid}")
        return call

    def _live_call(self, call_sid: str) -> FakeCall:
        call = self._known_call(call_sid)
        if call.status in TERMINAL or call.status == "in-progress":
            raise ValueError(f"call {call_sid} is {call.status}: it cannot be answered")
        return call

    def _standard_params(self, call: FakeCall) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": call.sid,
            "CallStatus": call.status, "Direction": call.direction,
            "From": call.from_, "To": call.to, "Caller": call.from_, "Called": call.to,
        }

    async def _call_twiml(self, call: FakeCall, params: dict[str, str], server_url: str | None,
                          public_url: str | None) -> TwiMLResult:
        if call.url is None:
            return parse_twiml(200, call.twiml or "")
        delivery = _raise_undelivered(await self._deliver(
            "voice", call.sid, call.url, params, server_url=server_url, public_url=public_url,
            method=call.method,
        ))
        assert delivery.status is not None
        if not 200 <= delivery.status < 300:
            raise CallRefused(delivery.status, delivery.body)
        check_content_type(delivery.content_type, None)
        return parse_twiml(delivery.status, delivery.body)

    async def _send_amd(self, call: FakeCall, delay: float, server_url: str | None,
                        public_url: str | None) -> None:
        await asyncio.sleep(delay)
        assert call.async_amd_status_callback is not None
        assert call.answered_by is not None
        params = {
            "AccountSid": self.account_sid, "CallSid": call.sid,
            "AnsweredBy": call.answered_by, "MachineDetectionDuration": str(round(delay * 1000)),
        }
        await self._deliver("amd", call.sid, call.async_amd_status_callback, params,
                            server_url=server_url, public_url=public_url)

    async def _end_stream(self, call_sid: str) -> None:
        caller = self._callers.get(call_sid)
        if caller is not None:
            await caller.hang_up()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, kind: str, call_sid: str, url: str, params: dict[str, str], *,
                       server_url: str | None = None, public_url: str | None = None,
                       method: str = "POST") -> Delivery:
        """Sign `url` as configured, send it to the mapped target, record the delivery."""
        if self._http is None:
            raise RuntimeError("the fake Twilio REST API is not started")
        server_url, public_url = self._urls(server_url, public_url)
        signed, data = url, params
        if method == "GET":
            query = str(httpx.QueryParams(params))
            signed, data = url + ("&" if "?" in url else "?") + query, {}
        signature = str(self._validator.compute_signature(signed, data))
        target = _rebase(signed, public_url, server_url)
        headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1",
                   "I-Twilio-Idempotency-Token": str(uuid.uuid4())}
        status, body, content_type, error = None, "", None, None
        try:
            response = await self._http.request(method, target, data=data or None, headers=headers)
            status, body = response.status_code, response.text
            content_type = response.headers.get("content-type")
        except httpx.HTTPError as exc:
            error = f"{kind} callback {target}: {exc!r}"
        delivery = Delivery(kind, call_sid, signed, target, dict(params), signature, status,
                            body, error, content_type)
        self.deliveries.append(delivery)
        self._changed.set()
        self._changed = asyncio.Event()
        return delivery

    # ---- the REST API -----------------------------------------------------------------------

    def _app(self) -> Starlette:
        calls, call = f"{API}/Calls.json", f"{API}/Calls/{{call_sid}}.json"
        numbers = f"{API}/IncomingPhoneNumbers.json"
        number = f"{API}/IncomingPhoneNumbers/{{sid}}.json"
        return Starlette(routes=[
            Route(calls, self._api(self._create_call), methods=["POST"]),
            Route(call, self._api(self._fetch_call), methods=["GET"]),
            Route(call, self._api(self._update_call), methods=["POST"]),
            Route(f"{API}/Calls/{{call_sid}}/Recordings.json", self._api(self._start_recording),
                  methods=["POST"]),
            Route(numbers, self._api(self._list_numbers), methods=["GET"]),
            Route(numbers, self._api(self._buy_number), methods=["POST"]),
            Route(number, self._api(self._configure_number), methods=["POST"]),
            Route(f"{API}/AvailablePhoneNumbers/{{country}}/Local.json",
                  self._api(self._available), methods=["GET"]),
            Route("/{rest:path}", self._api(self._no_route), methods=_ALL_METHODS),
        ])

    def _api(self, handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            body = (await request.body()).decode("utf-8", "replace")
            authorized = self._authorized(request.headers.get("authorization"))
            recorded = RecordedRequest(
                request.method, request.url.path, parse_qs(body, keep_blank_values=True),
                parse_qs(request.url.query, keep_blank_values=True), authorized,
            )
            self.requests.append(recorded)
            if not authorized:
                return _error_response(401, 20003, "Authenticate")
            path_params = {k: str(v) for k, v in request.path_params.items()}
            if path_params.get("account", self.account_sid) != self.account_sid:
                return _error_response(404, 20404, "The requested resource was not found")
            if self._rejects:
                return _error_response(*self._rejects.pop(0))
            try:
                return await handler(recorded, path_params)
            except _ApiError as exc:
                return _error_response(exc.status, exc.code, exc.message)

        return endpoint

    def _authorized(self, header: str | None) -> bool:
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(f"{user}:{password}", f"{self.account_sid}:{self.auth_token}")

    async def _no_route(self, request: RecordedRequest, path: dict[str, str]) -> Response:
        raise _ApiError(404, 20404, f"The requested resource {request.path} was not found")

    async def _create_call(self, request: RecordedRequest, path: dict[str, str]) -> Response:
        to, from_ = request.value("To"), request.value("From")
        url, twiml = request.value("Url"), request.value("Twiml")
        if not to:
            raise _ApiError(400, 21201, "No 'To' number is specified")
        if not from_:
            raise _ApiError(400, 21603, "A 'From' phone number is required")
        if not url and not twiml:
            raise _ApiError(400, 21205, "A 'Url' or 'Twiml' parameter is required")
        call = FakeCall(
            new_sid("CA"), to, from_, "outbound-api", "queued",
            url=url or None, twiml=None if url else twiml,
            method=request.value("Method") or "POST",
            status_callback=request.value("StatusCallback"),
            status_callback_events=request.form.get("StatusCallbackEvent", []),
            machine_detection=request.value("MachineDetection"),
            async_amd=request.value("AsyncAmd") == "true",
            async_amd_status_callback=request.value("AsyncAmdStatusCallback"),
        )
        if call.machine_detection not in (None, *ANSWERED_BY):
            raise _ApiError(400, 21218, f"Invalid MachineDetection {call.machine_detection!r}")
        self.calls[call.sid] = call
        return JSONResponse(self._call_json(call), status_code=201)

    async def _fetch_call(self, request: RecordedRequest, path: dict[str, str]) -> Response:
        return JSONResponse(self._call_json(self._api_call(path["call_sid"])))

    async def _update_call(self, request: RecordedRequest, path: dict[str, str]) -> Response:
        call = self._api_call(path["call_sid"])
        if call.status in TERMINAL:
            raise _ApiError(404, 20404, f"The requested resource {request.path} was not found")
        status, url, twiml = (request.value(k) for k in ("Status", "Url", "Twiml"))
        if url:
            call.url_updates.append(url)
        elif twiml:
            call.twiml_updates.append(twiml)
        if status == "completed" or (status == "canceled" and call.status != "in-progress"):
            call.status = status
        if call.status in TERMINAL or url or twiml:  # the current <Connect><Stream> is abandoned
            self._spawn(self._end_stream(call.sid))
        return JSONResponse(self._call_json(call))

    async def _start_recording(self, request: RecordedRequest, path: dict[str, str]) -> Response:
        call = self._api_call(path["call_sid"])
        if call.status != "in-progress":
            raise _ApiError(400, 21220, f"Call is {call.status}: only an in-progress call records")
        recording = FakeRecording(
            new_sid("RE"), call.sid, request.value("RecordingChannels") or "mono",
            request.value("RecordingTrack") or "both", request.value("RecordingStatusCallback"),
            request.form.get("RecordingStatusCallbackEvent", ["completed"]),
        )
        call.recordings.append(recording)
        base = f"{API.format(account=self.account_sid)}/Calls/{call.sid}/Recordings"
        return JSONResponse({
            "sid": recording.sid, "call_sid": call.sid, "account_sid": self.account_sid,
            "status": recording.status, "channels": 2 if recording.channels == "dual" else 1,
            "track": recording.track, "source": "StartCallRecordingAPI",
            "date_created": _now(), "uri": f"{base}/{recording.sid}.json",
        }, status_code=201)

    async def _list_numbers(self, request: RecordedRequest, path: dict[str, str]) -> Response:
        size = min(int(request.value("PageSize") or 50), 1000)
        page = int(request.value("Page") or 0)
        numbers = list(self.numbers.values())
        chunk = numbers[page * size:(page + 1) * size]
        base = f"{API.format(account=self.account_sid)}/IncomingPhoneNumbers.json"
        more = (page + 1) * size < len(numbers)
        next_uri = (f"{base}?PageSize={size}&Page={page + 1}&PageToken=PA{chunk[-1].sid}"
                    if more else None)
        return JSONResponse({
            "incoming_phone_numbers": [self._number_json(n) for n in chunk],
            "page": page, "page_size": size, "start": page * size,
            "end": page * size + max(len(chunk) - 1, 0),
            "uri": f"{base}?PageSize={size}&Page={page}",
            "first_page_uri": f"{base}?PageSize={size}&Page=0",
            "next_page_uri": next_uri,
            "previous_page_uri": f"{base}?PageSize={size}&Page={page - 1}" if page else None,
        })

    async def _buy_number(self, request: RecordedRequest, path: dict[str, str]) -> Response:
        phone_number = request.value("PhoneNumber")
        if not phone_number:
            raise _ApiError(400, 21421, "PhoneNumber is required")
        for numbers in self.available.values():
            if phone_number in numbers:
                numbers.remove(phone_number)
        number = self.add_number(phone_number)
        self._configure(number, request)
        return JSONResponse(self._number_json(number), status_code=201)

    async def _configure_number(self, request: RecordedRequest, path: dict[str, str]) -> Response:
        number = self.numbers.get(path["sid"])
        if number is None:
            raise _ApiError(404, 20404, f"The requested resource {request.path} was not found")
        self._configure(number, request)
        return JSONResponse(self._number_json(number))

    async def _available(self, request: RecordedRequest, path: dict[str, str]) -> Response:
        area_code, contains = request.value("AreaCode"), request.value("Contains")
        size = int(request.value("PageSize") or 50)
        found = [n for n in self.available.get(path["country"], [])
                 if (not area_code or n[2:].startswith(area_code))
                 and (not contains or contains.strip("*") in n)]
        return JSONResponse({"available_phone_numbers": [
            {"phone_number": n, "friendly_name": _friendly(n), "iso_country": path["country"],
             "capabilities": {"voice": True, "SMS": True, "MMS": False}}
            for n in found[:size]
        ], "uri": request.path})

    def _api_call(self, call_sid: str) -> FakeCall:
        call = self.calls.get(call_sid)
        if call is None:
            raise _ApiError(404, 20404, f"The requested resource Calls/{call_sid} was not found")
        return call

    def _configure(self, number: FakeNumber, request: RecordedRequest) -> None:
        for key, attribute in (("VoiceUrl", "voice_url"), ("VoiceMethod", "voice_method"),
                               ("VoiceFallbackUrl", "voice_fallback_url"),
                               ("VoiceFallbackMethod", "voice_fallback_method"),
                               ("StatusCallback", "status_callback"),
                               ("StatusCallbackMethod", "status_callback_method"),
                               ("FriendlyName", "friendly_name")):
            value = request.value(key)
            if value is not None:
                setattr(number, attribute, value)

    def _call_json(self, call: FakeCall) -> dict[str, Any]:
        base = f"{API.format(account=self.account_sid)}/Calls/{call.sid}"
        return {
            "sid": call.sid, "account_sid": self.account_sid, "to": call.to,
            "to_formatted": call.to, "from": call.from_, "from_formatted": call.from_,
            "status": call.status, "direction": call.direction, "api_version": "2010-04-01",
            "answered_by": call.answered_by, "parent_call_sid": None, "date_created": _now(),
            "uri": f"{base}.json",
            "subresource_uris": {"recordings": f"{base}/Recordings.json"},
        }

    def _number_json(self, number: FakeNumber) -> dict[str, Any]:
        base = f"{API.format(account=self.account_sid)}/IncomingPhoneNumbers/{number.sid}"
        fields = dataclasses.asdict(number)
        return fields | {"account_sid": self.account_sid, "uri": f"{base}.json",
                         "capabilities": {"voice": True, "sms": True, "mms": False}}


def _raise_undelivered(delivery: Delivery) -> Delivery:
    if delivery.error is not None:
        raise ConnectFailed(delivery.error)
    return delivery


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()  # once: it costs ~50 ms per client


def _rebase(url: str, public_url: str | None, server_url: str | None) -> str:
    """`url` with its `public_url` prefix replaced by `server_url` (else unchanged)."""
    if not public_url or not server_url:
        return url
    prefix = public_url.rstrip("/")
    rest = url[len(prefix):]
    if url.startswith(prefix) and rest[:1] in ("", "/", "?"):
        return server_url.rstrip("/") + rest
    return url


def _friendly(phone_number: str) -> str:
    digits = phone_number.removeprefix("+1")
    if len(digits) != 10 or not digits.isdigit():
        return phone_number
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


def _now() -> str:
    return format_datetime(datetime.now(UTC))
