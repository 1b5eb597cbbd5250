"""Running tools for the model: argument checks, threads, timeouts, failures and loading."""

from __future__ import annotations

import asyncio
import datetime
import enum
import json
import logging
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import pytest

from callbridge.errors import ConfigError
from callbridge.tools import (
    ToolContext,
    ToolDefinitionError,
    ToolLoadError,
    ToolOutcome,
    ToolRegistry,
    load_tools_module,
    tool,
)

CONTEXT = ToolContext(
    call_sid="CA123", from_number="+15550001111", to_number="+15550002222", agent="support"
)


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


class Window(TypedDict):
    start: str
    end: str


class Filter(TypedDict, total=False):
    city: str
    open_now: bool


@dataclass
class Basket:
    owner: str | None
    skus: list[str] = field(default_factory=list)


@dataclass
class Item:
    sku: str
    quantity: int = 1


@dataclass(frozen=True)
class Quantity:
    amount: int

    def __post_init__(self) -> None:
        if self.amount < 1:
            raise ValueError("amount must be at least 1")


def failed(error: str) -> tuple[str, bool, str]:
    """The (output, ok, error) of an outcome that failed with `error`."""
    return json.dumps({"error": error}, separators=(",", ":")), False, error


def parts(outcome: ToolOutcome) -> tuple[str, bool, str | None]:
    return outcome.output, outcome.ok, outcome.error


async def run(
    fn: Callable[..., Any], arguments: Any = None, *, raw: str | None = None
) -> ToolOutcome:
    """Register `fn` alone and run it once with `arguments` (as JSON) or the `raw` text."""
    registry = ToolRegistry([fn])
    text = raw if raw is not None else json.dumps(arguments or {})
    return await registry.run(registry.names[0], text, CONTEXT)


async def test_an_async_tool_is_awaited_and_its_dict_sent_as_compact_json() -> None:
    """An async function's result becomes compact JSON; ok, no error."""

    async def lookup_order(order_id: str, include_items: bool = False) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"order_id": order_id, "items": ["mug"] if include_items else [], "total": 12.5}

    outcome = await run(lookup_order, {"order_id": "A-1234", "include_items": True})
    assert parts(outcome) == ('{"order_id":"A-1234","items":["mug"],"total":12.5}', True, None)


async def test_a_sync_tool_runs_and_a_str_result_is_sent_as_is() -> None:
    """A sync function's str result is the output text itself, not a JSON string."""

    def greet(name: str) -> str:
        return f"Hello {name}, café open."

    assert parts(await run(greet, {"name": "Ada"})) == ("Hello Ada, café open.", True, None)


async def test_a_sync_tool_runs_off_the_event_loop() -> None:
    """A sync tool sleeping 0.3 s runs in another thread while the loop keeps ticking."""
    threads: list[int] = []

    def slow() -> str:
        threads.append(threading.get_ident())
        time.sleep(0.3)
        return "done"

    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    outcome = await run(slow)
    ticker.cancel()
    assert outcome.ok
    assert threads != [threading.get_ident()]
    assert ticks >= 10


async def test_a_sync_wrapper_returning_a_coroutine_is_awaited() -> None:
    """A sync function that returns an awaitable (a wrapped async function) has it awaited."""

    async def inner() -> int:
        return 7

    def wrapper() -> Any:
        return inner()

    assert parts(await run(wrapper)) == ("7", True, None)


@dataclass
class Receipt:
    size: Size
    at: datetime.datetime
    day: datetime.date
    tags: tuple[str, ...]


RESULTS: list[tuple[str, object, str]] = [
    ("none", None, "null"),
    ("int", 3, "3"),
    ("bool", True, "true"),
    ("list", [1, "two", None], '[1,"two",null]'),
    ("enum", Size.LARGE, '"l"'),
    ("datetime", datetime.datetime(2025, 5, 6, 7, 8, 9), '"2025-05-06T07:08:09"'),
    ("set", {"only"}, '["only"]'),
    (
        "dataclass",
        Receipt(Size.SMALL, datetime.datetime(2025, 1, 2, 3, 4), datetime.date(2025, 1, 2), ("a",)),
        '{"size":"s","at":"2025-01-02T03:04:00","day":"2025-01-02","tags":["a"]}',
    ),
    ("unicode", {"city": "Zürich"}, '{"city":"Zürich"}'),
]


