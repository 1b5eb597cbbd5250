"""A fake OpenAI Chat Completions API over real loopback sockets, for the analytics worker.

Owns `POST /v1/chat/completions` (point `CALLBRIDGE_ANALYSIS_URL` or `AsyncOpenAI(base_url=…)` at
`url`). Each request takes the next scripted `ChatReply` — valid JSON, malformed JSON, an answer
that breaks the schema, an HTTP error, a slow answer — and with none left the fake answers with a
valid object made from the request's own `json_schema`, so custom fields work unscripted. Every
request is recorded. Requests are checked the way the real API checks them: a bearer key
(401), a model, messages, and a strict `json_schema` whose every object lists all its properties
as required and forbids others (400); a breach is recorded in `violations` and answered in
OpenAI's error shape.
Reads no clock: slow replies wait on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from callbridge.server.runner import running
from callbridge.testing.served import Served

MALFORMED = '{"summary": "The caller asked about'  # cut off mid-string, like a length stop


@dataclass(frozen=True, slots=True)
class ChatReply:
    """One scripted answer. `content` None: a valid answer made from the request's schema."""

    content: str | None = None
    status: int = 200
    delay_s: float = 0.0
    refusal: str | None = None

    @classmethod
    def json(cls, value: object, delay_s: float = 0.0) -> ChatReply:
        """The model answers with `value` as JSON (valid or not for the schema: your choice)."""
        return cls(content=json.dumps(value), delay_s=delay_s)

    @classmethod
    def malformed(cls) -> ChatReply:
        """The model's answer is not JSON at all (cut off)."""
        return cls(content=MALFORMED)

    @classmethod
    def error(cls, status: int = 500) -> ChatReply:
        """The API answers `status` with OpenAI's error body."""
        return cls(status=status)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One request the fake received."""

    body: dict[str, Any]
    authorization: str

    @property
    def schema(self) -> dict[str, Any]:
        return dict(self.body.get("response_format", {}).get("json_schema", {}).get("schema", {}))

    @property
    def text(self) -> str:
        """Every message's content, joined: what the model was shown."""
        return "\n".join(str(m.get("content", "")) for m in self.body.get("messages", []))


class FakeOpenAIHTTP(Served):
    """The fake; use it as an async context manager. `url` is the base URL (ends in /v1)."""

    def __init__(self, replies: list[ChatReply] | None = None, *,
                 api_key: str | None = None) -> None:
        self.replies = list(replies or [])
        self.api_key = api_key  # when set, requests must carry `Authorization: Bearer <key>`
        self.requests: list[ChatRequest] = []
        self.violations: list[str] = []
        self._url: str | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._released = asyncio.Event()
        self._arrived = asyncio.Condition()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the fake OpenAI API is not started")
        return f"{self._url}/v1"

    def script(self, *replies: ChatReply) -> None:
        """Queue replies for the next requests, in order."""
        self.replies.extend(replies)

    async def wait_for_requests(self, count: int, within: float = 5.0) -> None:
        """Return once `count` requests have arrived in all."""
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = Starlette(routes=[Route("/v1/chat/completions", self._complete, methods=["POST"])])
        async with contextlib.AsyncExitStack() as stack:
            server = await stack.enter_async_context(running(app, host, port))
            self._url = server.url
            self._stack = stack.pop_all()

    async def stop(self) -> None:
        """Release slow replies at once, then stop listening. Safe twice."""
        self._released.set()
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    async def _complete(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._refuse("the body is not a JSON object")
        recorded = ChatRequest(body, request.headers.get("authorization", ""))
        async with self._arrived:
            self.requests.append(recorded)
            self._arrived.notify_all()
        if self.api_key is not None and recorded.authorization != f"Bearer {self.api_key}":
            return self._refuse("Incorrect API key provided.", 401)
        problem = self._check(recorded)
        if problem is not None:
            return self._refuse(problem)
        reply = self.replies.pop(0) if self.replies else ChatReply()
        if reply.delay_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), reply.delay_s)
        if reply.status != 200:
            return _error(reply.status, "The server had an error while processing your request.",
                          "server_error")
        content = reply.content
        if content is None and reply.refusal is None:
            content = json.dumps(example(recorded.schema))
        return JSONResponse(_completion(len(self.requests), str(body["model"]), content,
                                        reply.refusal))

    def _check(self, request: ChatRequest) -> str | None:
        body = request.body
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "you must provide a model parameter"
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return "messages must be a non-empty array"
        response_format = body.get("response_format") or {}
        json_schema = response_format.get("json_schema") or {}
        if response_format.get("type") != "json_schema" or json_schema.get("strict") is not True:
            return "response_format must be a strict json_schema (the fake expects one)"
        return strict_problem(json_schema.get("schema"), "schema")

    def _refuse(self, message: str, status: int = 400) -> Response:
        self.violations.append(message)
        return _error(status, message, "invalid_request_error")


def strict_problem(schema: object, path: str) -> str | None:
    """What strict Structured Outputs would reject in `schema`, or None."""
    if not isinstance(schema, Mapping):
        return f"Invalid schema: {path} is not an object"
    types = schema.get("type")
    if types == "object" or (isinstance(types, list) and "object" in types):
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            return f"Invalid schema: {path} must set additionalProperties to false"
        if sorted(schema.get("required", [])) != sorted(properties):
            return f"Invalid schema: {path} must list every property in required"
        for name, child in properties.items():
            problem = strict_problem(child, f"{path}.{name}")
            if problem:
                return problem
    if "items" in schema:
        return strict_problem(schema["items"], f"{path}.items")
    for index, option in enumerate(schema.get("anyOf", [])):
        problem = strict_problem(option, f"{path}.anyOf[{index}]")
        if problem:
            return problem
    return None


def example(schema: Mapping[str, Any]) -> Any:
    """A small value that satisfies `schema` (the subset Structured Outputs accepts)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("anyOf"):
        return example(schema["anyOf"][0])
    kind = schema.get("type", "null")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {name: example(child) for name, child in schema.get("properties", {}).items()}
    if kind == "array":
        count = int(schema.get("minItems", 1 if "items" in schema else 0))
        return [example(schema.get("items", {})) for _ in range(count)]
    if kind in ("number", "integer"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 1))
        middle = (low + high) / 2
        return int(middle) if kind == "integer" else middle
    return {"string": "example", "boolean": True}.get(kind)


def _completion(number: int, model: str, content: str | None,
                refusal: str | None) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake{number}", "object": "chat.completion", "created": 1_790_000_000,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": content, "refusal": refusal}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


def _error(status: int, message: str, kind: str) -> Response:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None,
                                   "code": None}}, status_code=status)
