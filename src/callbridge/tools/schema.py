"""A function's signature as a tool's JSON schema.

Owns reading a function (its parameters, type hints and docstring) into a `Signature`, refusing
what JSON cannot carry with a `ToolDefinitionError` that names the function and the parameter,
and rendering shapes as JSON schema. A parameter annotated `ToolContext` is the call's context,
not an argument, and never appears in the schema. No I/O. No clock.
"""

from __future__ import annotations

import contextlib
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callbridge.tools.context import ToolContext
from callbridge.tools.docstrings import parse_docstring
from callbridge.tools.errors import ToolDefinitionError
from callbridge.tools.output import to_json_value
from callbridge.tools.shapes import (
    MISSING,
    SUPPORTED,
    Array,
    Choice,
    Described,
    Field,
    Nullable,
    Record,
    Scalar,
    Shape,
    Table,
    UnsupportedType,
    make_field,
    shape_of,
)

_SCALAR_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


@dataclass(frozen=True, slots=True)
class Signature:
    """What a tool function takes, in signature order.

    `fields` are the arguments the model fills in; `context` names the parameter that receives
    the `ToolContext`, if any; `positional` lists the positional-only parameters, which must be
    passed by position (the context parameter among them when it is one); `summary` is the
    docstring's first paragraph.
    """

    fields: tuple[Field, ...]
    context: str | None
    positional: tuple[str, ...]
    summary: str


def read_signature(fn: Callable[..., Any]) -> Signature:
    """Read a function into a `Signature`, or raise `ToolDefinitionError`."""
    where = function_name(fn)
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError) as exc:
        raise ToolDefinitionError(f"{where}: cannot read its signature: {exc}") from exc
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # NameError for an unresolvable forward reference, mostly
        raise ToolDefinitionError(
            f"{where}: cannot resolve its type hints: {type(exc).__name__}: {exc}"
        ) from exc
    docs = parse_docstring(inspect.getdoc(fn))
    fields: list[Field] = []
    context: str | None = None
    for param in parameters:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"{where}: parameter {param.name!r}: *args and **kwargs are not supported; "
                "a tool takes named arguments only"
            )
        if param.name not in hints:
            raise ToolDefinitionError(
                f"{where}: parameter {param.name!r} has no type annotation; {SUPPORTED}"
            )
        if hints[param.name] is ToolContext:
            if context is not None:
                raise ToolDefinitionError(f"{where}: two parameters ask for the ToolContext")
            context = param.name
            continue
        fields.append(_read_parameter(where, param, hints[param.name], docs.params))
    positional = tuple(p.name for p in parameters if p.kind is p.POSITIONAL_ONLY)
    return Signature(tuple(fields), context, positional, docs.summary)


def parameters_schema(signature: Signature) -> dict[str, Any]:
    """The `parameters` of a tool declaration: a closed object of the model-filled arguments."""
    return object_schema(signature.fields)


def object_schema(fields: tuple[Field, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {field.name: _property(field) for field in fields},
        "required": [field.name for field in fields if field.required],
        "additionalProperties": False,
    }


def json_schema(shape: Shape) -> dict[str, Any]:
    """The JSON schema of one shape."""
    match shape:
        case Scalar(type=scalar):
            return {"type": _SCALAR_TYPES[scalar]}
        case Choice(values=values):
            return _choice(values)
        case Array(items=items):
            return {"type": "array", "items": json_schema(items)}
        case Table(values=values):
            return {"type": "object", "additionalProperties": json_schema(values)}
        case Record(fields=fields):
            return object_schema(fields)
        case Nullable(inner=inner):
            return _nullable(json_schema(inner))
        case Described(inner=inner, description=description):
            return {**json_schema(inner), "description": description}
    raise AssertionError(f"unknown shape {shape!r}")  # pragma: no cover


def function_name(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or repr(fn)
    return f"tool function {module}.{name}" if module else f"tool function {name}"


def _read_parameter(
    where: str, param: inspect.Parameter, hint: Any, descriptions: dict[str, str]
) -> Field:
    try:
        shape = shape_of(hint)
    except UnsupportedType as exc:
        raise ToolDefinitionError(f"{where}: parameter {param.name!r}: {exc}") from None
    default = MISSING if param.default is param.empty else param.default
    return make_field(
        param.name,
        shape,
        default,
        fill_default=param.kind is param.POSITIONAL_ONLY,
        description=descriptions.get(param.name),
    )


def _property(field: Field) -> dict[str, Any]:
    schema = json_schema(field.shape)
    if field.description and "description" not in schema:  # Annotated wins over the docstring
        schema["description"] = field.description
    if field.default is not MISSING:
        # A default JSON cannot show is still applied; the model is just not told.
        with contextlib.suppress(TypeError, ValueError):
            schema["default"] = to_json_value(field.default)
    return schema


def _choice(values: tuple[Any, ...]) -> dict[str, Any]:
    kinds = {_json_kind(value) for value in values}
    if kinds == {"integer", "number"}:
        kinds = {"number"}
    schema: dict[str, Any] = {"type": kinds.pop()} if len(kinds) == 1 else {}
    schema["enum"] = list(values)
    return schema


def _json_kind(value: Any) -> str:
    for scalar in (bool, int, float, str):  # bool before int: True is an int
        if isinstance(value, scalar):
            return _SCALAR_TYPES[scalar]
    raise AssertionError(f"not a JSON scalar: {value!r}")  # pragma: no cover


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    schema = dict(schema)
    if isinstance(schema.get("type"), str):
        schema["type"] = [schema["type"], "null"]
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    return schema