@pytest.mark.parametrize(
    ("result", "output"), [(r, o) for _, r, o in RESULTS], ids=[case for case, _, _ in RESULTS]
)
async def test_results_become_json_text(result: object, output: str) -> None:
    """None, numbers, lists, enums, datetimes, sets and dataclasses become compact JSON."""

    def answer() -> object:
        return result

    assert parts(await run(answer)) == (output, True, None)


@pytest.mark.parametrize("result", [object(), float("nan"), {1j: 2}], ids=["object", "nan", "key"])
async def test_a_result_json_cannot_carry_is_an_error(result: object) -> None:
    """A non-serialisable result fails the call with an error the model can read."""

    def answer() -> object:
        return result

    outcome = await run(answer)
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.startswith("answer returned a value that cannot be sent: ")
    assert json.loads(outcome.output) == {"error": outcome.error}


class Spy:
    """A tool that records its calls."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def book(self, day: str, seats: int, window: Window | None = None) -> str:
        self.calls.append({"day": day, "seats": seats, "window": window})
        return "booked"


INVALID: list[tuple[str, str, str]] = [
    (
        "bad json",
        '{"day": "mon",',
        "book was not called: the arguments are not valid JSON "
        "(JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 15 "
        "(char 14))",
    ),
    (
        "nan",
        '{"day": "mon", "seats": NaN}',
        "book was not called: the arguments are not valid JSON "
        "(ValueError: NaN is not a JSON number)",
    ),
    (
        "not an object",
        "[1, 2]",
        "book was not called: the arguments must be a JSON object, not a list",
    ),
    (
        "unknown",
        '{"day": "mon", "seats": 2, "table": 4}',
        "book was not called: unknown argument 'table' (it takes 'day', 'seats', 'window')",
    ),
    ("missing", '{"day": "mon"}', "book was not called: the argument 'seats' is required"),
    (
        "wrong type",
        '{"day": "mon", "seats": "2"}',
        "book was not called: the argument 'seats' must be an integer, not a string",
    ),
    (
        "fraction",
        '{"day": "mon", "seats": 2.5}',
        "book was not called: the argument 'seats' must be an integer, not a number",
    ),
    (
        "bool for int",
        '{"day": "mon", "seats": true}',
        "book was not called: the argument 'seats' must be an integer, not a boolean",
    ),
    (
        "nested",
        '{"day": "mon", "seats": 2, "window": {"start": "9"}}',
        "book was not called: the argument 'window.end' is required",
    ),
    (
        "nested unknown",
        '{"day": "mon", "seats": 2, "window": {"start": "9", "end": "10", "tz": "UTC"}}',
        "book was not called: the argument 'window' has no field 'tz' (its fields "
        "are 'start', 'end')",
    ),
    (
        "several",
        '{"seats": null, "x": 1}',
        "book was not called: unknown argument 'x' (it takes 'day', 'seats', 'window'); "
        "the argument 'day' is required; the argument 'seats' must be an integer, not null",
    ),
]


@pytest.mark.parametrize(
    ("arguments", "error"), [(a, e) for _, a, e in INVALID], ids=[case for case, _, _ in INVALID]
)
async def test_invalid_arguments_are_explained_and_the_tool_not_called(
    arguments: str, error: str
) -> None:
    """Bad JSON, unknown, missing or mistyped arguments: an error naming them, no call."""
    spy = Spy()
    outcome = await run(spy.book, raw=arguments)
    assert parts(outcome) == failed(error)
    assert spy.calls == []


async def test_empty_arguments_mean_none() -> None:
    """An empty `arguments` string calls a tool without parameters."""

    def hang_up() -> str:
        return "bye"

    assert parts(await run(hang_up, raw="")) == ("bye", True, None)


async def test_only_the_coercions_json_forces_are_made() -> None:
    """int→float, 3.0→int, list→tuple/set, value→Enum, object→dataclass/TypedDict, null→None."""
    received: dict[str, Any] = {}

    def order(
        price: float,
        count: int,
        tags: tuple[str, ...],
        sizes: set[Size],
        size: Size,
        items: list[Item],
        window: Window,
        note: str | None,
        totals: dict[str, float],
    ) -> str:
        received.update({k: v for k, v in locals().items() if k != "received"})
        return "ok"

    outcome = await run(
        order,
        {
            "price": 3,
            "count": 3.0,
            "tags": ["a", "b"],
            "sizes": ["s", "l", "s"],
            "size": "l",
            "items": [{"sku": "mug"}, {"sku": "cap", "quantity": 2}],
            "window": {"start": "9", "end": "10"},
            "note": None,
            "totals": {"eur": 1},
        },
    )
    assert outcome.ok
    assert received == {
        "price": 3.0,
        "count": 3,
        "tags": ("a", "b"),
        "sizes": {Size.SMALL, Size.LARGE},
        "size": Size.LARGE,
        "items": [Item("mug"), Item("cap", 2)],
        "window": {"start": "9", "end": "10"},
        "note": None,
        "totals": {"eur": 1.0},
    }
    assert [type(received[name]) for name in ("price", "count", "tags", "size")] == [
        float,
        int,
        tuple,
        Size,
    ]
    assert type(received["totals"]["eur"]) is float


async def test_optional_arguments_left_out_take_their_defaults() -> None:
    """Absent optional arguments: Python's default applies; X | None without one gets None."""
    received: dict[str, Any] = {}

    def search(query: str, limit: int = 5, near: str | None = None, *, city: str | None) -> str:
        received.update({k: v for k, v in locals().items() if k != "received"})
        return "ok"

    assert (await run(search, {"query": "pizza"})).ok
    assert received == {"query": "pizza", "limit": 5, "near": None, "city": None}


