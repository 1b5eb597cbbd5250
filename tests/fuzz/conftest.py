"""The app under fuzz for the HTTP properties: the real ASGI app with its lifespan, a SQLite call
record and the fake model, driven through Starlette's TestClient so each hypothesis example is a
plain synchronous request (server exceptions are raised into the test, not turned into 500s)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from starlette.testclient import TestClient

from callbridge.config import load_settings
from callbridge.server.app import CallbridgeServer, create_app
from callbridge.store.migrate import upgrade
from callbridge.store.records import CallEnded, CallOpened, TurnRecorded
from callbridge.testing.fake_realtime import FakeRealtimeServer
from tests.e2e.harness import AUTH_TOKEN, PUBLIC_URL

API_TOKEN = "fuzz-api-token"


@dataclass
class LiveApp:
    client: TestClient
    state: CallbridgeServer

    def end_calls(self) -> None:
        """Close every call the last request opened (each opens a Realtime session)."""
        self.client.portal.call(self.state.calls.close_all)  # type: ignore[union-attr]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    tmp = tmp_path_factory.mktemp("fuzz-app")
    database_url = f"sqlite:///{tmp / 'calls.db'}"
    upgrade(database_url)
    port = _free_port()
    settings = load_settings({
        "CALLBRIDGE_PUBLIC_URL": PUBLIC_URL, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "CALLBRIDGE_OPENAI_URL": f"ws://127.0.0.1:{port}/v1/realtime", "OPENAI_API_KEY": "sk-x",
        "DATABASE_URL": database_url, "CALLBRIDGE_API_TOKEN": API_TOKEN,
        "CALLBRIDGE_JOURNAL": str(tmp / "journal.jsonl"),
        "CALLBRIDGE_RECORDINGS_DIR": str(tmp / "recordings"),
    })
    app = create_app(settings)
    state: CallbridgeServer = app.state.callbridge
    fake = FakeRealtimeServer()
    with TestClient(app, base_url=PUBLIC_URL) as client:
        portal = client.portal
        assert portal is not None
        portal.call(fake.start, "127.0.0.1", port)
        portal.call(_seed, state)
        try:
            yield LiveApp(client, state)
        finally:
            portal.call(state.calls.close_all)
            portal.call(fake.stop)


async def _seed(state: CallbridgeServer) -> None:
    """Three recorded calls, so list queries have rows to filter."""
    writer = state.writer
    assert writer is not None
    for n in range(3):
        sid = f"CA{n:032d}"
        writer.submit(CallOpened(sid, "inbound", "+15550001111", f"+1555000222{n}", "default",
                                 "gpt-realtime", "marin", "fuzz", 1_790_000_000.0 + n))
        writer.submit(TurnRecorded(sid, f"item_{n}", "caller", "Hello", "Hello", False, 0, 900))
        writer.submit(CallEnded(sid, 1_790_000_060.0 + n, "caller hung up", 60.0, 0.01))
    await writer.flush(within=10.0)
