"""The life cycle every fake server in the kit shares: `async with fake:` starts it and stops it."""

from __future__ import annotations

from abc import abstractmethod
from typing import Self

from callbridge.closing import AsyncClosing


class Served(AsyncClosing):
    """A server a test starts and stops; `async with` does both, stopping even when the test
    fails. Subclasses may give `start` optional arguments (where to listen)."""

    @abstractmethod
    async def start(self) -> None:
        """Start listening."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop listening and close every connection. Safe to call twice."""

    async def aclose(self) -> None:
        await self.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self
