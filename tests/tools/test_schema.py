"""Tools made from functions: names, descriptions and the JSON schema of their arguments."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NotRequired, Required, TypedDict

import pytest

from callbridge.errors import CallbridgeError, ConfigError
from callbridge.testing.openai_validation import validate_client_event
from callbridge.tools import (
    DEFAULT_TIMEOUT,
    Tool,
    ToolContext,
    ToolDefinitionError,
    ToolRegistry,
    as_tool,
    tool,
)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(TypedDict):
    street: str
    city: Annotated[str, "The city, spelled out."]
    flat: NotRequired[int]


class Options(TypedDict, total=False):
    loud: bool
    name: Required[Annotated[str, "Who is calling."]]
    note: Annotated[NotRequired[str], "Why they call."]


@dataclass
class Item:
    sku: str
    quantity: int = 1
    notes: list[str] = field(default_factory=list)


@dataclass
class Node:
    children: list[Node]


def tool_with(annotation: object) -> Tool:
    """A tool taking one parameter `x` annotated `annotation`."""

    def one(x: Any) -> Any:
        return x

    one.__annotations__ = {"x": annotation}
    return Tool.from_function(one)


def parameter_schema(annotation: object) -> dict[str, Any]:
    """The schema property of a single parameter `x` annotated `annotation`."""
    schema: dict[str, Any] = tool_with(annotation).parameters["properties"]["x"]
    return schema


RECORD_SCHEMAS: dict[str, dict[str, Any]] = {
    "address": {
        "type": "object",
        "properties": {
            "street": {"type": "string"},
            "city": {"type": "string", "description": "The city, spelled out."},
            "flat": {"type": "integer"},
        },
        "required": ["street", "city"],
        "additionalProperties": False,
    },
    "options": {
        "type": "object",
        "properties": {
            "loud": {"type": "boolean"},
            "name": {"type": "string", "description": "Who is calling."},
            "note": {"type": "string", "description": "Why they call."},
        },
        "required": ["name"],
        "additionalProperties": False,
    },
    "item": {
        "type": "object",
        "properties": {
            "sku": {"type": "string"},
            "quantity": {"type": "integer", "default": 1},
            "notes": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["sku"],
        "additionalProperties": False,
    },
}

ANNOTATION_SCHEMAS: list[tuple[str, object, dict[str, Any]]] = [
    ("str", str, {"type": "string"}),
    ("int", int, {"type": "integer"}),
    ("float", float, {"type": "number"}),
    ("bool", bool, {"type": "boolean"}),
    ("optional", int | None, {"type": ["integer", "null"]}),
    ("literal", Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
    ("int literal", Literal[1, 2], {"type": "integer", "enum": [1, 2]}),
    ("mixed literal", Literal["a", 1], {"enum": ["a", 1]}),
    (
        "optional literal",
        Literal["a", "b"] | None,
        {"type": ["string", "null"], "enum": ["a", "b", None]},
    ),
    ("literal with None", Literal["a", None], {"type": ["string", "null"], "enum": ["a", None]}),
    ("str enum", Color, {"type": "string", "enum": ["red", "green"]}),
    ("int enum", Level, {"type": "integer", "enum": [1, 2]}),
    ("list", list[str], {"type": "array", "items": {"type": "string"}}),
    ("tuple", tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
    ("set", set[Color], {"type": "array", "items": {"type": "string", "enum": ["red", "green"]}}),
    ("frozenset", frozenset[str], {"type": "array", "items": {"type": "string"}}),
    ("dict", dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
    (
        "nested containers",
        dict[str, list[int | None]],
        {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": ["integer", "null"]}},
        },
    ),
    ("typeddict", Address, RECORD_SCHEMAS["address"]),
    ("partial typeddict", Options, RECORD_SCHEMAS["options"]),
    ("dataclass", Item, RECORD_SCHEMAS["item"]),
    ("list of dataclasses", list[Item], {"type": "array", "items": RECORD_SCHEMAS["item"]}),
    ("optional dataclass", Item | None, {**RECORD_SCHEMAS["item"], "type": ["object", "null"]}),
    ("annotated", Annotated[int, "How many."], {"type": "integer", "description": "How many."}),
    (
        "annotated optional",
        Annotated[int | None, "How many."],
        {"type": ["integer", "null"], "description": "How many."},
    ),
    (
        "annotated items",
        list[Annotated[str, "A name."]],
        {"type": "array", "items": {"type": "string", "description": "A name."}},
    ),
    ("annotated non-str metadata", Annotated[str, 42], {"type": "string"}),
]


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [(annotation, expected) for _, annotation, expected in ANNOTATION_SCHEMAS],
    ids=[case for case, _, _ in ANNOTATION_SCHEMAS],
)
def test_each_supported_annotation_has_its_json_schema(
    annotation: object, expected: dict[str, Any]
) -> None:
    """Every supported annotation maps to one exact JSON schema."""
    assert parameter_schema(annotation) == expected


async def lookup_order(order_id: str, include_items: bool = False) -> dict[str, Any]:
    """Look up an order by its number.

    Args:
        order_id: The order number the caller reads out, e.g. "A-1234".
        include_items: Whether to list the items in the order.

    Returns:
        The order, as the shop's API gives it.
    """
    return {}


def test_the_example_tool_is_declared_with_its_docstring() -> None:
    """The docstring's first paragraph describes the tool; `Args:` describes each parameter."""
    assert Tool.from_function(lookup_order).definition() == {
        "type": "function",
        "name": "lookup_order",
        "description": "Look up an order by its number.",
        "parameters": {
            "type": "object",
            "properties": {
                "order_id": {
                    "type": "string",
                    "description": 'The order number the caller reads out, e.g. "A-1234".',
                },
                "include_items": {
                    "type": "boolean",
                    "description": "Whether to list the items in the order.",
                    "default": False,
                },
            },
            "required": ["order_id"],
            "additionalProperties": False,
        },
    }


