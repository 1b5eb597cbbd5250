"""GPT-Live settings of an agent: what each delegation mode needs, and the one-line errors for
settings that would be silently half-applied."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callbridge.agents import load_directory
from callbridge.errors import ConfigError
from callbridge.tools import ToolContext

LIVE = {"model": "gpt-live-1.1"}
BACKEND = '''
from callbridge.tools.delegation import Delegation

async def answer(delegation, context):
    return f"You asked: {delegation.question} ({context.call_sid}, {delegation.id})"

def answer_slowly(delegation, context):
    return "Nine to five."

def answer_nothing(delegation, context):
    return "   "

def not_a_backend():
    return "x"
'''


@pytest.fixture
def backends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "shop_backends.py").write_text(BACKEND)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "shop_backends"
    sys.modules.pop("shop_backends", None)


def refused(table: dict[str, Any], env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_directory({"agent": table}, env or {})
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_realtime_only_settings_on_a_live_agent_and_live_settings_on_realtime_are_refused(
) -> None:
    assert "turn_detection" in refused({**LIVE, "turn_detection": "semantic_vad"})
    assert "audio_format" in refused({**LIVE, "audio_format": "pcm16"})
    assert "backend_model" in refused({"model": "gpt-realtime-2.1",
                                       "backend_model": "gpt-5.4"})


def test_client_delegation_needs_a_backend_and_takes_no_tools_or_backend_model(
        backends: str) -> None:
    client = {**LIVE, "live_delegation": "client"}
    assert "needs backend" in refused(client)
    assert "tools" in refused({**client, "backend": f"{backends}:answer", "tools": ["end_call"]})
    assert "backend_model" in refused({**client, "backend": f"{backends}:answer",
                                       "backend_model": "gpt-5.4"})
    assert "live_delegation = client" in refused({**LIVE, "backend": f"{backends}:answer"})


def test_a_backend_that_cannot_be_used_is_a_start_up_error(backends: str) -> None:
    client = {**LIVE, "live_delegation": "client"}
    assert "package.module:function" in refused({**client, "backend": "no colon"})
    assert "cannot import" in refused({**client, "backend": "no_such_module_x:answer"})
    assert "no function" in refused({**client, "backend": f"{backends}:missing"})
    assert "(delegation, context)" in refused({**client, "backend": f"{backends}:not_a_backend"})


def test_the_backend_becomes_the_tool_its_delegations_call(backends: str) -> None:
    """From the agent file or from CALLBRIDGE_LIVE_BACKEND; async and plain functions alike;
    an empty answer is the backend's failure."""
    directory = load_directory({}, {"CALLBRIDGE_MODEL": "gpt-live-1.1",
                                    "CALLBRIDGE_LIVE_DELEGATION": "client",
                                    "CALLBRIDGE_LIVE_BACKEND": f"{backends}:answer"})
    live = directory.default_profile.live
    assert (live.delegation, live.backend) == ("client", f"{backends}:answer")
    context = ToolContext("CA1", "+15550001111", "+15550002222", "default")
    arguments = ('{"delegation_id": "del_1", "conversation": [{"role": "assistant", '
                 '"text": "Hello."}, {"role": "user", "text": "When do you open?"}]}')
    outcome = asyncio.run(directory.tools.run("delegate_answer", arguments, context))
    assert outcome.output == "You asked: When do you open? (CA1, del_1)"

    for name, expected in (("answer_slowly", "Nine to five."), ("answer_nothing", None)):
        other = load_directory({"agent": {**LIVE, "live_delegation": "client",
                                          "backend": f"{backends}:{name}"}}, {})
        outcome = asyncio.run(other.tools.run(f"delegate_{name}", arguments, context))
        assert outcome.ok is (expected is not None)
        assert outcome.output == expected or '"error"' in outcome.output
