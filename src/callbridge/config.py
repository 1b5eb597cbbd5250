"""Settings: the environment (names fixed by the documentation) plus an optional agent file.

Owns reading and checking configuration, once, at start-up. Precedence: environment variable, then
the agent file (TOML or YAML, `CALLBRIDGE_AGENT_FILE`), then the defaults. A missing or invalid
setting raises `ConfigError` whose message is one line naming the variable and what to do.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from callbridge.agents import AgentDirectory, load_directory
from callbridge.core.agent import AgentProfile
from callbridge.core.live_config import is_live_model
from callbridge.core.session import Timing
from callbridge.core.twiml import DEFAULT_APOLOGY
from callbridge.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///callbridge.db"
DEFAULT_OPENAI_URL = "wss://api.openai.com/v1/realtime"
DEFAULT_LIVE_URL = "wss://api.openai.com/v1/live/sessions"
DEFAULT_TWILIO_API_URL = "https://api.twilio.com"
DEFAULT_ANALYSIS_URL = "https://api.openai.com/v1"  # the openai SDK's default base URL
DEFAULT_ANALYSIS_MODEL = "gpt-5.4-mini"
_TIMING = Timing()


@dataclass(frozen=True)
class Settings:
    """Everything the server needs, validated."""

    public_url: str = "http://127.0.0.1:8080"
    twilio_auth_token: str = ""
    twilio_account_sid: str = ""
    twilio_api_url: str = DEFAULT_TWILIO_API_URL
    openai_api_key: str = ""
    openai_url: str = DEFAULT_OPENAI_URL
    live_url: str = DEFAULT_LIVE_URL  # GPT-Live: no query string, the model goes in session.start
    directory: AgentDirectory = field(default_factory=lambda: load_directory({}, {}))
    timing: Timing = field(default_factory=Timing)
    apology: str = DEFAULT_APOLOGY
    stream_token_ttl: float = 30.0
    upstream_open_timeout: float = 5.0
    database_url: str | None = DEFAULT_DATABASE_URL  # None: no call record
    journal_path: str = "callbridge-journal.jsonl"
    instance_id: str = "callbridge"
    api_token: str = ""
    console_password: str = ""  # signs in to the console instead of the API token
    caller_id: str = ""  # the From number of outbound calls
    token_secret: str = ""  # keys stream tokens; default: derived from TWILIO_AUTH_TOKEN
    fallback_url: str = ""  # where Twilio goes when this server does not answer
    outbound_cps: float = 1.0
    max_calls: int | None = None
    overflow_number: str = ""  # where refused calls go (else a busy message)
    drain_seconds: float = 120.0
    recordings_dir: str = "recordings"  # as-heard recordings (agents with record_audio)
    max_body_bytes: int = 64 * 1024  # larger HTTP request bodies are refused with 413
    # after the call (callbridge.analytics)
    analysis_model: str = DEFAULT_ANALYSIS_MODEL
    analysis_url: str = DEFAULT_ANALYSIS_URL  # a Chat Completions base URL
    job_attempts: int = 5  # a post-call job is dead after this many failed attempts
    # capture of whole calls for `callbridge replay` (callbridge.capture); "" is off
    capture_dir: str = ""
    capture_max_bytes: int = 64 * 1024 * 1024  # per call; a longer call's capture is cut
    capture_max_age_days: int = 7  # older captures are deleted when a new one is written
    sweep_seconds: float = 5.0  # how often an instance looks for dead instances' calls

    @property
    def agent(self) -> AgentProfile:
        """The default agent (the only one, unless the agent file names several)."""
        return self.directory.default_profile

    @property
    def stream_url(self) -> str:
        """The `wss://` URL Twilio connects the media stream to."""
        parts = urlsplit(self.public_url.rstrip("/"))
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path}/twilio/stream"

    @property
    def realtime_url(self) -> str:
        """The default agent's Realtime WebSocket URL (`?model=` is its one query parameter)."""
        return self.realtime_url_for(self.agent)

    def realtime_url_for(self, agent: AgentProfile) -> str:
        """The model socket's URL for `agent`: GPT-Live's endpoint (no query string) for a
        `gpt-live*` model, else Realtime's with `?model=`."""
        if is_live_model(agent.model):
            return self.live_url
        return f"{self.openai_url}?model={agent.model}"

    @property
    def uses_openai(self) -> bool:
        """True when an agent's upstream is OpenAI itself (and so needs a real API key)."""
        return any(urlsplit(self.realtime_url_for(agent)).hostname == "api.openai.com"
                   for agent in self.directory.agents.values())


