"""The softphone in the system Chromium, its microphone fed a WAV of espeak-ng speech: the
call takes the same path as a phone call (same session, same record, direction `browser`), the
model hears the speech, the page plays the agent, and speaking over the greeting barges in."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any

import pytest

from callbridge.audio.g711 import ulaw_to_pcm16
from callbridge.testing.fake_realtime import Reply
from callbridge.testing.speech import silence, speak
from tests.e2e.harness import Harness
from tests.server.console.kit import (
    browser_page,
    console_server,
    screenshot,
    settle,
    sign_in_browser,
)

pytestmark = pytest.mark.e2e

SAID = "I would like to book a table for two tonight."
REPLY = "Of course, a table for two tonight is booked."


def speech_wav(path: Path, lead_s: float, tail_s: float) -> Path:
    """espeak-ng speech as a 16-bit 8 kHz WAV, with `lead_s` of silence before and `tail_s`
    after (Chromium loops the file)."""
    ulaw = silence(lead_s) + speak(SAID) + silence(tail_s)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(ulaw_to_pcm16(ulaw).tobytes())
    return path


async def test_a_softphone_call_is_heard_by_the_model_and_plays_the_agents_reply(
        tmp_path: Path) -> None:
    """Speech from the fake microphone interrupts the greeting, the fake model transcribes it
    and answers; the page plays the answer; the call is on the record as `browser`."""
    wav = speech_wav(tmp_path / "caller.wav", lead_s=1.2, tail_s=14.0)
    async with console_server(tmp_path, replies=[Reply(text=REPLY)], user_transcripts=[SAID],
                              speed=1.0) as h:
        flags = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 f"--use-file-for-fake-audio-capture={wav}")
        async with browser_page(flags) as page:
            await sign_in_browser(page, h.server.url)
            await page.goto(f"{h.server.url}/console/softphone")
            await page.click("#call")
            await page.wait_for_function("() => window.softphone.state === 'connected'")
            await page.wait_for_function("() => window.softphone.clears >= 1", timeout=15_000)
            await page.wait_for_function("() => window.softphone.playedMs > 3000", timeout=20_000)
            await screenshot(page, tmp_path, "softphone")
            stats = await page.evaluate("window.softphone")
            call_sid = stats["callSid"]
            await asyncio.wait_for(_turns_with(h, call_sid, REPLY), 20.0)
            await page.click("#hang-up")
            await page.wait_for_function("() => window.softphone.state === 'ended'")
        bridge = _bridge(h, call_sid)
        await asyncio.wait_for(bridge.finished.wait(), 5.0)
        await settle(h)
        assert h.state.store is not None
        call = await h.state.store.get_call(call_sid)
    assert call is not None
    assert call["direction"] == "browser"
    roles = [(t["role"], t["text"]) for t in call["transcript"]]
    assert ("caller", SAID) in roles, "the model heard the caller's speech"
    assert ("agent", REPLY) in roles
    assert any(t["role"] == "agent" and t["interrupted"] for t in call["transcript"]), (
        "speaking over the greeting interrupted it")
    assert any(e["kind"] == "barge_in" for e in call["events"])
    assert stats["framesSent"] > 50
    assert stats["marks"] > 0, "the page echoed marks as their audio finished"
    assert stats["peak"] > 0.05, "the page played real audio, not silence"


def _bridge(h: Harness, call_sid: str) -> Any:
    calls = h.state.calls
    live = calls.get(call_sid)
    return live or next(b for b in calls.finished_calls if b.call_sid == call_sid)


async def _turns_with(h: Harness, call_sid: str, text: str) -> None:
    """Until an agent turn saying `text` is in the bridge's transcript."""
    transcript = _bridge(h, call_sid).transcript
    while not any(t.role == "agent" and text in t.text for t in transcript):  # noqa: ASYNC110
        await asyncio.sleep(0.1)  # the bridge has no event to wait on; its transcript grows

