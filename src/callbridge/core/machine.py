"""The shape every small machine of the call shares: an enum state moved only through a table.

A machine module writes its transitions at its top as `{(state, event): next_state}` (h11's
`_state.py` style) and moves with `_move(event)`. An event that the table does not list for the
current state is refused with `InvalidState`: a caller that means "only if allowed" asks `can()`
first. Nothing but `_move` assigns the state. No I/O. No clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Generic, TypeVar

from callbridge.errors import InvalidState

S = TypeVar("S", bound=Enum)


class Machine(Generic[S]):
    """An enum state and the table of its allowed moves."""

    TABLE: Mapping[tuple[S, str], S]
    NAME = "machine"

    def __init__(self, initial: S) -> None:
        self.state = initial  # read freely (a plain attribute: the hot path reads it); only
        # `_move` assigns it

    def can(self, event: str) -> bool:
        """Whether `event` is allowed in the current state."""
        return (self.state, event) in self.TABLE

    def _move(self, event: str) -> S:
        """Take the transition for `event`, or raise `InvalidState` naming the refusal."""
        try:
            self.state = self.TABLE[self.state, event]
        except KeyError:
            raise InvalidState(
                f"{self.NAME} is {self.state.value}: {event!r} is not allowed") from None
        return self.state


def events_of(table: Mapping[tuple[S, str], S]) -> list[str]:
    """Every event a table names, in table order (for tests that walk a table)."""
    return list(dict.fromkeys(event for _, event in table))
