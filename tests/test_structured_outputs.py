"""The JSON Schema subset: agent-file fragments checked, objects closed, answers validated."""

from __future__ import annotations

import pytest

from callbridge.structured_outputs import check_fragment, strict, validate

SCHEMA = strict({"type": "object", "properties": {
    "score": {"type": "integer", "minimum": 0, "maximum": 100},
    "mood": {"type": "number", "minimum": -1, "maximum": 1},
    "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "maxItems": 2},
    "note": {"type": ["string", "null"]},
    "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
}})
GOOD = {"score": 50, "mood": -0.25, "tags": ["a"], "note": None, "code": "ABC"}


def test_strict_closes_every_object_and_requires_every_property() -> None:
    """Strict mode's rule is applied all the way down."""
    closed = strict({"type": "object", "properties": {
        "inner": {"type": "object", "properties": {"x": {"type": "string"}}}}})
    assert closed == {"type": "object", "additionalProperties": False, "required": ["inner"],
                      "properties": {"inner": {
                          "type": "object", "additionalProperties": False, "required": ["x"],
                          "properties": {"x": {"type": "string"}}}}}


def test_a_conforming_answer_has_no_problems() -> None:
    """Integers written as 50.0, nullable fields and enums pass."""
    assert validate(GOOD, SCHEMA) == []
    assert validate({**GOOD, "score": 50.0}, SCHEMA) == []


@pytest.mark.parametrize(("change", "problem"), [
    ({"score": 101}, "$.score: 101 is above the maximum 100"),
    ({"score": 5.5}, "$.score: expected integer, got number"),
    ({"score": True}, "$.score: expected integer, got boolean"),
    ({"mood": -1.5}, "$.mood: -1.5 is below the minimum -1"),
    ({"mood": "happy"}, "$.mood: expected number, got string"),
    ({"tags": ["c"]}, "$.tags[0]: 'c' is not one of ['a', 'b']"),
    ({"tags": ["a", "b", "a"]}, "$.tags: more than 2 items"),
    ({"code": "abc"}, "$.code: does not match the pattern '^[A-Z]{3}$'"),
    ({"extra": 1}, "$: unexpected 'extra'"),
])
def test_each_kind_of_bad_value_is_named_with_its_path(change: dict[str, object],
                                                       problem: str) -> None:
    """Type, range, enum, length, pattern and unknown keys are all caught."""
    assert validate({**GOOD, **change}, SCHEMA) == [problem]


def test_a_missing_field_is_a_problem() -> None:
    """Every property of a strict object is required."""
    answer = dict(GOOD)
    del answer["note"]
    assert validate(answer, SCHEMA) == ["$: missing 'note'"]


@pytest.mark.parametrize(("fragment", "message"), [
    ("string", "a schema must be a table"),
    ({"description": "no type"}, "needs a type"),
    ({"type": "text"}, "unknown type(s) text"),
    ({"type": "string", "oneOf": []}, "unsupported keyword(s) oneOf"),
    ({"type": "number", "minimum": "0"}, "minimum must be a number"),
    ({"type": "string", "pattern": "("}, "pattern is not a regular expression"),
    ({"type": "array", "items": {"type": "string", "$ref": "#/x"}}, "f.items: unsupported"),
])
def test_fragments_strict_mode_would_refuse_are_refused_early(fragment: object,
                                                              message: str) -> None:
    """An agent file's custom field fails at start-up with what is wrong and where."""
    with pytest.raises(ValueError, match=r"^f") as info:
        check_fragment(fragment, "f")
    assert message in str(info.value)
