"""The tasks a fake model server's connection runs beside its receive loop (speaking, timers,
delayed replies), as both fakes run them.

A dropped or closed socket ends a task quietly; any other exception is a bug in the fake, logged
and reported as a violation so the test fails rather than the event loop complaining later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from websockets.exceptions import ConnectionClosed

from callbridge.testing.fake_realtime_config import Dropped

logger = logging.getLogger(__name__)


class ConnectionTasks:
    """One connection's background tasks; `cancel()` them when the connection ends."""

    def __init__(self, server: str, violation: Callable[[str], None]) -> None:
        self._server = server  # "fake GPT-Live server", in the log line of a failure
        self._violation = violation
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel(self) -> None:
        """Cancel every task but the one calling (a task may end its own connection)."""
        current = asyncio.current_task()
        others = [task for task in self._tasks if task is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _guard(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except (ConnectionClosed, Dropped):
            pass
        except Exception as exc:  # a bug in the fake: make the test fail, not the event loop
            logger.exception("%s task failed", self._server)
            self._violation(f"fake server error: {exc!r}")
