"""The agents of a deployment: profiles by name, which phone number reaches which, and their tools.

Owns reading the agent file's agent part. Two shapes are accepted:

- one agent: its settings at the top level or under `[agent]`;
- several: `[agents.NAME]` tables, `[numbers]` mapping E.164 numbers to agent names, and
  `default_agent` for every other number.

`tools_module` names the user's module of `@tool` functions; an agent's `tools` list picks from
them and from the built-ins (`end_call`, `transfer_call`); an agent with `handoffs` also gets
`switch_agent`, which hands the call to one of the agents it names. Environment variables
(`CALLBRIDGE_VOICE`, …) override the default agent only. After the call: `analysis_fields`
(name → JSON Schema fragment), `webhook_url` and `webhook_secret` (default, for every agent:
`CALLBRIDGE_WEBHOOK_SECRET`). Every mistake is a one-line `ConfigError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from callbridge.core.agent import (
    BUILTIN_TOOLS,
    DEFAULT_BACKEND_MODEL,
    AgentProfile,
    LiveOptions,
)
from callbridge.core.live_config import backend_tool_name, is_live_model
from callbridge.errors import ConfigError
from callbridge.structured_outputs import check_fragment
from callbridge.tools import ToolRegistry, load_tools_module
from callbridge.tools.delegation import backend_tool

TURN_DETECTIONS = ("server_vad", "semantic_vad", "none")
ENV_OVERRIDES = (("model", "CALLBRIDGE_MODEL"), ("voice", "CALLBRIDGE_VOICE"),
                 ("instructions", "CALLBRIDGE_INSTRUCTIONS"),
                 ("greeting", "CALLBRIDGE_GREETING"),
                 ("turn_detection", "CALLBRIDGE_TURN_DETECTION"),
                 ("audio_format", "CALLBRIDGE_AUDIO_FORMAT"),
                 ("live_delegation", "CALLBRIDGE_LIVE_DELEGATION"),
                 ("backend_model", "CALLBRIDGE_LIVE_BACKEND_MODEL"),
                 ("backend", "CALLBRIDGE_LIVE_BACKEND"))
FILE_KEYS = frozenset({"agent", "agents", "numbers", "default_agent", "tools_module", "apology"})
_DERIVED = frozenset({"name", "tools", "builtin_tools", "tool_fillers", "live"})
# GPT-Live settings (a `gpt-live*` model); they become the profile's `LiveOptions`.
LIVE_KEYS = frozenset({"live_delegation", "backend_model", "backend_instructions", "backend"})
# Settings only the Realtime API has: on a GPT-Live agent they would be silently half-applied,
# so setting one there is a start-up error (GPT-Live has no turn detection, transcribes by
# itself and speaks μ-law only on a phone line).
REALTIME_ONLY = frozenset({"turn_detection", "vad_threshold", "vad_prefix_padding_ms",
                           "vad_silence_duration_ms", "semantic_vad_eagerness",
                           "interrupt_response", "transcription_model", "language"})
_SETTABLE = frozenset(f.name for f in fields(AgentProfile)) - _DERIVED
_TUPLES = frozenset({"handoffs"})
_FLOATS = frozenset({"max_call_s", "warn_before_s", "wrap_up_before_s", "idle_prompt_s",
                     "idle_hangup_s", "cost_cap_usd", "filler_after_s", "dtmf_pause_s",
                     "vad_threshold"})


@dataclass(frozen=True)
class AgentDirectory:
    """Agents by name, the number → agent map, and the tool registry they draw on."""

    agents: dict[str, AgentProfile]
    numbers: dict[str, str]
    default: str
    tools: ToolRegistry

    @property
    def default_profile(self) -> AgentProfile:
        return self.agents[self.default]

    def for_number(self, number: str) -> AgentProfile:
        """The agent answering calls to `number` (the default agent for unlisted numbers)."""
        return self.agents[self.numbers.get(number, self.default)]

    def named(self, name: str | None) -> AgentProfile:
        """The agent called `name` (None: the default). Raises ConfigError if there is none."""
        if name is None:
            return self.default_profile
        try:
            return self.agents[name]
        except KeyError:
            known = ", ".join(sorted(self.agents))
            raise ConfigError(f"there is no agent {name!r}; the agents are: {known}") from None

    def handoff_targets(self, profile: AgentProfile) -> dict[str, AgentProfile]:
        """Every agent a call answered by `profile` can reach by hand-offs, directly or through
        other agents (A → B → C, and back to A): each may hand on to its own targets."""
        reached: dict[str, AgentProfile] = {}
        waiting = list(profile.handoffs)
        while waiting:
            name = waiting.pop()
            if name not in reached:
                reached[name] = self.agents[name]
                waiting += self.agents[name].handoffs
        return reached


def load_directory(file_values: Mapping[str, Any], env: Mapping[str, str]) -> AgentDirectory:
    """The directory described by a parsed agent file (may be empty) and the environment."""
    registry = _registry(file_values.get("tools_module"))
    if "agents" in file_values:
        tables = file_values["agents"]
        if not isinstance(tables, Mapping) or not tables:
            raise ConfigError("agent file: [agents] must hold at least one [agents.NAME] table")
        default = str(file_values.get("default_agent") or next(iter(tables)))
    else:
        single = file_values.get("agent", {k: v for k, v in file_values.items()
                                           if k not in FILE_KEYS})
        tables, default = {"default": single}, "default"
    agents: dict[str, AgentProfile] = {}
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"agent file: agent {name!r} must be a table of settings")
        overrides = env if name == default else {}
        agents[str(name)] = _after_call(_profile(str(name), table, overrides, registry), env)
    if default not in agents:
        raise ConfigError(f"agent file: default_agent {default!r} is not one of the agents")
    _register_backends(agents, registry)
    numbers = _numbers(file_values.get("numbers", {}), agents)
    for profile in agents.values():
        for target in profile.handoffs:
            if target not in agents:
                raise ConfigError(f"agent {profile.name!r}: handoffs names an unknown agent "
                                  f"{target!r}")
    return AgentDirectory(agents, numbers, default, registry)


def _register_backends(agents: Mapping[str, AgentProfile], registry: ToolRegistry) -> None:
    """Each client delegation backend, loaded once, as the tool its delegations call."""
    for spec in sorted({p.live.backend for p in agents.values() if p.live.backend}):
        tool_name = backend_tool_name(spec)
        if registry.get(tool_name) is not None:
            raise ConfigError(f"backend {spec!r}: another tool or backend is already called "
                              f"{tool_name!r}; rename the function")
        registry.add(backend_tool(spec))


def _registry(module: object) -> ToolRegistry:
    if module is None or module == "":
        return ToolRegistry()
    if not isinstance(module, str):
        raise ConfigError("agent file: tools_module must be a module name like 'mytools'")
    return ToolRegistry(load_tools_module(module))


def _profile(name: str, table: Mapping[str, Any], env: Mapping[str, str],
             registry: ToolRegistry) -> AgentProfile:
    for key in table:
        if not isinstance(key, str):
            raise ConfigError(f"agent {name!r}: setting name {key!r} must be text")
    unknown = sorted(set(table) - _SETTABLE - LIVE_KEYS - {"tools", "apology"})
    if unknown:
        raise ConfigError(f"agent {name!r}: unknown setting(s) {', '.join(map(repr, unknown))}")
    values: dict[str, Any] = {k: v for k, v in table.items() if k in _SETTABLE | LIVE_KEYS}
    for key, variable in ENV_OVERRIDES:
        if env.get(variable):
            values[key] = env[variable]
    values["live"] = _live_options(name, values, bool(table.get("tools")))
    for key in _TUPLES & values.keys():
        if not _names(values[key]):
            raise ConfigError(f"agent {name!r}: {key} must be a list of agent names")
        values[key] = tuple(values[key])
    for key in _FLOATS & values.keys():
        if values[key] is not None and not isinstance(values[key], int | float):
            raise ConfigError(f"agent {name!r}: {key} must be a number, not {values[key]!r}")
    if values.get("audio_format", "pcmu") not in ("pcmu", "pcm16"):
        raise ConfigError(f"agent {name!r}: audio_format must be pcmu or pcm16, not "
                          f"{values['audio_format']!r}")
    if values.get("turn_detection", "server_vad") not in TURN_DETECTIONS:
        raise ConfigError(f"agent {name!r}: turn_detection must be one of "
                          f"{', '.join(TURN_DETECTIONS)}, not {values['turn_detection']!r}")
    for key in ("transfer_targets",):
        if key in values and not isinstance(values[key], Mapping):
            raise ConfigError(f"agent {name!r}: {key} must be a table of name = number")
    values.update(_tools(name, table.get("tools", []), registry))
    try:
        return replace(AgentProfile(name=name), **values)
    except TypeError as exc:
        raise ConfigError(f"agent {name!r}: invalid settings: {exc}") from exc


def _live_options(name: str, values: dict[str, Any], has_tools: bool) -> LiveOptions:
    """Take the GPT-Live keys out of `values` as `LiveOptions`, refusing settings that do not
    apply to the agent's API (one-line `ConfigError`)."""
    live = {key: values.pop(key) for key in LIVE_KEYS & values.keys()}
    model = values.get("model", AgentProfile().model)
    if not isinstance(model, str) or not model:
        raise ConfigError(f"agent {name!r}: model must be a model name, not {model!r}")
    if not is_live_model(model):
        if live:
            raise ConfigError(f"agent {name!r}: {', '.join(sorted(live))} only apply to a "
                              f"gpt-live model, not {model!r}")
        return LiveOptions()
    realtime_only = sorted(REALTIME_ONLY & values.keys())
    if values.get("audio_format", "pcmu") != "pcmu":
        realtime_only.append("audio_format")
    if realtime_only:
        raise ConfigError(f"agent {name!r}: {', '.join(realtime_only)} only apply to the "
                          f"Realtime API, not to the GPT-Live model {model!r}")
    for key, value in live.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"agent {name!r}: {key} must be text, not {value!r}")
    delegation = live.get("live_delegation", "responses")
    if delegation not in ("responses", "client"):
        raise ConfigError(f"agent {name!r}: live_delegation must be responses or client, not "
                          f"{delegation!r}")
    if delegation == "client":
        # Client delegation has no tool channel: every question goes to the backend.
        wrong = sorted({"backend_model", "backend_instructions"} & live.keys())
        if has_tools:
            wrong.append("tools")
        if wrong:
            raise ConfigError(f"agent {name!r}: {', '.join(wrong)} only apply to "
                              "live_delegation = responses; with client delegation the "
                              "backend answers everything")
        if "backend" not in live:
            raise ConfigError(f"agent {name!r}: live_delegation = client needs backend = "
                              "'package.module:function', the function that answers")
        return LiveOptions(delegation="client", backend=live["backend"])
    if "backend" in live:
        raise ConfigError(f"agent {name!r}: backend only applies to live_delegation = client")
    return LiveOptions(delegation="responses",
                       backend_model=live.get("backend_model", DEFAULT_BACKEND_MODEL),
                       backend_instructions=live.get("backend_instructions"))


