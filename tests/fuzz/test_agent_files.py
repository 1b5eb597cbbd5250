"""Fuzzing configuration: agent-file tables of any shape into `agents.load_directory`, agent
files of any text (TOML and YAML) and any environment into `config.load_settings` — the only
exception that may escape is `ConfigError` (one line, printed at start-up).

`tools_module` is never fuzzed with arbitrary names: loading one imports it.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callbridge.agents import ENV_OVERRIDES, load_directory
from callbridge.config import load_settings
from callbridge.core.agent import AgentProfile
from callbridge.errors import ConfigError
from tests.fuzz.strategies import JSON_VALUES

SETTINGS = sorted({"model", "voice", "instructions", "greeting", "turn_detection", "vad_threshold",
                   "audio_format", "comfort_sound", "tools", "handoffs", "transfer_targets",
                   "max_call_s", "idle_prompt_s", "cost_cap_usd", "record", "language",
                   "analysis_fields", "webhook_url", "webhook_secret", "apology",
                   "dtmf_terminator", "interrupt_response"})
GOOD_VALUES = {
    "turn_detection": st.sampled_from(["server_vad", "semantic_vad", "none"]),
    "audio_format": st.sampled_from(["pcmu", "pcm16"]),
    "tools": st.lists(st.sampled_from(["end_call", "transfer_call", "nope"]), max_size=3),
    "handoffs": st.lists(st.sampled_from(["default", "billing", "sales"]), max_size=2),
    "max_call_s": st.floats(allow_nan=False) | st.integers(),
    "analysis_fields": st.dictionaries(st.sampled_from(["budget", "x y", "ok"]), st.just(
        {"type": "number", "description": "d"}) | JSON_VALUES, max_size=2),
    "webhook_url": st.sampled_from(["https://hooks.example.test/x", "ftp://x", "", "https://"]),
}
AGENT_TABLE = st.dictionaries(
    st.sampled_from(SETTINGS) | st.text(max_size=8),
    st.one_of(JSON_VALUES, *GOOD_VALUES.values()), max_size=5)
FILE_TABLES = st.fixed_dictionaries({}, optional={
    "agent": AGENT_TABLE | JSON_VALUES,
    "agents": st.dictionaries(
        st.sampled_from(["default", "billing", "sales"]) | st.text(max_size=5),
        AGENT_TABLE | JSON_VALUES, max_size=3) | JSON_VALUES,
    "numbers": st.dictionaries(st.sampled_from(["+15550002222", "x"]),
                               st.sampled_from(["default", "billing", "nobody"]) | JSON_VALUES,
                               max_size=2) | JSON_VALUES,
    "default_agent": st.sampled_from(["default", "billing", "nobody"]) | JSON_VALUES,
    "tools_module": st.sampled_from(["", "tests.faults.agent_tools", "tests.fuzz.no_such_module"])
    | st.none() | st.integers() | st.lists(st.text(max_size=3), max_size=2),
    "apology": JSON_VALUES,
}).flatmap(lambda table: AGENT_TABLE.map(lambda top: top | table))  # single-agent shape too


def one_line(error: ConfigError) -> bool:
    """ConfigError's contract: a message of one line, fit to print as is."""
    return "\n" not in str(error)


def loads_or_config_error(file_values: Mapping[str, Any], env: Mapping[str, str]) -> None:
    error: ConfigError | None = None
    try:
        directory = load_directory(file_values, env)
    except ConfigError as exc:
        error = exc
    if error is not None:
        assert one_line(error)
    else:
        assert isinstance(directory.default_profile, AgentProfile)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FILE_TABLES)
def test_an_agent_file_of_any_shape_loads_or_raises_config_error(
    file_values: dict[str, Any],
) -> None:
    """Tables of any settings and values: a directory, or a one-line ConfigError."""
    loads_or_config_error(file_values, {})


ENV_VALUES = st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
                     max_size=30)  # a real environment holds no NUL and no lone surrogates
VARIABLES = ["CALLBRIDGE_PUBLIC_URL", "TWILIO_AUTH_TOKEN", "OPENAI_API_KEY",
             "CALLBRIDGE_OPENAI_URL", "CALLBRIDGE_TWILIO_API_URL", "CALLBRIDGE_ANALYSIS_URL",
             "DATABASE_URL", "CALLBRIDGE_CHUNK_MS", "CALLBRIDGE_LEAD_MS",
             "CALLBRIDGE_STREAM_TOKEN_TTL", "CALLBRIDGE_MAX_CALLS", "CALLBRIDGE_OUTBOUND_CPS",
             "CALLBRIDGE_DRAIN_SECONDS", "CALLBRIDGE_JOB_ATTEMPTS", "CALLBRIDGE_MAX_BODY_BYTES",
             "CALLBRIDGE_SESSION_RECYCLE_S", *(variable for _, variable in ENV_OVERRIDES)]