def test_a_plain_function_becomes_a_tool_with_the_defaults() -> None:
    """Undecorated: named after the function, 10 s timeout, no filler, sync run in a thread."""
    made = as_tool(lookup_order)
    assert (made.name, made.timeout, made.filler, made.fn, made.is_async) == (
        "lookup_order",
        DEFAULT_TIMEOUT,
        None,
        lookup_order,
        True,
    )
    assert DEFAULT_TIMEOUT == 10.0


def test_the_decorator_keeps_the_function_and_attaches_its_tool() -> None:
    """`@tool(...)` returns the function itself, still callable, carrying its settings."""

    @tool(name="find-order", description="Find an order.", timeout=None, filler="One moment.")
    def find(order_id: str) -> str:
        """Unused docstring summary."""
        return order_id.upper()

    made = as_tool(find)
    assert find("a-1") == "A-1"
    assert (made.name, made.description, made.timeout, made.filler, made.fn, made.is_async) == (
        "find-order",
        "Find an order.",
        None,
        "One moment.",
        find,
        False,
    )


def test_the_bare_decorator_makes_a_tool_with_the_defaults() -> None:
    """`@tool` without parentheses is the same as a plain function."""

    @tool
    def ping() -> str:
        """Check the line."""
        return "pong"

    made = as_tool(ping)
    assert as_tool(ping) is made  # the attached tool, not a new one
    assert (made.name, made.description, made.timeout, made.filler, made.fn) == (
        "ping",
        "Check the line.",
        DEFAULT_TIMEOUT,
        None,
        ping,
    )


def test_the_summary_is_the_whole_first_paragraph_and_stops_at_a_section() -> None:
    """A summary over several lines is joined; an `Args:` right under it ends it."""

    def transfer(reason: str) -> None:
        """Transfer the caller to a human,
        after telling them so.
        Args:
            reason (str): Why, in a few words;
                said to the human who picks up.
        """

    made = Tool.from_function(transfer)
    assert made.description == "Transfer the caller to a human, after telling them so."
    assert made.parameters["properties"]["reason"] == {
        "type": "string",
        "description": "Why, in a few words; said to the human who picks up.",
    }


def test_a_summary_ending_in_a_colon_is_not_taken_for_a_section() -> None:
    """Only Google section names (Args, Returns, ...) end the summary, not any line with a colon."""

    def transfer(reason: str) -> None:
        """Transfer the caller to one of:
        sales, support or billing.

        Args:
            reason: Why.
        """

    assert Tool.from_function(transfer).description == (
        "Transfer the caller to one of: sales, support or billing."
    )


def test_annotated_descriptions_win_over_the_args_section() -> None:
    """`Annotated[X, "..."]` is the description even when `Args:` has one too."""

    def book(day: Annotated[str, "The day, as YYYY-MM-DD."], seats: int) -> None:
        """Book a table.

        Args:
            day: The day.
            seats: How many seats.
        """

    assert Tool.from_function(book).parameters["properties"] == {
        "day": {"type": "string", "description": "The day, as YYYY-MM-DD."},
        "seats": {"type": "integer", "description": "How many seats."},
    }