def load_settings(env: Mapping[str, str] | None = None, *, serving: bool = True) -> Settings:
    """Settings from `env` (default `os.environ`). With `serving`, the server's required settings
    must be present."""
    env = os.environ if env is None else env
    file_values = _read_agent_file(env.get("CALLBRIDGE_AGENT_FILE", ""))
    directory = load_directory(file_values, env)
    settings = Settings(
        public_url=_url(env, "CALLBRIDGE_PUBLIC_URL", Settings.public_url, ("http", "https")),
        twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
        twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
        twilio_api_url=_url(env, "CALLBRIDGE_TWILIO_API_URL", DEFAULT_TWILIO_API_URL,
                            ("http", "https")),
        openai_api_key=env.get("OPENAI_API_KEY", ""),
        openai_url=_url(env, "CALLBRIDGE_OPENAI_URL", DEFAULT_OPENAI_URL, ("ws", "wss")),
        live_url=_url(env, "CALLBRIDGE_LIVE_URL", DEFAULT_LIVE_URL, ("ws", "wss")),
        directory=directory,
        timing=Timing(
            chunk_ms=_int(env, "CALLBRIDGE_CHUNK_MS", _TIMING.chunk_ms, 20, 200, step=20),
            lead_ms=_int(env, "CALLBRIDGE_LEAD_MS", _TIMING.lead_ms, 40, 5000),
            recycle_after_s=float(_int(env, "CALLBRIDGE_SESSION_RECYCLE_S",
                                       int(_TIMING.recycle_after_s), 1, 3600)),
            upstream_stall_s=float(_int(env, "CALLBRIDGE_UPSTREAM_STALL_S",
                                        int(_TIMING.upstream_stall_s or 0), 0, 60)) or None,
        ),
        stream_token_ttl=float(_int(env, "CALLBRIDGE_STREAM_TOKEN_TTL", 30, 1, 600)),
        database_url=_database_url(env),
        journal_path=env.get("CALLBRIDGE_JOURNAL") or "callbridge-journal.jsonl",
        instance_id=env.get("CALLBRIDGE_INSTANCE_ID") or socket.gethostname() or "callbridge",
        api_token=env.get("CALLBRIDGE_API_TOKEN", ""),
        console_password=env.get("CALLBRIDGE_CONSOLE_PASSWORD", ""),
        caller_id=env.get("CALLBRIDGE_CALLER_ID", ""),
        token_secret=env.get("CALLBRIDGE_TOKEN_SECRET", ""),
        fallback_url=env.get("CALLBRIDGE_FALLBACK_URL", ""),
        outbound_cps=float(_int(env, "CALLBRIDGE_OUTBOUND_CPS", 1, 1, 100)),
        max_calls=_int(env, "CALLBRIDGE_MAX_CALLS", 0, 0, 100_000) or None,
        overflow_number=env.get("CALLBRIDGE_OVERFLOW_NUMBER", ""),
        drain_seconds=float(_int(env, "CALLBRIDGE_DRAIN_SECONDS", 120, 0, 86_400)),
        recordings_dir=env.get("CALLBRIDGE_RECORDINGS_DIR") or "recordings",
        max_body_bytes=_int(env, "CALLBRIDGE_MAX_BODY_BYTES", 64 * 1024, 1024, 64 * 1024 * 1024),
        analysis_model=env.get("CALLBRIDGE_ANALYSIS_MODEL") or DEFAULT_ANALYSIS_MODEL,
        analysis_url=_url(env, "CALLBRIDGE_ANALYSIS_URL", DEFAULT_ANALYSIS_URL,
                          ("http", "https")),
        job_attempts=_int(env, "CALLBRIDGE_JOB_ATTEMPTS", 5, 1, 100),
        capture_dir=env.get("CALLBRIDGE_CAPTURE_DIR", ""),
        capture_max_bytes=_int(env, "CALLBRIDGE_CAPTURE_MAX_MB", 64, 1, 4096) * 1024 * 1024,
        capture_max_age_days=_int(env, "CALLBRIDGE_CAPTURE_MAX_AGE_DAYS", 7, 1, 3650),
        sweep_seconds=float(_int(env, "CALLBRIDGE_SWEEP_S", 5, 1, 300)),
        apology=(env.get("CALLBRIDGE_APOLOGY") or file_values.get("apology")
                 or _table(file_values.get("agent")).get("apology") or DEFAULT_APOLOGY),
    )
    if serving:
        _require_serving(env, settings)
    return settings


# The part of SQLAlchemy's URL grammar settings check; the store parses the rest when it opens.
_DATABASE_URL = re.compile(r"^(?P<scheme>[\w+]+)://")


def _database_url(env: Mapping[str, str]) -> str | None:
    value = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if value.lower() == "none":
        return None
    shape = _DATABASE_URL.match(value)
    if shape is None:
        raise ConfigError(f"DATABASE_URL is not a database URL: {value!r} has no scheme://")
    scheme = shape["scheme"].split("+", 1)[0]
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ConfigError(f"DATABASE_URL must be sqlite:/// or postgresql://, not {scheme}://")
    return value


def _require_serving(env: Mapping[str, str], settings: Settings) -> None:
    if not env.get("CALLBRIDGE_PUBLIC_URL"):
        raise ConfigError(
            "CALLBRIDGE_PUBLIC_URL is not set: set it to the https URL Twilio reaches this "
            "server at, e.g. https://voice.example.com"
        )
    if not settings.twilio_auth_token:
        raise ConfigError(
            "TWILIO_AUTH_TOKEN is not set: it is needed to check Twilio's request signatures"
        )
    if settings.uses_openai and not settings.openai_api_key:
        raise ConfigError(
            "OPENAI_API_KEY is not set: set it, or point CALLBRIDGE_OPENAI_URL at another "
            "Realtime server"
        )


def _table(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _read_agent_file(path: str) -> dict[str, Any]:
    if not path:
        return {}
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"CALLBRIDGE_AGENT_FILE {path}: cannot read it ({exc.strerror})") from exc
    try:
        data = tomllib.loads(text) if file.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        first_line = str(exc).splitlines()[0]
        raise ConfigError(f"CALLBRIDGE_AGENT_FILE {path}: not valid: {first_line}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"CALLBRIDGE_AGENT_FILE {path}: expected a table of settings")
    return data


def _url(env: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    value = env.get(name) or default
    try:
        parts = urlsplit(value)
    except ValueError:  # an unclosed IPv6 bracket, 'http://[x'
        raise ConfigError(f"{name}={value!r} is not a {' or '.join(schemes)} URL") from None
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(f"{name}={value!r} is not a {' or '.join(schemes)} URL")
    if parts.query:
        raise ConfigError(f"{name}={value!r} must not have a query string")
    return value.rstrip("/")


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int,
         step: int = 1) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high or value % step:
        raise ConfigError(f"{name}={value} must be between {low} and {high} in steps of {step}")
    return value
