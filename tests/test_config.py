"""Settings from the environment and the agent file."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.config import load_settings
from callbridge.errors import ConfigError

REQUIRED = {
    "CALLBRIDGE_PUBLIC_URL": "https://voice.example.com",
    "TWILIO_AUTH_TOKEN": "token",
    "OPENAI_API_KEY": "sk-test",
}


def test_defaults_point_at_openai_with_the_documented_model() -> None:
    """Without overrides: OpenAI's GA endpoint, gpt-realtime-2.1, marin, server VAD."""
    settings = load_settings(REQUIRED)
    assert settings.realtime_url == "wss://api.openai.com/v1/realtime?model=gpt-realtime-2.1"
    assert settings.agent.voice == "marin"
    assert settings.agent.turn_detection == "server_vad"
    assert settings.stream_url == "wss://voice.example.com/twilio/stream"
    assert settings.twilio_api_url == "https://api.twilio.com"


def test_environment_variables_set_the_agent() -> None:
    """The documented variable names configure model, voice, instructions and greeting."""
    settings = load_settings({**REQUIRED, "CALLBRIDGE_MODEL": "gpt-realtime-2.1-mini",
                              "CALLBRIDGE_VOICE": "cedar", "CALLBRIDGE_INSTRUCTIONS": "Be brief.",
                              "CALLBRIDGE_GREETING": "Hi!",
                              "CALLBRIDGE_OPENAI_URL": "ws://127.0.0.1:9/v1/realtime",
                              "CALLBRIDGE_TWILIO_API_URL": "http://127.0.0.1:9"})
    assert (settings.agent.model, settings.agent.voice) == ("gpt-realtime-2.1-mini", "cedar")
    assert settings.agent.instructions == "Be brief."
    assert settings.agent.greeting == "Hi!"
    assert settings.realtime_url == "ws://127.0.0.1:9/v1/realtime?model=gpt-realtime-2.1-mini"
    assert settings.twilio_api_url == "http://127.0.0.1:9"


def test_a_local_upstream_needs_no_api_key() -> None:
    """OPENAI_API_KEY is required only when the upstream is OpenAI itself."""
    env = {**REQUIRED, "OPENAI_API_KEY": "", "CALLBRIDGE_OPENAI_URL": "ws://127.0.0.1:9/rt"}
    assert load_settings(env).openai_api_key == ""
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        load_settings({**REQUIRED, "OPENAI_API_KEY": ""})


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_an_agent_file_configures_the_agent_and_the_environment_wins(
    tmp_path: Path, suffix: str
) -> None:
    """TOML and YAML agent files both work; an environment variable overrides the file."""
    path = tmp_path / f"agent{suffix}"
    if suffix == ".toml":
        path.write_text('[agent]\nvoice = "ash"\ngreeting = "Hello from the file"\n'
                        'turn_detection = "semantic_vad"\napology = "Sorry!"\n')
    else:
        path.write_text("agent:\n  voice: ash\n  greeting: Hello from the file\n"
                        "  turn_detection: semantic_vad\n  apology: Sorry!\n")
    settings = load_settings({**REQUIRED, "CALLBRIDGE_AGENT_FILE": str(path),
                              "CALLBRIDGE_VOICE": "verse"})
    assert settings.agent.voice == "verse"
    assert settings.agent.greeting == "Hello from the file"
    assert settings.agent.turn_detection == "semantic_vad"
    assert settings.apology == "Sorry!"
    assert settings.agent.session()["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"


@pytest.mark.parametrize(("value", "stall_s"), [(None, 3.0), ("7", 7.0), ("0", None)])
def test_the_upstream_stall_limit_is_seconds_and_0_turns_it_off(value: str | None,
                                                                stall_s: float | None) -> None:
    env = {**REQUIRED, **({"CALLBRIDGE_UPSTREAM_STALL_S": value} if value else {})}
    assert load_settings(env).timing.upstream_stall_s == stall_s


@pytest.mark.parametrize(("env", "message"), [
    ({"CALLBRIDGE_TURN_DETECTION": "push_to_talk"}, "turn_detection"),
    ({"CALLBRIDGE_CHUNK_MS": "30"}, "CALLBRIDGE_CHUNK_MS"),
    ({"CALLBRIDGE_LEAD_MS": "lots"}, "CALLBRIDGE_LEAD_MS"),
    ({"CALLBRIDGE_UPSTREAM_STALL_S": "-1"}, "CALLBRIDGE_UPSTREAM_STALL_S"),
    ({"CALLBRIDGE_OPENAI_URL": "https://api.openai.com/v1/realtime"}, "CALLBRIDGE_OPENAI_URL"),
    ({"CALLBRIDGE_PUBLIC_URL": "https://v.example.com?x=1"}, "query string"),
    ({"CALLBRIDGE_AGENT_FILE": "/nonexistent/agent.toml"}, "cannot read"),
])
def test_invalid_settings_are_one_line_errors(env: dict[str, str], message: str) -> None:
    """Every invalid setting is reported in a single line that names it."""
    with pytest.raises(ConfigError, match=message) as error:
        load_settings({**REQUIRED, **env})
    assert "\n" not in str(error.value)


def test_an_unknown_agent_file_setting_is_refused(tmp_path: Path) -> None:
    """A typo in the agent file is an error, not silently ignored."""
    path = tmp_path / "agent.toml"
    path.write_text('voise = "ash"\n')
    with pytest.raises(ConfigError, match="voise"):
        load_settings({**REQUIRED, "CALLBRIDGE_AGENT_FILE": str(path)})