def test_a_tool_without_a_docstring_has_an_empty_description() -> None:
    """No docstring, no description override: the description is empty, not missing."""

    def hang_up() -> None:
        pass

    assert Tool.from_function(hang_up).definition() == {
        "type": "function",
        "name": "hang_up",
        "description": "",
        "parameters": {
            "type": "object",
            "properties": {},
            "required": [],
            "additionalProperties": False,
        },
    }


def test_defaults_make_parameters_optional_and_are_shown_when_json_can() -> None:
    """Defaults are optional and shown; X | None is optional even without a default."""

    def search(
        query: str,
        limit: int = 5,
        color: Color = Color.RED,
        tags: tuple[str, ...] = ("new",),
        near: str | None = None,
        *,
        city: str | None,
        level: int = None,  # type: ignore[assignment]  # noqa: RUF013  # read as int | None
        marker: float = float("nan"),
    ) -> None:
        pass

    properties = Tool.from_function(search).parameters
    assert properties == {
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "limit": {"type": "integer", "default": 5},
            "color": {"type": "string", "enum": ["red", "green"], "default": "red"},
            "tags": {"type": "array", "items": {"type": "string"}, "default": ["new"]},
            "near": {"type": ["string", "null"], "default": None},
            "city": {"type": ["string", "null"]},
            "level": {"type": ["integer", "null"], "default": None},
            "marker": {"type": "number"},  # NaN has no JSON spelling: not shown
        },
        "required": ["query"],
        "additionalProperties": False,
    }


def test_the_tool_context_parameter_is_not_in_the_schema() -> None:
    """A parameter annotated ToolContext, whatever its name, is for the call, not the model."""

    def whoami(call: ToolContext, loud: bool = False) -> str:
        return call.from_number

    assert Tool.from_function(whoami).parameters["properties"] == {
        "loud": {"type": "boolean", "default": False}
    }


def refused(fn: Callable[..., Any]) -> str:
    with pytest.raises(ToolDefinitionError) as caught:
        Tool.from_function(fn)
    return str(caught.value)


def test_definition_errors_are_config_errors_on_one_line() -> None:
    """ToolDefinitionError stops start-up like any ConfigError, with a one-line message."""

    def no_hint(x) -> None:  # type: ignore[no-untyped-def]  # the point of the test
        pass

    message = refused(no_hint)
    assert issubclass(ToolDefinitionError, ConfigError)
    assert issubclass(ToolDefinitionError, CallbridgeError)
    assert "\n" not in message
    assert message.startswith(f"tool function {__name__}.")
    assert "no_hint: parameter 'x' has no type annotation" in message


UNSUPPORTED: list[tuple[str, object, str]] = [
    ("object", object, "object is not supported"),
    ("any", Any, "Any is not supported"),
    ("callable", Callable[[int], str], "is not supported"),
    ("bytes", bytes, "bytes is not supported"),
    ("union", int | str, "the only union allowed is X | None"),
    ("fixed tuple", tuple[int, str], "use tuple[X, ...] or list[X]"),
    ("bare list", list, "list is not supported"),
    ("int keys", dict[int, str], "use dict[str, X]"),
    ("set of lists", set[tuple[int, ...]], "set items must be"),
    ("bytes literal", Literal[b"x"], "Literal values must be str, int or bool"),
    ("recursive dataclass", Node, "Node contains itself"),
    ("nested object field", dict[str, Annotated[list[object], "x"]], "object is not supported"),
]


@pytest.mark.parametrize(
    ("annotation", "problem"),
    [(annotation, problem) for _, annotation, problem in UNSUPPORTED],
    ids=[case for case, _, _ in UNSUPPORTED],
)
def test_unsupported_annotations_are_refused_naming_the_parameter(
    annotation: object, problem: str
) -> None:
    """An annotation JSON cannot carry is refused when the tool is made, parameter named."""
    with pytest.raises(ToolDefinitionError, match=re.escape(problem)) as caught:
        parameter_schema(annotation)
    assert "one: parameter 'x': " in str(caught.value)


@dataclass
class Parcel:
    weight: float
    handler: Callable[[], None]


def test_an_unsupported_field_is_named_with_its_class() -> None:
    """A bad field inside a dataclass names the parameter and Class.field."""

    def ship(parcel: Parcel) -> None:
        pass

    assert refused(ship).endswith(
        "ship: parameter 'parcel': field Parcel.handler: "
        "Callable[[], None] is not supported; use str, int, float, bool, Literal[...], "
        "an Enum, X | None, list[X], tuple[X, ...], set[X], dict[str, X], a TypedDict or a "
        "dataclass"
    )


