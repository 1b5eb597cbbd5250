"""The sans-I/O core: pure, synchronous code that turns protocol messages into decisions.

Nothing under `callbridge.core` awaits, reads a clock or the environment, opens a socket, or
imports asyncio, websockets, starlette, httpx or sqlalchemy; `tests/core/test_purity.py` walks
the imports to keep it so. Time, ids and randomness come in as arguments.
"""
