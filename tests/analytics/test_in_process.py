"""`serve --with-worker`: the writer, the in-process worker and the API, wired by the settings."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from callbridge.analytics.service import check_settings
from callbridge.config import load_settings
from callbridge.errors import ConfigError
from callbridge.server.app import CallbridgeServer, create_app
from callbridge.server.runner import running
from callbridge.testing.fake_openai_http import ChatReply, FakeOpenAIHTTP
from tests.analytics.conftest import MODEL, SECRET, a_call
from tests.analytics.receiver import Receiver

SID = "CA" + "4" * 32
TOKEN = "api-token"
ANSWER = {"summary": "Wants bread.", "sentiment": 0.2, "intent": "buy bread", "lead_score": 40,
          "action_items": [], "custom": {"loaves": 3}}
AGENT_FILE = """
[agent]
webhook_url = "{url}"
webhook_secret = "{secret}"
analysis_fields = {{ loaves = {{ type = "integer", minimum = 0 }} }}
"""


def settings_for(database_url: str, model_url: str, tmp_path: Path, hook_url: str) -> Any:
    agent_file = tmp_path / "agent.toml"
    agent_file.write_text(AGENT_FILE.format(url=hook_url, secret=SECRET), encoding="utf-8")
    return load_settings({
        "CALLBRIDGE_PUBLIC_URL": "https://voice.example.test", "TWILIO_AUTH_TOKEN": "t",
        "OPENAI_API_KEY": "sk-test", "CALLBRIDGE_OPENAI_URL": "ws://127.0.0.1:9/realtime",
        "DATABASE_URL": database_url, "CALLBRIDGE_JOURNAL": str(tmp_path / "journal.jsonl"),
        "CALLBRIDGE_INSTANCE_ID": "test", "CALLBRIDGE_API_TOKEN": TOKEN,
        "CALLBRIDGE_ANALYSIS_URL": model_url, "CALLBRIDGE_ANALYSIS_MODEL": MODEL,
        "CALLBRIDGE_AGENT_FILE": str(agent_file),
    })


async def test_a_call_ended_through_the_server_is_analysed_and_served_by_the_api(
        database_url: str, model: FakeOpenAIHTTP, tmp_path: Path) -> None:
    """Records from the writer, the in-process worker, the webhooks and the API, together."""
    receiver = Receiver(SECRET)
    app = create_app(settings_for(database_url, model.url, tmp_path, receiver.url),
                     with_worker=True)
    model.script(ChatReply.json(ANSWER))
    state: CallbridgeServer = app.state.callbridge
    async with receiver.listening(), running(app) as server, httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        assert state.writer is not None
        for record in a_call(SID):
            state.writer.submit(record)
        call = await _analysed(api, SID)
    assert {k: call["analysis"][k] for k in ANSWER} == ANSWER
    assert [(d["event"], d["delivered"]) for d in call["webhook_deliveries"]] == [
        ("call.ended", True), ("call.analyzed", True)]
    assert [r.event["type"] for r in receiver.delivered()] == ["call.ended", "call.analyzed"]


async def _analysed(api: httpx.AsyncClient, sid: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            call: dict[str, Any] = (await api.get(f"/api/calls/{sid}")).json()
            if call.get("analysis") and len(call["webhook_deliveries"]) == 2:
                return call
            await asyncio.sleep(0.1)


def test_the_worker_refuses_to_start_without_a_key_for_openai() -> None:
    """One line names the missing key, instead of every job failing later."""
    settings = load_settings({"OPENAI_API_KEY": ""}, serving=False)
    with pytest.raises(ConfigError, match=r"^OPENAI_API_KEY is not set: the analytics worker"):
        check_settings(settings)
    check_settings(load_settings({"CALLBRIDGE_ANALYSIS_URL": "http://127.0.0.1:9/v1"},
                                 serving=False))