def _after_call(profile: AgentProfile, env: Mapping[str, str]) -> AgentProfile:
    """Check the post-call settings: `analysis_fields` must be schemas Structured Outputs
    accepts; a `webhook_url` needs a secret (its own or `CALLBRIDGE_WEBHOOK_SECRET`)."""
    name = profile.name
    if not isinstance(profile.analysis_fields, Mapping):
        raise ConfigError(f"agent {name!r}: analysis_fields must be a table of "
                          "name = { type = …, description = … }")
    checked: dict[str, dict[str, Any]] = {}
    for field_name, fragment in profile.analysis_fields.items():
        if not isinstance(field_name, str) or not field_name.isidentifier():
            raise ConfigError(f"agent {name!r}: analysis_fields name {field_name!r} must be "
                              "letters, digits and underscores")
        try:
            check_fragment(fragment, f"analysis_fields.{field_name}")
        except ValueError as exc:
            raise ConfigError(f"agent {name!r}: {exc}") from None
        checked[field_name] = json.loads(json.dumps(fragment))  # plain dicts and lists
    url = profile.webhook_url or None
    if url is not None and not _http_url(url):
        raise ConfigError(f"agent {name!r}: webhook_url={url!r} is not an http or https URL")
    secret = profile.webhook_secret or env.get("CALLBRIDGE_WEBHOOK_SECRET") or None
    if url is not None and secret is None:
        raise ConfigError(f"agent {name!r}: webhook_url needs a webhook_secret (or set "
                          "CALLBRIDGE_WEBHOOK_SECRET) to sign its events")
    return replace(profile, analysis_fields=checked, webhook_url=url, webhook_secret=secret)


