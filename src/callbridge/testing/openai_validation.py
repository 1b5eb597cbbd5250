"""Strict validation of OpenAI Realtime (GA) events against the `openai` SDK's own types.

Owns two checks used by the test kit: `validate_client_event` for everything a client sends (the
SDK's TypedDict params, with unknown keys forbidden and no type coercion) and
`validate_server_event` for everything a server emits (the SDK's pydantic models behind a real
`type` discriminator, plus a recursive check for undeclared fields). Both raise one documented
error, a `ValueError` subclass whose message names the first problem only.

Recipe from the protocol reference §9.4: the SDK's unions are smart-mode unions (30 errors for one
typo) whose models accept extra keys, so we build one strict adapter per client event type and a
discriminated adapter for server events. Adapters are built on first use and cached. No I/O.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, cast

import pydantic
from pydantic import ConfigDict, Field, TypeAdapter
from pydantic_core import ErrorDetails

# Fields the live API puts on `session.created/updated.session` that the SDK's request-shaped
# session types do not declare.
SERVER_EXTRA_ALLOWED = frozenset({"id", "object", "expires_at"})

_STRICT = ConfigDict(extra="forbid", strict=True)


class ClientEventInvalid(ValueError):
    """A client event does not match the GA client event types.

    `code` and `param` are what the live API would put in its `error` event
    (`unknown_parameter`, `missing_required_parameter`, `invalid_type` or `invalid_value`).
    """

    def __init__(self, message: str, *, code: str = "invalid_value", param: str | None = None):
        super().__init__(message)
        self.code = code
        self.param = param


class ServerEventInvalid(ValueError):
    """A server event does not match the GA server event types."""


def validate_client_event(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one client event; return it as plain data (lazy iterables materialized).

    Raises `ClientEventInvalid` for an unknown `type`, an unknown key anywhere, a missing required
    field or a wrongly typed value (no coercion: `audio_end_ms: 10.5` or `"12"` is rejected).
    """
    return validate_strictly(_client_adapters(), payload)


def validate_strictly(
    adapters: Mapping[str, TypeAdapter[Any]], payload: Mapping[str, Any],
    pick: Callable[[list[ErrorDetails]], ErrorDetails] = lambda errors: errors[0],
) -> dict[str, Any]:
    """Validate one client event against the adapter for its `type` (one API's strict client
    adapters); `pick` chooses which of pydantic's errors to report."""
    event_type = payload.get("type")
    adapter = adapters.get(str(event_type))
    if adapter is None:
        raise ClientEventInvalid(f"unknown client event type {event_type!r}", param="type")
    try:
        validated = _materialize(adapter.validate_python([dict(payload)]), ())
    except pydantic.ValidationError as exc:
        raise _client_error(str(event_type), pick(exc.errors())) from None
    except _LazyInvalid as exc:
        raise _client_error(str(event_type), exc.error) from None
    return typing.cast(dict[str, Any], validated[0])


def validate_server_event(payload: Mapping[str, Any]) -> object:
    """Validate one server event; return the SDK model instance.

    Raises `ServerEventInvalid` for an unknown `type`, a missing or wrongly typed field, or a field
    the SDK does not declare (except `id`, `object` and `expires_at`, see `SERVER_EXTRA_ALLOWED`).
    """
    try:
        event = _server_adapter().validate_python(dict(payload))
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "union_tag_invalid":
            raise ServerEventInvalid(f"unknown server event type {payload.get('type')!r}") from None
        path = _path(first["loc"][1:])  # loc[0] is the discriminator tag
        raise ServerEventInvalid(f"{payload.get('type')}: {path}: {first['msg']}") from None
    undeclared = [
        path
        for path in _unknown_fields(event)
        if path.rsplit(".", 1)[-1] not in SERVER_EXTRA_ALLOWED
    ]
    if undeclared:
        raise ServerEventInvalid(f"{payload.get('type')}: undeclared fields {undeclared}")
    return event


