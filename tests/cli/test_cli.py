"""The `callbridge` command: configuration errors are one line; simulate places a real call."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from callbridge.audio.wav import write_wav_ulaw_as_pcm16
from callbridge.simulate import simulate
from callbridge.testing.speech import speechlike


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("CALLBRIDGE_", "TWILIO_", "OPENAI_"))}
    return subprocess.run([sys.executable, "-m", "callbridge", *args], env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("env", "missing"), [
    ({}, "CALLBRIDGE_PUBLIC_URL"),
    ({"CALLBRIDGE_PUBLIC_URL": "https://v.example.com"}, "TWILIO_AUTH_TOKEN"),
    ({"CALLBRIDGE_PUBLIC_URL": "https://v.example.com", "TWILIO_AUTH_TOKEN": "x"},
     "OPENAI_API_KEY"),
    ({"CALLBRIDGE_PUBLIC_URL": "ftp://v.example.com"}, "CALLBRIDGE_PUBLIC_URL"),
])
def test_serve_stops_with_one_clear_line_when_a_setting_is_missing(
    env: dict[str, str], missing: str
) -> None:
    """A missing or invalid required setting: exit 2, one line naming it, no traceback."""
    result = run_cli("serve", "--port", "0", env={"DATABASE_URL": "none", **env})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert missing in lines[0]
    assert "Traceback" not in result.stderr


def test_simulate_places_a_call_and_writes_what_the_caller_heard(tmp_path: Path) -> None:
    """`simulate --wav` with no API key: greeting, the caller's turn, a reply, and a WAV out."""
    caller_wav = tmp_path / "caller.wav"
    write_wav_ulaw_as_pcm16(caller_wav, speechlike(1.0, seed=9))
    out = tmp_path / "heard.wav"
    report = io.StringIO()
    result = asyncio.run(simulate(wav=caller_wav, out=out, env={}, stdout=report))
    text = report.getvalue()
    assert "local fake model" in text
    assert "agent: Hello, you've reached the callbridge demo line." in text
    assert out.stat().st_size > 44 + 2 * 8000 * 3  # several seconds of 16-bit audio
    assert result.greeting_heard_at is not None
    assert result.greeting_heard_at < 1.0
    assert len(result.caller.turn_latencies) == 1
    assert result.caller.violations == []


def test_serve_refuses_an_out_of_date_schema_and_db_upgrade_fixes_it(tmp_path: Path) -> None:
    """An empty database: serve stops with one line naming the command; after it, db current
    reports the latest revision."""
    env = {"CALLBRIDGE_PUBLIC_URL": "https://v.example.com", "TWILIO_AUTH_TOKEN": "x",
           "OPENAI_API_KEY": "sk-test", "DATABASE_URL": f"sqlite:///{tmp_path / 'calls.db'}"}
    refused = run_cli("serve", "--port", "0", env=env)
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert "callbridge db upgrade" in line
    assert run_cli("db", "current", env=env).returncode == 1
    upgraded = run_cli("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    current = run_cli("db", "current", env=env)
    assert current.returncode == 0
    assert "at 0004, latest is 0004" in current.stdout