def _names(value: object) -> TypeGuard[list[str] | tuple[str, ...]]:
    return isinstance(value, list | tuple) and all(isinstance(n, str) for n in value)


def _http_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:  # an unclosed IPv6 bracket, 'http://[x'
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _tools(agent: str, names: object, registry: ToolRegistry) -> dict[str, Any]:
    if not _names(names):
        raise ConfigError(f"agent {agent!r}: tools must be a list of tool names")
    builtin = tuple(n for n in names if n in BUILTIN_TOOLS)
    custom = [n for n in names if n not in BUILTIN_TOOLS]
    missing = [n for n in custom if registry.get(n) is None]
    if missing:
        available = ", ".join([*registry.names, *BUILTIN_TOOLS])
        raise ConfigError(f"agent {agent!r}: unknown tool(s) {', '.join(missing)}; "
                          f"available: {available}")
    fillers = {}
    for tool_name in custom:
        found = registry.get(tool_name)
        if found is not None and found.filler:
            fillers[tool_name] = found.filler
    return {"builtin_tools": builtin, "tools": tuple(registry.definitions(custom)),
            "tool_fillers": fillers}


def _numbers(table: object, agents: Mapping[str, AgentProfile]) -> dict[str, str]:
    if not isinstance(table, Mapping):
        raise ConfigError("agent file: [numbers] must map phone numbers to agent names")
    numbers = {str(number): str(agent) for number, agent in table.items()}
    for number, agent in numbers.items():
        if agent not in agents:
            raise ConfigError(f"agent file: number {number!r} names an unknown agent {agent!r}")
    return numbers
