"""Several real `callbridge serve` processes on one fresh PostgreSQL database, behind the
round-robin balancer of the test kit, with the fake Realtime and Twilio REST servers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

from callbridge.testing.fake_realtime import FakeRealtimeServer, Reply
from callbridge.testing.fake_twilio_rest import FakeTwilioRest
from callbridge.testing.round_robin import RoundRobinProxy
from tests.databases import fresh_database
from tests.e2e.harness import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, read_sse
from tests.e2e.server_process import ServerProcess

API_TOKEN = "api-secret"
VOICEMAIL = "Hi, this is the clinic reminding you of your appointment tomorrow at nine."
GREETING = "Hello! This is the clinic."
AGENTS = f'''
[agents.front]
greeting = "{GREETING}"
transfer_fallback = "Nobody is free."
[agents.reminders]
greeting = "{GREETING}"
voicemail_message = "{VOICEMAIL}"
'''


@dataclass
class Cluster:
    proxy: RoundRobinProxy
    servers: list[ServerProcess]
    fake: FakeRealtimeServer
    rest: FakeTwilioRest
    database_url: str

    def names(self) -> list[str]:
        return [f"node-{i}" for i in range(len(self.servers))]

    def url_of(self, instance: str) -> str:
        """The direct URL of the process serving `instance` (a worker `node-0-w1` is node-0)."""
        index = int(instance.split("-")[1])
        return self.servers[index].url

    def not_carrying(self, owner: str) -> list[str]:
        """Direct URLs of the processes that do not carry `owner`'s calls."""
        own = self.url_of(owner)
        return [s.url for s in self.servers if s.url != own]


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, size: int = 3, *, workers: int | None = None,
                  env: dict[str, str] | None = None) -> AsyncIterator[Cluster]:
    agents = tmp_path / "agents.toml"
    agents.write_text(AGENTS)
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(_database(tmp_path))
        fake = await stack.enter_async_context(FakeRealtimeServer([Reply()]))
        rest = await stack.enter_async_context(
            FakeTwilioRest(ACCOUNT_SID, AUTH_TOKEN, public_url=PUBLIC_URL, keep_alive=False))
        servers = []
        for i in range(size):
            servers.append(ServerProcess({
                "CALLBRIDGE_PUBLIC_URL": PUBLIC_URL, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "CALLBRIDGE_TWILIO_API_URL": rest.url,
                "CALLBRIDGE_CALLER_ID": "+15550009999", "CALLBRIDGE_OPENAI_URL": fake.url,
                "OPENAI_API_KEY": "sk-test", "DATABASE_URL": url,
                "CALLBRIDGE_JOURNAL": str(tmp_path / f"journal-{i}.jsonl"),
                "CALLBRIDGE_RECORDINGS_DIR": str(tmp_path / f"recordings-{i}"),
                "CALLBRIDGE_INSTANCE_ID": f"node-{i}", "CALLBRIDGE_API_TOKEN": API_TOKEN,
                "CALLBRIDGE_AGENT_FILE": str(agents), "CALLBRIDGE_SWEEP_S": "1",
                **(env or {}),
            }, tmp_path / f"node-{i}.log", workers=workers))
        stack.callback(lambda: [server.stop() for server in servers])
        await asyncio.gather(*(server.start() for server in servers))
        proxy = await stack.enter_async_context(
            RoundRobinProxy([("127.0.0.1", server.port) for server in servers]))
        rest.server_url = proxy.url
        yield Cluster(proxy, servers, fake, rest, url)


@contextlib.asynccontextmanager
async def _database(tmp_path: Path) -> AsyncIterator[str]:
    generator = fresh_database("postgresql", tmp_path)
    url = await generator.__anext__()
    try:
        yield url
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await generator.__anext__()


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}


async def api(url: str, method: str, path: str, body: dict[str, Any] | None = None,
              ) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=10) as client:
        return await client.request(method, path, json=body, headers=auth())


async def signed(url: str, path: str, params: dict[str, str]) -> httpx.Response:
    """A webhook as Twilio signs it, to one process."""
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{PUBLIC_URL}{path}", params)
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=10) as client:
        return await client.post(path, data=params, headers={"X-Twilio-Signature": signature})


async def owner_of(c: Cluster, call_sid: str, within: float = 5.0) -> str:
    """The instance carrying the call, as any instance's `GET /api/calls/live` says."""
    async with asyncio.timeout(within):
        while True:
            live = (await api(c.proxy.url, "GET", "/api/calls/live")).json()["calls"]
            owners = [call["instance"] for call in live if call["call_sid"] == call_sid]
            if owners:
                return str(owners[0])
            await asyncio.sleep(0.05)


async def recorded(c: Cluster, call_sid: str, done: Any, within: float = 10.0,
                   ) -> dict[str, Any]:
    """The call record once `done(record)` holds (the writers batch)."""
    async with asyncio.timeout(within):
        while True:
            response = await api(c.proxy.url, "GET", f"/api/calls/{call_sid}")
            if response.status_code == 200 and done(response.json()):
                result: dict[str, Any] = response.json()
                return result
            await asyncio.sleep(0.1)


async def read_stream(url: str, call_sid: str, events: list[tuple[str, dict[str, Any]]]) -> int:
    """Follow the call's SSE stream from `url` into `events` until it ends; the status."""
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=30) as client:
        return await read_sse(client, f"/api/calls/{call_sid}/stream", events, **auth())


def open_upstreams(c: Cluster) -> int:
    return sum(1 for connection in c.fake.connections if not connection.closed)