ENVIRONMENTS = st.dictionaries(
    st.sampled_from(VARIABLES),
    ENV_VALUES | st.sampled_from(["https://voice.example.test", "wss://x.test/v1/realtime",
                                  "http://[x", "sqlite:///calls.db", "none", "40", "٤٠", "-1",
                                  "postgresql://u:p@127.0.0.1/db", "pcm16", "semantic_vad"]),
    max_size=6)


@settings(max_examples=400, deadline=None)
@given(ENVIRONMENTS, st.booleans())
def test_any_environment_loads_or_raises_config_error(
    env: dict[str, str], serving: bool,
) -> None:
    """Any values for the documented variables: settings, or a one-line ConfigError."""
    error: ConfigError | None = None
    try:
        load_settings(env, serving=serving)
    except ConfigError as exc:
        error = exc
    assert error is None or one_line(error)


TOML_TEXT = st.text(alphabet=string.printable, max_size=120) | st.sampled_from([
    '[agent]\nvoice = "cedar"\n', '[agents.a]\n[agents.b]\nhandoffs = ["a"]\n',
    'tools_module = "tests.faults.agent_tools"\n[agent]\ntools = ["slow_lookup"]\n',
    "[agent\n", "agent = 5\n", '[numbers]\n"+1" = "x"\n', "a = 1979-05-27T07:32:00Z\n"])
YAML_TEXT = st.text(alphabet=string.printable, max_size=120) | st.sampled_from([
    "agent: {voice: cedar}\n", "- 1\n- 2\n", "agent: !!binary aGk=\n",
    "agents: {a: {max_call_s: 2001-12-14}}\n", "agent: {handoffs: !!set {a, b}}\n",
    "{{{", "agent: &a [*a]\n", "default_agent: 5\nagents: {5: {}}\n"])


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["agents.toml", "agents.yaml"]), st.data())
def test_an_agent_file_of_any_text_loads_or_raises_config_error(
    tmp_path: Path, name: str, data: st.DataObject,
) -> None:
    """Any TOML or YAML text (dates, binary, sets, anchors): settings, or a ConfigError."""
    text = data.draw(TOML_TEXT if name.endswith(".toml") else YAML_TEXT)
    path = tmp_path / name
    path.write_text(text)
    error: ConfigError | None = None
    try:
        load_settings({"CALLBRIDGE_AGENT_FILE": str(path)}, serving=False)
    except ConfigError as exc:
        error = exc
    assert error is None or one_line(error)


@pytest.mark.parametrize("handoffs", [5, [["billing"]]], ids=["a-number", "a-nested-list"])
def test_handoffs_that_are_not_a_list_of_names_are_a_config_error(handoffs: object) -> None:
    """`handoffs = 5` is refused with a one-line ConfigError."""
    with pytest.raises(ConfigError):
        load_directory({"agent": {"handoffs": handoffs}}, {})


def test_a_webhook_url_that_is_not_text_is_a_config_error() -> None:
    """`webhook_url = 5` is refused with a one-line ConfigError."""
    with pytest.raises(ConfigError):
        load_directory({"agent": {"webhook_url": 5, "webhook_secret": "s"}}, {})


@pytest.mark.parametrize("variable", ["CALLBRIDGE_PUBLIC_URL", "CALLBRIDGE_OPENAI_URL"])
def test_a_url_with_an_unclosed_bracket_is_a_config_error(variable: str) -> None:
    """`CALLBRIDGE_PUBLIC_URL=http://[x` is refused with a one-line ConfigError."""
    with pytest.raises(ConfigError):
        load_settings({variable: "http://[x"}, serving=False)


@pytest.mark.parametrize("text", ["agent:\n  on: true\n", "agent:\n  1: x\n", "? \n"],
                         ids=["yaml-on", "a-number", "a-null"])
def test_a_setting_name_that_is_not_text_is_a_config_error(tmp_path: Path, text: str) -> None:
    """A YAML agent file whose setting name is a boolean, number or null: a ConfigError."""
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_settings({"CALLBRIDGE_AGENT_FILE": str(path)}, serving=False)


def test_an_unknown_setting_name_with_a_line_break_is_named_on_one_line() -> None:
    """The ConfigError for an unknown setting "a\\nb" is one line."""
    with pytest.raises(ConfigError) as error:
        load_directory({"agent": {"a\nb": 1}}, {})
    assert "\n" not in str(error.value)
