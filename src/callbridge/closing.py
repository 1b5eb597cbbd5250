"""`AsyncClosing`: an object with `aclose()` is its own `async with` block.

For the process's clients that hold connections (Twilio's REST client, the test kit's caller):
`async with client:` closes it on the way out, also when the block raises.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class AsyncClosing(ABC):
    """Mix in for `async with obj:` that ends with `await obj.aclose()`."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release what the object holds. Safe to call twice."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