def preload() -> None:
    """Import the SDK types and build the adapters now (about a second, once per process).

    Call it off the event loop (`await asyncio.to_thread(preload)`) before timing-sensitive work.
    """
    _client_adapters()
    _server_adapter()


@functools.cache
def _client_adapters() -> dict[str, TypeAdapter[Any]]:
    from openai.types.realtime import RealtimeClientEventParam
    from openai.types.realtime.response_create_event_with_references_param import (
        ResponseCreateEventWithReferencesParam,
    )

    # list[...] because pydantic refuses config= on a bare TypedDict.
    adapters: dict[str, TypeAdapter[Any]] = {
        _type_literal(td): TypeAdapter(cast(Any, list.__class_getitem__(td)), config=_STRICT)
        for td in typing.get_args(RealtimeClientEventParam)
    }
    # The superset type is the only one that accepts {"type": "item_reference"} inputs.
    adapters["response.create"] = TypeAdapter(
        list[ResponseCreateEventWithReferencesParam], config=_STRICT
    )
    return adapters


@functools.cache
def _server_adapter() -> TypeAdapter[Any]:
    from openai.types.realtime import RealtimeServerEvent

    # The SDK annotates the union with its own discriminator marker, which pydantic ignores.
    members = typing.get_args(RealtimeServerEvent)[0]
    # cast: pydantic's TypeForm typing does not cover a runtime-built Annotated union.
    return TypeAdapter(cast(Any, Annotated[members, Field(discriminator="type")]))


def _type_literal(typed_dict: Any) -> str:
    return str(typing.get_args(typing.get_type_hints(typed_dict)["type"])[0])


class _LazyInvalid(Exception):
    """A lazily validated iterable failed while `_materialize` walked it; `error` has full loc."""

    def __init__(self, error: ErrorDetails):
        super().__init__(error["msg"])
        self.error = error


def _materialize(value: Any, loc: tuple[int | str, ...]) -> Any:
    """Walk the validated value, forcing `Iterable[...]` fields that pydantic validates lazily."""
    if isinstance(value, dict):
        return {key: _materialize(item, (*loc, key)) for key, item in value.items()}
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, list | tuple):
        return [_materialize(item, (*loc, index)) for index, item in enumerate(value)]
    if type(value).__name__ == "ValidatorIterator":
        try:
            items = list(value)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            raise _LazyInvalid({**first, "loc": (*loc, *first["loc"])}) from None
        return [_materialize(item, (*loc, index)) for index, item in enumerate(items)]
    return value


def _client_error(event_type: str, first: ErrorDetails) -> ClientEventInvalid:
    param = _path(first["loc"][1:])  # loc[0] is the index in our one-element list
    kind = first["type"]
    if kind == "extra_forbidden":
        return ClientEventInvalid(
            f"{event_type}: unknown parameter '{param}'", code="unknown_parameter", param=param
        )
    if kind == "missing":
        return ClientEventInvalid(
            f"{event_type}: missing required parameter '{param}'",
            code="missing_required_parameter",
            param=param,
        )
    code = "invalid_type" if kind.endswith("_type") else "invalid_value"
    return ClientEventInvalid(f"{event_type}: {param}: {first['msg']}", code=code, param=param)


def _path(loc: tuple[int | str, ...]) -> str:
    """Dotted path of a pydantic error location, without union member names (CamelCase)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part[:1].isupper():
            out += f".{part}" if out else part
    return out or "$"


def _unknown_fields(obj: Any, path: str = "$") -> list[str]:
    found: list[str] = []
    if isinstance(obj, pydantic.BaseModel):
        found += [f"{path}.{key}" for key in obj.model_extra or {}]
        for name in type(obj).model_fields:
            found += _unknown_fields(getattr(obj, name), f"{path}.{name}")
    elif isinstance(obj, list | tuple):
        for index, item in enumerate(obj):
            found += _unknown_fields(item, f"{path}[{index}]")
    return found