def test_star_args_and_kwargs_are_refused() -> None:
    """*args and **kwargs have no names the model could use."""

    def spread(*names: str) -> None:
        pass

    def options(**flags: bool) -> None:
        pass

    assert "parameter 'names': *args and **kwargs are not supported" in refused(spread)
    assert "parameter 'flags': *args and **kwargs are not supported" in refused(options)


def test_other_unusable_functions_are_refused() -> None:
    """Generators, two context parameters, a lambda's name and a zero timeout are refused."""

    def numbers() -> Iterator[int]:
        yield 1

    def twice(a: ToolContext, b: ToolContext) -> None:
        pass

    def later(when: str) -> None:
        pass

    later.__annotations__["when"] = "Later"  # a forward reference nothing defines

    assert "a generator cannot be a tool" in refused(numbers)
    assert "two parameters ask for the ToolContext" in refused(twice)
    assert "cannot resolve its type hints: NameError" in refused(later)
    assert "tool name '<lambda>' must be 1 to 64 letters" in refused(lambda: None)
    with pytest.raises(ToolDefinitionError, match="timeout must be positive"):
        Tool.from_function(lookup_order, timeout=0)


@pytest.mark.parametrize("name", ["a", "lookup_order", "find-order-2", "x" * 64])
def test_names_matching_the_realtime_pattern_are_accepted(name: str) -> None:
    """Names of 1 to 64 letters, digits, _ and - are accepted."""
    assert Tool.from_function(lookup_order, name=name).name == name


@pytest.mark.parametrize("name", ["", "x" * 65, "look up", "lookup.order", "café"])
def test_names_outside_the_realtime_pattern_are_refused(name: str) -> None:
    """Spaces, dots, accents, empty and over-long names are refused at definition."""
    with pytest.raises(ToolDefinitionError, match="must be 1 to 64 letters, digits, _ or -"):
        Tool.from_function(lookup_order, name=name)


@pytest.mark.parametrize(
    "annotation",
    [annotation for _, annotation, _ in ANNOTATION_SCHEMAS],
    ids=[case for case, _, _ in ANNOTATION_SCHEMAS],
)
def test_every_shape_is_valid_in_a_realtime_session_update(annotation: object) -> None:
    """The SDK's strict client-event types accept a declaration of every supported shape."""
    definition = tool_with(annotation).definition()
    validate_client_event(
        {"type": "session.update", "session": {"type": "realtime", "tools": [definition]}}
    )


def test_all_definitions_of_a_registry_are_a_valid_session_update() -> None:
    """A registry's whole `tools` list passes the SDK's strict client-event types."""

    def hang_up(context: ToolContext) -> None:
        """End the call."""

    registry = ToolRegistry([lookup_order, hang_up, Tool.from_function(lookup_order, name="l2")])
    validate_client_event(
        {"type": "session.update", "session": {"type": "realtime", "tools": registry.definitions()}}
    )


def test_definitions_follow_registration_order_and_can_be_narrowed() -> None:
    """All tools in registration order, or only the named ones, still in that order."""

    def b_tool() -> None:
        pass

    def a_tool() -> None:
        pass

    registry = ToolRegistry([b_tool, lookup_order])
    registry.add(a_tool)
    assert registry.names == ["b_tool", "lookup_order", "a_tool"]
    assert [d["name"] for d in registry.definitions()] == ["b_tool", "lookup_order", "a_tool"]
    assert [d["name"] for d in registry.definitions(["a_tool", "b_tool"])] == ["b_tool", "a_tool"]
    assert registry.get("a_tool") is not None
    assert registry.get("c_tool") is None


def test_definitions_for_an_unregistered_name_are_a_config_error() -> None:
    """Asking for a tool that does not exist is a configuration mistake, said in one line."""
    registry = ToolRegistry([lookup_order])
    with pytest.raises(
        ConfigError, match=r"^no tool named 'lookup'; the tools are 'lookup_order'$"
    ):
        registry.definitions(["lookup", "lookup_order"])


def test_definitions_are_copies_the_caller_may_change() -> None:
    """Changing a returned declaration does not change the tool."""
    registry = ToolRegistry([lookup_order])
    registry.definitions()[0]["parameters"]["properties"].clear()
    assert "order_id" in registry.definitions()[0]["parameters"]["properties"]


def test_two_tools_with_one_name_are_refused() -> None:
    """Registering a second tool under a taken name is a definition error."""
    registry = ToolRegistry([lookup_order])
    with pytest.raises(ToolDefinitionError, match="two tools are named 'lookup_order'"):
        registry.add(Tool.from_function(lookup_order))