async def test_absent_fields_of_nested_records_are_left_to_python() -> None:
    """An absent TypedDict key stays absent; a dataclass gets its factory, X | None gets None."""
    received: list[object] = []

    def shop(where: Filter, basket: Basket) -> str:
        received.extend([where, basket])
        return "ok"

    assert (await run(shop, {"where": {"open_now": True}, "basket": {}})).ok
    assert received == [{"open_now": True}, Basket(owner=None, skus=[])]


async def test_a_value_outside_an_enum_is_refused_with_the_choices() -> None:
    """An enum argument outside its values lists the values the model may use."""

    def pick(size: Size) -> str:
        return size.value

    assert parts(await run(pick, {"size": "m"})) == failed(
        'pick was not called: the argument \'size\' must be one of "s", "l"'
    )


async def test_a_dataclass_that_refuses_its_values_is_an_argument_error() -> None:
    """A dataclass's own check (__post_init__) failing is reported as an argument problem."""

    def reserve(quantity: Quantity) -> str:
        return "ok"

    assert parts(await run(reserve, {"quantity": {"amount": 0}})) == failed(
        "reserve was not called: the argument 'quantity' was refused: "
        "ValueError: amount must be at least 1"
    )


async def test_the_tool_context_is_passed_to_the_parameter_that_asks() -> None:
    """A ToolContext parameter, whatever its name or position, receives the call's context."""

    def whoami(call: ToolContext, /, loud: bool = False) -> str:
        return f"{call.agent}:{call.call_sid}:{call.from_number}:{loud}"

    assert parts(await run(whoami, {"loud": True})) == (
        "support:CA123:+15550001111:True",
        True,
        None,
    )


