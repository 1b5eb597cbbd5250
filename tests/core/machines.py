"""Walk a machine's transition table through its public methods: every (state, event) pair
either moves where the table says or is refused with InvalidState, leaving the state as it was."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, TypeVar

import pytest

from callbridge.core.machine import Machine, events_of
from callbridge.errors import InvalidState

S = TypeVar("S", bound=Enum)


def path_to(table: Mapping[tuple[S, str], S], start: S, target: S) -> list[str]:
    """The shortest list of events that moves a machine from `start` to `target`."""
    seen = {start: list[str]()}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        if state is target:
            return seen[state]
        for (source, event), goal in table.items():
            if source is state and goal not in seen:
                seen[goal] = [*seen[state], event]
                queue.append(goal)
    raise AssertionError(f"{target} cannot be reached from {start}")


def pairs(table: Mapping[tuple[S, str], S], states: type[S]) -> list[tuple[S, str]]:
    """Every state with every event the table names: the allowed and the refused."""
    return [(state, event) for state in states for event in events_of(table)]


def walk_one(make: Callable[[], Machine[Any]], fire: Callable[[Machine[Any], str], object],
             state: Enum, event: str) -> None:
    """Bring a fresh machine to `state`, fire `event`, check the table's verdict."""
    machine = make()
    table = machine.TABLE
    for step in path_to(table, machine.state, state):
        fire(machine, step)
    assert machine.state is state
    if (state, event) in table:
        assert machine.can(event)
        fire(machine, event)
        assert machine.state is table[state, event]
    else:
        assert not machine.can(event)
        with pytest.raises(InvalidState, match=event):
            fire(machine, event)
        assert machine.state is state
