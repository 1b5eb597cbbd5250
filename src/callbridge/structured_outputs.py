"""The part of JSON Schema that OpenAI's Structured Outputs accepts, checked on both sides.

Owns three things. `check_fragment` refuses a custom field's schema that strict mode would refuse,
so a bad agent file stops start-up instead of failing every call. `strict` closes every object
(all properties required, no others), as strict mode demands. `validate` checks a model's answer
against a schema before it is stored and returns every problem with its path ("$.sentiment: 1.7
is above the maximum 1"). Keywords: type (one or a list), enum, const, anyOf, description, title,
minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf, pattern, format (not checked),
items, minItems, maxItems, properties, required, additionalProperties. No I/O.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from typing import Any

TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
KEYWORDS = frozenset({
    "type", "enum", "const", "anyOf", "description", "title", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "pattern", "format", "items",
    "minItems", "maxItems", "properties", "required", "additionalProperties",
})
_NUMERIC = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def check_fragment(fragment: object, path: str) -> None:
    """Raise ValueError (naming `path`) unless `fragment` is a schema this module supports."""
    if not isinstance(fragment, Mapping):
        raise ValueError(f"{path}: a schema must be a table, like {{ type = \"string\" }}")
    unknown = sorted(set(fragment) - KEYWORDS)
    if unknown:
        raise ValueError(f"{path}: unsupported keyword(s) {', '.join(unknown)}")
    if not {"type", "enum", "const", "anyOf"} & fragment.keys():
        raise ValueError(f"{path}: needs a type")
    types = _types(fragment)
    if not types <= TYPES:
        raise ValueError(f"{path}: unknown type(s) {', '.join(sorted(types - TYPES))}")
    for key in _NUMERIC:
        if key in fragment and not _is_number(fragment[key]):
            raise ValueError(f"{path}: {key} must be a number")
    if "pattern" in fragment:
        try:
            re.compile(str(fragment["pattern"]))
        except re.error as exc:
            raise ValueError(f"{path}: pattern is not a regular expression: {exc}") from None
    _check_children(fragment, path)


def _check_children(fragment: Mapping[str, Any], path: str) -> None:
    if "enum" in fragment and not isinstance(fragment["enum"], list | tuple):
        raise ValueError(f"{path}: enum must be a list")
    if "items" in fragment:
        check_fragment(fragment["items"], f"{path}.items")
    properties = fragment.get("properties", {})
    if not isinstance(properties, Mapping):
        raise ValueError(f"{path}: properties must be a table")
    for name, child in properties.items():
        check_fragment(child, f"{path}.{name}")
    options = fragment.get("anyOf", [])
    if not isinstance(options, list | tuple):
        raise ValueError(f"{path}: anyOf must be a list")
    for index, child in enumerate(options):
        check_fragment(child, f"{path}.anyOf[{index}]")


def strict(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `schema` in which every object lists all its properties as required and
    allows no others (what strict Structured Outputs requires)."""
    closed = copy.deepcopy(dict(schema))
    if "properties" in closed or "object" in _types(closed):
        properties = {k: strict(v) for k, v in closed.get("properties", {}).items()}
        closed.update(properties=properties, required=list(properties),
                      additionalProperties=False)
    if "items" in closed:
        closed["items"] = strict(closed["items"])
    if "anyOf" in closed:
        closed["anyOf"] = [strict(option) for option in closed["anyOf"]]
    return closed


def validate(value: Any, schema: Mapping[str, Any], path: str = "$") -> list[str]:
    """Every way `value` breaks `schema`, each as "path: problem"; empty when it conforms."""
    if "anyOf" in schema:
        if all(validate(value, option, path) for option in schema["anyOf"]):
            return [f"{path}: matches none of the allowed shapes"]
        return []
    types = _types(schema)
    if types and not any(_has_type(value, t) for t in types):
        return [f"{path}: expected {' or '.join(sorted(types))}, got {_json_type(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} is not one of {list(schema['enum'])!r}"]
    if "const" in schema and value != schema["const"]:
        return [f"{path}: must be {schema['const']!r}"]
    if _is_number(value):
        return _number_errors(value, schema, path)
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        return [f"{path}: does not match the pattern {schema['pattern']!r}"]
    if isinstance(value, list):
        return _array_errors(value, schema, path)
    if isinstance(value, dict):
        return _object_errors(value, schema, path)
    return []


def _number_errors(value: float, schema: Mapping[str, Any], path: str) -> list[str]:
    errors = []
    if not math.isfinite(value):
        errors.append(f"{path}: must be a finite number")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: {value} is below the minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{path}: {value} is above the maximum {schema['maximum']}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        errors.append(f"{path}: {value} must be above {schema['exclusiveMinimum']}")
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        errors.append(f"{path}: {value} must be below {schema['exclusiveMaximum']}")
    step = schema.get("multipleOf")
    if step and not math.isclose(value / step, round(value / step), abs_tol=1e-9):
        errors.append(f"{path}: {value} is not a multiple of {step}")
    return errors


def _array_errors(value: list[Any], schema: Mapping[str, Any], path: str) -> list[str]:
    errors = []
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(f"{path}: fewer than {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(f"{path}: more than {schema['maxItems']} items")
    if "items" in schema:
        for index, item in enumerate(value):
            errors += validate(item, schema["items"], f"{path}[{index}]")
    return errors


def _object_errors(value: dict[str, Any], schema: Mapping[str, Any], path: str) -> list[str]:
    properties: Mapping[str, Any] = schema.get("properties", {})
    errors = [f"{path}: missing {name!r}" for name in schema.get("required", ())
              if name not in value]
    if schema.get("additionalProperties") is False:
        errors += [f"{path}: unexpected {name!r}" for name in value if name not in properties]
    for name, child in properties.items():
        if name in value:
            errors += validate(value[name], child, f"{path}.{name}")
    return errors


def _types(schema: Mapping[str, Any]) -> set[str]:
    declared = schema.get("type")
    if declared is None:
        return set()
    return {str(t) for t in declared} if isinstance(declared, list | tuple) else {str(declared)}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _has_type(value: object, name: str) -> bool:
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    checks: dict[str, Any] = {"string": str, "boolean": bool, "object": dict, "array": list,
                              "null": type(None)}
    if name == "number":
        return _is_number(value)
    return isinstance(value, checks[name])


def _json_type(value: object) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _has_type(value, name):
            return name
    return type(value).__name__
