"""The model's `arguments` JSON, checked against a tool's signature and turned into call arguments.

Owns every check made before a tool is called: the text is a JSON object, every key is a
parameter, every required parameter is there, every value has its parameter's shape. Coercions
are only those JSON forces: an integer for a float, an integral number (3.0) for an int, an array
for a tuple or set, an enum's value for its member, an object for a dataclass or TypedDict.
Problems are phrased for the model, which reads them and can try again; they name the argument
and do not quote its value (values may be personal). No I/O. No clock.
"""

from __future__ import annotations

import json
from typing import Any

from callbridge.tools.context import ToolContext
from callbridge.tools.schema import Signature
from callbridge.tools.shapes import (
    MISSING,
    Array,
    Choice,
    Described,
    Field,
    Nullable,
    Record,
    Scalar,
    Shape,
    Table,
)

_EXPECTED = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
_KINDS = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "an object"}
_MAX_REASON = 200


class ArgumentsInvalid(Exception):
    """The arguments do not fit the signature; `problems` holds one clause per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class _Invalid(Exception):
    """One value does not fit its shape (internal: collected into `ArgumentsInvalid`)."""


def bind_arguments(
    signature: Signature, arguments_json: str, context: ToolContext
) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments for the call, or `ArgumentsInvalid`."""
    raw = _parse(arguments_json)
    fields = {field.name: field for field in signature.fields}
    problems = _unknown(raw, fields)
    values: dict[str, Any] = {}
    for field in signature.fields:
        try:
            value = _field_value(raw, field, field.name)
        except _Invalid as exc:
            problems.append(str(exc))
            continue
        if value is not MISSING:
            values[field.name] = value
    if problems:
        raise ArgumentsInvalid(problems)
    if signature.context is not None:
        values[signature.context] = context
    args = [values.pop(name) for name in signature.positional]
    return args, values


def convert(value: Any, shape: Shape, path: str) -> Any:
    """`value` (parsed JSON) as the Python value `shape` describes; `path` names it in problems."""
    match shape:
        case Described(inner=inner):
            return convert(value, inner, path)
        case Nullable(inner=inner):
            return None if value is None else convert(value, inner, path)
        case Scalar(type=scalar):
            return _scalar(value, scalar, path)
        case Choice():
            return _choice(value, shape, path)
        case Array(items=items, container=container):
            if not isinstance(value, list):
                raise _Invalid(f"the argument {path!r} must be a list, not {_kind(value)}")
            return container(convert(item, items, f"{path}[{i}]") for i, item in enumerate(value))
        case Table(values=values):
            mapping = _object(value, path)
            return {key: convert(item, values, f"{path}.{key}") for key, item in mapping.items()}
        case Record():
            return _record(value, shape, path)
    raise AssertionError(f"unknown shape {shape!r}")  # pragma: no cover


def _parse(arguments_json: str) -> dict[str, Any]:
    if not arguments_json.strip():
        return {}  # a tool without parameters may be called with no arguments at all
    try:
        raw = json.loads(arguments_json, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ArgumentsInvalid([f"the arguments are not valid JSON ({_short(exc)})"]) from None
    if not isinstance(raw, dict):
        raise ArgumentsInvalid([f"the arguments must be a JSON object, not {_kind(raw)}"])
    return raw


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unknown(raw: dict[str, Any], fields: dict[str, Field]) -> list[str]:
    unknown = [key for key in raw if key not in fields]
    if not unknown:
        return []
    takes = f"it takes {_names(fields)}" if fields else "it takes no arguments"
    noun = "argument" if len(unknown) == 1 else "arguments"
    return [f"unknown {noun} {_names(unknown)} ({takes})"]


def _field_value(raw: dict[str, Any], field: Field, path: str) -> Any:
    """The converted value of one field, its fill value when absent, or MISSING to leave it out."""
    if field.name in raw:
        return convert(raw[field.name], field.shape, path)
    if field.required:
        raise _Invalid(f"the argument {path!r} is required")
    return field.fill


def _scalar(value: Any, scalar: type, path: str) -> Any:
    if scalar is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if scalar is int and isinstance(value, float) and value.is_integer():
        return int(value)  # JSON Schema counts 3.0 as an integer
    if type(value) is scalar:
        return value
    raise _Invalid(f"the argument {path!r} must be {_EXPECTED[scalar]}, not {_kind(value)}")


def _choice(value: Any, choice: Choice, path: str) -> Any:
    for allowed in choice.values:
        if isinstance(value, bool) == isinstance(allowed, bool) and value == allowed:
            return allowed if choice.enum is None else choice.enum(allowed)
    options = ", ".join(json.dumps(allowed) for allowed in choice.values)
    raise _Invalid(f"the argument {path!r} must be one of {options}")


def _record(value: Any, record: Record, path: str) -> Any:
    mapping = _object(value, path)
    fields = {field.name: field for field in record.fields}
    unknown = [key for key in mapping if key not in fields]
    if unknown:
        raise _Invalid(
            f"the argument {path!r} has no field {_names(unknown)} "
            f"(its fields are {_names(fields)})"
        )
    values: dict[str, Any] = {}
    for field in record.fields:
        item = _field_value(mapping, field, f"{path}.{field.name}")
        if item is not MISSING:
            values[field.name] = item
    if not record.is_dataclass:
        return values
    try:
        return record.cls(**values)
    except Exception as exc:  # the dataclass's own checks (__post_init__) refused the values
        raise _Invalid(f"the argument {path!r} was refused: {_short(exc)}") from None


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f"the argument {path!r} must be an object, not {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return _KINDS.get(type(value), type(value).__name__)


def _names(names: Any) -> str:
    return ", ".join(repr(name) for name in names)


def _short(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"
