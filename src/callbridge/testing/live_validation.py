"""Strict validation of OpenAI GPT-Live events against the `openai` SDK's `openai.types.live`.

Owns two checks: `validate_live_client_event` for everything a client sends (the SDK's TypedDict
params with unknown keys forbidden and no type coercion — the live server refuses unknown fields
with `unknown_parameter`, and the TypedDicts also enforce the required-but-nullable `delegation_id`
of the `*.append` events) and `validate_live_server_event` for everything a server emits (the
SDK's models behind a real `type` discriminator, no undeclared fields, and the Responses stream
event wrapped in `response.event` checked against `openai.types.responses.ResponseStreamEvent`).
Same recipe and errors as `openai_validation` (the Realtime twin). No I/O.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping
from typing import Annotated, Any, cast

import pydantic
from pydantic import Field, TypeAdapter
from pydantic_core import ErrorDetails

from callbridge.testing.openai_validation import (
    _STRICT,
    ClientEventInvalid,
    ServerEventInvalid,
    _path,
    _type_literal,
    _unknown_fields,
    validate_strictly,
)

__all__ = [
    "ClientEventInvalid",
    "ServerEventInvalid",
    "preload_live",
    "validate_live_client_event",
    "validate_live_server_event",
]


def validate_live_client_event(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one GPT-Live client event; return it as plain data.

    Raises `ClientEventInvalid` (code `unknown_parameter`, `missing_required_parameter`,
    `invalid_type` or `invalid_value`) for an unknown `type`, an unknown key anywhere, a missing
    required key (including a `delegation_id` left out instead of sent as null) or a wrongly typed
    value.
    """
    return validate_strictly(_client_adapters(), payload, _most_telling)


def validate_live_server_event(payload: Mapping[str, Any]) -> object:
    """Validate one GPT-Live server event; return the SDK model instance.

    Raises `ServerEventInvalid` for an unknown `type`, a missing or wrongly typed field, a field
    the SDK does not declare, or a `response.event` whose inner event is not a valid Responses
    streaming event.
    """
    event = _validated(_server_adapter(), payload, "server event")
    undeclared = _unknown_fields(event)
    if undeclared:
        raise ServerEventInvalid(f"{payload.get('type')}: undeclared fields {undeclared}")
    if payload.get("type") == "response.event":
        inner = payload["event"]
        nested = _validated(_responses_adapter(), inner, "response.event: Responses event")
        undeclared = _unknown_fields(nested)
        if undeclared:
            raise ServerEventInvalid(
                f"response.event {inner.get('type')}: undeclared fields {undeclared}"
            )
    return event


def preload_live() -> None:
    """Build the adapters now (about a second, once per process); call it off the event loop."""
    _client_adapters()
    _server_adapter()
    _responses_adapter()


def _most_telling(errors: list[ErrorDetails]) -> ErrorDetails:
    """The error to report from a smart-mode union's many: ignore union members whose `type` tag
    did not match the payload, then prefer an unknown key (what the live server reports first)."""
    mismatched = {
        error["loc"][:-1]
        for error in errors
        if error["type"] == "literal_error" and error["loc"][-1] == "type"
    }

    def plausible(error: ErrorDetails) -> bool:
        loc = error["loc"]
        return not any(
            loc[:index + 1] in mismatched
            for index, part in enumerate(loc)
            if isinstance(part, str) and part[:1].isupper()
        )

    candidates = [error for error in errors if plausible(error)] or errors
    return next((e for e in candidates if e["type"] == "extra_forbidden"), candidates[0])


def _validated(adapter: TypeAdapter[Any], payload: Mapping[str, Any], what: str) -> object:
    try:
        return adapter.validate_python(dict(payload))
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "union_tag_invalid":
            raise ServerEventInvalid(f"unknown {what} type {payload.get('type')!r}") from None
        path = _path(first["loc"][1:])  # loc[0] is the discriminator tag
        raise ServerEventInvalid(f"{payload.get('type')}: {path}: {first['msg']}") from None


@functools.cache
def _client_adapters() -> dict[str, TypeAdapter[Any]]:
    from openai.types.live import ClientEventParam

    # list[...] because pydantic refuses config= on a bare TypedDict.
    return {
        _type_literal(td): TypeAdapter(cast(Any, list.__class_getitem__(td)), config=_STRICT)
        for td in typing.get_args(ClientEventParam)
    }


def _discriminated(union: Any) -> TypeAdapter[Any]:
    # The SDK annotates its unions with its own discriminator marker, which pydantic ignores.
    members = typing.get_args(union)[0]
    return TypeAdapter(cast(Any, Annotated[members, Field(discriminator="type")]))


@functools.cache
def _server_adapter() -> TypeAdapter[Any]:
    from openai.types.live import ServerEvent

    return _discriminated(ServerEvent)


@functools.cache
def _responses_adapter() -> TypeAdapter[Any]:
    from openai.types.responses import ResponseStreamEvent

    return _discriminated(ResponseStreamEvent)
