"""Python annotations as shapes: the small type language tool arguments are written in.

Owns the one mapping from a resolved annotation to a `Shape`, the tree both the JSON schema
(`schema.py`) and argument checking (`arguments.py`) are derived from, so the two cannot disagree.
Supported: str, int, float, bool, `Literal[...]`, `Enum` subclasses, `X | None`, `list[X]`,
`tuple[X, ...]`, `set[X]`, `frozenset[X]`, `dict[str, X]`, TypedDicts, dataclasses and
`Annotated[X, "description"]`. Everything else raises `UnsupportedType`, whose message the caller
prefixes with the function and parameter. No I/O. No clock.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, Required, Union

JsonScalar = str | int | float | bool


class Missing(enum.Enum):
    """The marker for "no value": a parameter without a default, a field left absent."""

    MISSING = "missing"


MISSING = Missing.MISSING

SUPPORTED = (
    "use str, int, float, bool, Literal[...], an Enum, X | None, list[X], tuple[X, ...], set[X], "
    "dict[str, X], a TypedDict or a dataclass"
)


class UnsupportedType(Exception):
    """An annotation has no JSON counterpart; the message says which and what to use instead."""


@dataclass(frozen=True, slots=True)
class Scalar:
    """str, int, float or bool."""

    type: type


@dataclass(frozen=True, slots=True)
class Choice:
    """One of fixed JSON values: a `Literal`, or an `Enum` whose members are returned."""

    values: tuple[JsonScalar, ...]
    enum: type[enum.Enum] | None = None


@dataclass(frozen=True, slots=True)
class Array:
    """A JSON array arriving as `container` (list, tuple, set or frozenset)."""

    items: Shape
    container: type


@dataclass(frozen=True, slots=True)
class Table:
    """`dict[str, X]`: a JSON object with any keys."""

    values: Shape


@dataclass(frozen=True, slots=True)
class Field:
    """One named value of a record or a tool's signature.

    `required` is what the model is told. `fill` is passed when the model leaves the value out
    (None for `X | None` without a default); MISSING leaves it to Python's own default.
    """

    name: str
    shape: Shape
    required: bool
    default: Any = MISSING
    fill: Any = MISSING
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """A TypedDict (arrives as a dict) or a dataclass (arrives as an instance)."""

    cls: type
    fields: tuple[Field, ...]
    is_dataclass: bool


@dataclass(frozen=True, slots=True)
class Nullable:
    """`X | None`: null is accepted."""

    inner: Shape


@dataclass(frozen=True, slots=True)
class Described:
    """`Annotated[X, "description"]`."""

    inner: Shape
    description: str


Shape = Scalar | Choice | Array | Table | Record | Nullable | Described


def shape_of(annotation: Any, seen: tuple[type, ...] = ()) -> Shape:
    """The shape of a resolved annotation; `seen` holds the records being built (recursion)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _annotated(annotation, seen)
    if origin in (Required, NotRequired):  # TypedDict keys; `_record` reads what they mean
        return shape_of(typing.get_args(annotation)[0], seen)
    if origin in (Union, types.UnionType):
        return _union(annotation, seen)
    if origin is Literal:
        return _literal(annotation)
    if origin in (list, tuple, set, frozenset):
        return _array(annotation, origin, seen)
    if origin is dict:
        return _table(annotation, seen)
    if annotation in (str, int, float, bool):
        return Scalar(annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum(annotation)
    if _is_record(annotation):
        return _record(annotation, seen)
    raise UnsupportedType(f"{type_name(annotation)} is not supported; {SUPPORTED}")


def make_field(
    name: str,
    shape: Shape,
    default: Any = MISSING,
    *,
    may_be_absent: bool = False,
    fill_default: bool = False,
    description: str | None = None,
) -> Field:
    """A field from what Python knows: its default, and whether it may be absent without one.

    `x: int = None` is read as `x: int | None = None`; `X | None` without a default is optional
    and filled with None. `fill_default` passes the default explicitly (positional-only params).
    """
    if default is None and not is_nullable(shape):
        shape = Nullable(shape)
    fill: Any = MISSING
    if default is MISSING and not may_be_absent and is_nullable(shape):
        fill = None
    elif fill_default:
        fill = default
    required = default is MISSING and not may_be_absent and fill is MISSING
    return Field(name, shape, required, default, fill, description)


def is_nullable(shape: Shape) -> bool:
    while isinstance(shape, Described):
        shape = shape.inner
    return isinstance(shape, Nullable)


def type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__qualname__
    return repr(annotation).replace("typing.", "").replace("collections.abc.", "")


def _annotated(annotation: Any, seen: tuple[type, ...]) -> Shape:
    inner = shape_of(annotation.__origin__, seen)
    text = next((m for m in annotation.__metadata__ if isinstance(m, str)), None)
    return Described(inner, text) if text else inner


def _union(annotation: Any, seen: tuple[type, ...]) -> Shape:
    members = typing.get_args(annotation)
    others = [member for member in members if member is not type(None)]
    if len(others) != 1 or len(others) == len(members):
        raise UnsupportedType(
            f"{type_name(annotation)} is not supported; the only union allowed is X | None"
        )
    return Nullable(shape_of(others[0], seen))


def _literal(annotation: Any) -> Shape:
    values = typing.get_args(annotation)
    allowed = tuple(value for value in values if value is not None)
    if not all(isinstance(value, str | int) for value in allowed):  # bool is an int
        raise UnsupportedType(f"{type_name(annotation)}: Literal values must be str, int or bool")
    choice = Choice(allowed)
    return Nullable(choice) if len(allowed) < len(values) else choice


def _enum(cls: type[enum.Enum]) -> Choice:
    values = tuple(member.value for member in cls)
    if not values or not all(isinstance(value, JsonScalar) for value in values):
        raise UnsupportedType(f"enum {cls.__qualname__}: member values must be str, int or float")
    return Choice(values, cls)


def _array(annotation: Any, origin: type, seen: tuple[type, ...]) -> Array:
    args = typing.get_args(annotation)
    if origin is tuple:
        if len(args) != 2 or args[1] is not Ellipsis:
            raise UnsupportedType(
                f"{type_name(annotation)} is not supported; use tuple[X, ...] or list[X]"
            )
        args = args[:1]
    items = shape_of(args[0], seen)
    if origin in (set, frozenset) and not _hashable(items):
        raise UnsupportedType(
            f"{type_name(annotation)}: set items must be str, int, float, "
            "bool, a Literal or an Enum"
        )
    return Array(items, origin)


def _table(annotation: Any, seen: tuple[type, ...]) -> Table:
    key, value = typing.get_args(annotation)
    if key is not str:
        raise UnsupportedType(
            f"{type_name(annotation)}: JSON object keys are strings; use dict[str, X]"
        )
    return Table(shape_of(value, seen))


def _hashable(shape: Shape) -> bool:
    while isinstance(shape, Described):
        shape = shape.inner
    return isinstance(shape, Scalar | Choice)


def _is_record(annotation: Any) -> bool:
    if not isinstance(annotation, type):
        return False
    if dataclasses.is_dataclass(annotation):
        return True
    # typing.is_typeddict misses typing_extensions.TypedDict; these attributes mark both.
    return issubclass(annotation, dict) and hasattr(annotation, "__required_keys__")


def _record(cls: type, seen: tuple[type, ...]) -> Record:
    if cls in seen:
        raise UnsupportedType(
            f"{cls.__qualname__} contains itself; recursive types are not supported"
        )
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:  # NameError for an unresolvable forward reference, mostly
        raise UnsupportedType(
            f"cannot resolve the annotations of {cls.__qualname__}: {type(exc).__name__}: {exc}"
        ) from exc
    inner = (*seen, cls)
    if dataclasses.is_dataclass(cls):
        fields = tuple(
            _dataclass_field(f, hints[f.name], inner, cls)
            for f in dataclasses.fields(cls)
            if f.init
        )
        return Record(cls, fields, is_dataclass=True)
    fields = tuple(
        make_field(
            key,
            _field_shape(cls, key, hint, inner),
            may_be_absent=not _typeddict_requires(cls, key, hint),
        )
        for key, hint in hints.items()
    )
    return Record(cls, fields, is_dataclass=False)


def _dataclass_field(
    field: dataclasses.Field[Any], hint: Any, seen: tuple[type, ...], cls: type
) -> Field:
    shape = _field_shape(cls, field.name, hint, seen)
    has_factory = field.default_factory is not dataclasses.MISSING
    default = MISSING if field.default is dataclasses.MISSING else field.default
    return make_field(field.name, shape, default, may_be_absent=has_factory)


def _field_shape(cls: type, name: str, hint: Any, seen: tuple[type, ...]) -> Shape:
    try:
        return shape_of(hint, seen)
    except UnsupportedType as exc:
        raise UnsupportedType(f"field {cls.__qualname__}.{name}: {exc}") from None


def _typeddict_requires(cls: type, key: str, hint: Any) -> bool:
    """Whether a TypedDict key must be present.

    `__required_keys__` misses `NotRequired[...]` written as a string (`from __future__ import
    annotations` on Python 3.11), so a marker in the resolved hint decides first.
    """
    while typing.get_origin(hint) is Annotated:
        hint = hint.__origin__
    if typing.get_origin(hint) is NotRequired:
        return False
    return typing.get_origin(hint) is Required or key in getattr(cls, "__required_keys__", ())
