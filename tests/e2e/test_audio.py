"""The PCM16 24 kHz audio path end to end, barge-in included."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest

from callbridge.audio.g711 import ulaw_to_pcm16
from callbridge.testing.fake_realtime import Reply
from callbridge.testing.speech import speechlike
from tests.e2e.harness import connected_call, harness
from tests.e2e.test_barge_in import SLACK_MS, heard_ms_before_each_clear, replies, truncates

pytestmark = pytest.mark.e2e


async def test_a_pcm16_agent_is_heard_and_interrupted_with_an_exact_truncate() -> None:
    """μ-law → 24 kHz PCM → model → 24 kHz PCM → μ-law; barge-in truncates what was heard."""
    async with harness(replies(3, seed=21), speed=1.5,
                       env={"CALLBRIDGE_AUDIO_FORMAT": "pcm16"}) as h:
        async with await connected_call(h) as caller:
            await caller.say(speechlike(0.8, seed=5))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            await asyncio.sleep(1.3)
            await caller.say(speechlike(0.6, seed=6))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            await caller.hang_up()
        connection = h.fake.connections[0]
        assert connection.session["audio"]["input"]["format"] == {"type": "audio/pcm",
                                                                   "rate": 24000}
        assert connection.session["audio"]["output"]["format"] == {"type": "audio/pcm",
                                                                    "rate": 24000}
        [truncate] = truncates(h.fake)
        [heard] = heard_ms_before_each_clear(caller)
        assert heard - SLACK_MS <= truncate["audio_end_ms"] <= heard + 1  # type: ignore[operator]
        assert h.fake.truncate_errors == 0
        assert h.fake.violations == []
        assert caller.violations == []
        played = ulaw_to_pcm16(caller.heard()).astype(np.float64)
        assert np.sqrt(np.mean(played**2)) > 500, "real audio came through both resamplers"


async def test_the_as_heard_recording_puts_clicks_where_they_happened(tmp_path: Path) -> None:
    """A click in the caller's speech and one in the agent's reply land at their times ±20 ms;
    the file is served only through the API's signed link."""
    from callbridge.audio.g711 import BYTES_PER_MS
    from tests.databases import fresh_database

    reply = bytearray(speechlike(1.5, seed=9, level=0.05))
    reply[6000] = 0x80  # a full-scale click 750 ms into the reply
    spoken = bytearray(speechlike(1.0, seed=8))
    spoken[4000] = 0x80  # and one 500 ms into what the caller says
    agents = tmp_path / "agents.toml"
    agents.write_text("[agent]\nrecord_audio = true\n")
    env = {"CALLBRIDGE_AGENT_FILE": str(agents), "CALLBRIDGE_RECORDINGS_DIR": str(tmp_path),
           "CALLBRIDGE_API_TOKEN": "api", "CALLBRIDGE_JOURNAL": str(tmp_path / "j.jsonl")}
    async for url in fresh_database("sqlite", tmp_path):
        async with harness([Reply(text="Here you go.", audio=bytes(reply))], env=env,
                           database_url=url) as h:
            async with await connected_call(h) as caller:
                await caller.say(bytes(spoken))
                await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
                await caller.wait_until_agent_quiet(quiet_for=0.3, timeout=5.0)
                await caller.hang_up()
            await asyncio.wait_for(h.bridge_of(caller).finished.wait(), 5.0)
            assert h.state.writer is not None
            await h.state.writer.flush()
            async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
                link = (await client.get(f"/api/calls/{caller.call_sid}/recording",
                                         headers={"Authorization": "Bearer api"})).json()
                wav = await client.get(link["url"])
                forged = await client.get(link["url"].replace("signature=", "signature=0"))
                unsigned = await client.get(f"/recordings/{caller.call_sid}.wav")
    assert wav.status_code == 200
    assert (forged.status_code, unsigned.status_code) == (403, 403)
    path = tmp_path / "heard.wav"
    path.write_bytes(wav.content)
    with wave.open(str(path)) as file:
        assert (file.getnchannels(), file.getframerate()) == (2, 8000)
        frames = np.frombuffer(file.readframes(file.getnframes()), dtype="<i2").reshape(-1, 2)
    caller_click_ms = int(np.argmax(np.abs(frames[:, 0]))) / BYTES_PER_MS
    agent_click_ms = int(np.argmax(np.abs(frames[:, 1]))) / BYTES_PER_MS
    said_at_ms = caller.utterances[0][0] * 1000 + 500
    heard_at_ms = (caller.heard().index(bytes([0x80])) / 8000 - 0.02) * 1000
    assert abs(caller_click_ms - said_at_ms) <= 20
    assert abs(agent_click_ms - heard_at_ms) <= 20