async def test_positional_only_parameters_are_passed_by_position() -> None:
    """Positional-only parameters work, with their defaults when left out."""

    def add(a: int, b: int = 10, /) -> int:
        return a + b

    assert parts(await run(add, {"a": 1})) == ("11", True, None)
    assert parts(await run(add, {"a": 1, "b": 2})) == ("3", True, None)


async def test_an_unknown_tool_is_an_error_outcome() -> None:
    """A name that is not registered answers with an error, never an exception."""
    outcome = await ToolRegistry().run("teleport", "{}", CONTEXT)
    assert parts(outcome) == failed("there is no tool named teleport")


async def test_an_async_tool_past_its_timeout_is_cancelled() -> None:
    """An async tool slower than its timeout is cancelled and the model told so."""
    cancelled = asyncio.Event()

    @tool(timeout=0.05)
    async def slow() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    outcome = await run(slow)
    assert parts(outcome) == failed("the tool slow did not answer within 0.05 s")
    await asyncio.wait_for(cancelled.wait(), 1)


async def test_a_sync_tool_past_its_timeout_is_abandoned() -> None:
    """A sync tool slower than its timeout is abandoned at once; its thread runs on."""
    release = threading.Event()

    @tool(timeout=0.05)
    def stuck() -> str:
        release.wait(2)
        return "late"

    started = time.perf_counter()
    outcome = await run(stuck)
    release.set()
    assert parts(outcome) == failed("the tool stuck did not answer within 0.05 s")
    assert time.perf_counter() - started < 1


async def test_a_tool_without_a_timeout_may_take_its_time() -> None:
    """timeout=None sets no limit."""

    @tool(timeout=None)
    async def patient() -> str:
        await asyncio.sleep(0.05)
        return "done"

    assert parts(await run(patient)) == ("done", True, None)


async def test_an_exception_becomes_an_error_outcome_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A raising tool fails the call with its exception type and message, logged with traceback."""

    def charge(card_number: str) -> str:
        raise RuntimeError("the card was declined")

    caplog.set_level(logging.INFO, logger="callbridge.tools")
    outcome = await run(charge, {"card_number": "4111111111111111"})
    assert parts(outcome) == failed("charge failed: RuntimeError: the card was declined")
    [record] = caplog.records
    assert (record.levelno, record.name, record.getMessage()) == (
        logging.WARNING,
        "callbridge.tools",
        "tool charge raised RuntimeError",
    )
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError
    assert "4111111111111111" not in caplog.text


async def test_a_long_exception_message_is_cut_to_300_characters() -> None:
    """The model gets at most 300 characters of an exception's message, on one line."""

    async def chatty() -> str:
        raise ValueError("line one\n" + "x" * 400)

    outcome = await run(chatty)
    assert outcome.error == "chatty failed: ValueError: line one " + "x" * 290 + "…"


async def test_invalid_arguments_are_logged_without_their_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refused call is logged at INFO, naming the tool but not the arguments."""

    def charge(card_number: str) -> str:
        return "ok"

    caplog.set_level(logging.DEBUG, logger="callbridge.tools")
    await run(charge, {"card_number": "4111111111111111", "cvv": "123"})
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "tool charge not called: its arguments do not fit")
    ]
    assert "4111" not in caplog.text


async def test_cancelling_the_caller_cancels_the_tool_and_propagates() -> None:
    """When the awaiting task is cancelled (the call ended), the tool is cancelled too."""
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def forever() -> str:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    caller = asyncio.create_task(run(forever))
    await asyncio.wait_for(started.wait(), 1)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.wait_for(cancelled.wait(), 1)


async def test_duration_is_measured_with_the_given_clock() -> None:
    """duration_ms is the clock's difference around the whole run, in whole milliseconds."""
    readings = iter([100.0, 100.2504])

    def noop() -> None:
        return None

    registry = ToolRegistry([noop], clock=lambda: next(readings))
    assert await registry.run("noop", "{}", CONTEXT) == ToolOutcome("null", True, None, 250)


# ------------------------------------------------------------------ load_tools_module


