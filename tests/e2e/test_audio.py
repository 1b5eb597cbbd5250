"""The PCM16 24 kHz audio path end to end, barge-in included."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from callbridge.audio.g711 import ulaw_to_pcm16
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