@dataclass
class UserPackage:
    """A fresh package on sys.path whose modules a test writes."""

    name: str
    path: Path

    def write(self, module: str, source: str) -> str:
        """Write `module` with `source`; return its dotted name."""
        (self.path / f"{module}.py").write_text(textwrap.dedent(source))
        return f"{self.name}.{module}"


@pytest.fixture
def user_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[UserPackage]:
    """A package under tmp_path, importable; sys.path and sys.modules restored afterwards."""
    name = f"usertools_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield UserPackage(name, tmp_path / name)
    for module in [module for module in sys.modules if module.split(".")[0] == name]:
        del sys.modules[module]


async def test_a_tools_module_yields_its_tools_in_definition_order(
    user_package: UserPackage,
) -> None:
    """Every @tool in the module, re-exports included, in order; plain functions are not tools."""
    user_package.write(
        "shared",
        '''
        from callbridge.tools import tool

        @tool
        def hang_up() -> str:
            """End the call."""
            return "bye"
    ''',
    )
    name = user_package.write(
        "phone",
        f'''
        from callbridge.tools import ToolContext, tool
        from {user_package.name}.shared import hang_up

        def helper() -> None:
            pass

        @tool(timeout=2.5, filler="One moment.")
        async def lookup_order(order_id: str) -> dict:
            """Look up an order."""
            return {{"id": order_id}}

        @tool(name="who")
        def whoami(context: ToolContext) -> str:
            return context.call_sid

        alias = lookup_order
    ''',
    )
    tools = load_tools_module(name)
    assert [(t.name, t.timeout, t.filler) for t in tools] == [
        ("hang_up", 10.0, None),
        ("lookup_order", 2.5, "One moment."),
        ("who", 10.0, None),
    ]
    registry = ToolRegistry(tools)
    assert parts(await registry.run("who", "{}", CONTEXT)) == ("CA123", True, None)


def test_a_missing_tools_module_is_a_one_line_load_error(user_package: UserPackage) -> None:
    """A module that does not exist is a ToolLoadError (a ConfigError) naming it."""
    package = user_package.name
    with pytest.raises(ToolLoadError) as caught:
        load_tools_module(f"{package}.nothing")
    assert str(caught.value) == (
        f"cannot import tools module '{package}.nothing': "
        f"ModuleNotFoundError: No module named '{package}.nothing'"
    )
    assert isinstance(caught.value, ConfigError)


def test_a_tools_module_that_fails_to_import_is_a_load_error(
    user_package: UserPackage,
) -> None:
    """An exception while importing becomes one line naming the module and the exception."""
    name = user_package.write(
        "broken",
        """
        raise RuntimeError("no API key\\nset SHOP_KEY")
    """,
    )
    with pytest.raises(
        ToolLoadError,
        match=r"^cannot import tools module '.*\.broken': "
        r"RuntimeError: no API key set SHOP_KEY$",
    ):
        load_tools_module(name)


def test_a_tools_module_without_tools_is_a_load_error(user_package: UserPackage) -> None:
    """A module with only plain functions is refused: nothing was marked as a tool."""
    name = user_package.write(
        "plain",
        """
        def lookup_order(order_id: str) -> str:
            return order_id
    """,
    )
    with pytest.raises(
        ToolLoadError,
        match=r"^tools module '.*\.plain' has no tools; decorate "
        r"its functions with @callbridge.tools.tool$",
    ):
        load_tools_module(name)


def test_a_bad_tool_in_a_module_raises_its_definition_error(
    user_package: UserPackage,
) -> None:
    """A @tool the module cannot define surfaces as the ToolDefinitionError naming it."""
    name = user_package.write(
        "bad",
        """
        from callbridge.tools import tool

        @tool
        def remember(anything: object) -> None:
            pass
    """,
    )
    with pytest.raises(
        ToolDefinitionError,
        match=r"bad\.remember: parameter 'anything': object "
        r"is not supported",
    ):
        load_tools_module(name)
