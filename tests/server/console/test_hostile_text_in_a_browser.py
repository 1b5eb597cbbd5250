"""Text from callers, models, tools and custom analysis fields is shown as text: markup in any of
them never runs, on the live page (Server-Sent Events) or the call's record. The browser runs
with the Content-Security-Policy bypassed, so this is the escaping's proof on its own."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from callbridge.store.outcomes import Analysis, Done, write_outcome
from callbridge.store.records import EventRecorded, ToolRecorded
from callbridge.testing.fake_realtime import Reply
from tests.e2e.harness import connected_call
from tests.server.console.kit import (
    browser_page,
    console_server,
    screenshot,
    settle,
    sign_in_browser,
    speak_and_watch_it_appear,
)

pytestmark = pytest.mark.e2e

SCRIPT = "<script>window.__pwned = 'script'</script>"
IMG = "\"><img src=x onerror=\"window.__pwned='img'\">"
SVG = "<svg onload=\"window.__pwned='svg'\"></svg>"


async def test_markup_from_the_caller_the_model_and_analysis_never_runs(tmp_path: Path) -> None:
    """A caller and an agent who say markup, a tool and an analysis that return it: every page
    shows the characters, and nothing they carry executes."""
    async with console_server(tmp_path, replies=[Reply(text=f"Sure {SCRIPT}")],
                              user_transcripts=[f"Hello {IMG}"]) as h:
        async with await connected_call(h) as caller:
            await caller.wait_for_agent_audio(timeout=5.0)
            async with browser_page(bypass_csp=True) as page:
                await sign_in_browser(page, h.server.url)
                await page.goto(f"{h.server.url}/console/live/{caller.call_sid}")
                live_texts = await speak_and_watch_it_appear(page, caller, seed=5)
                live_pwned = await page.evaluate("window.__pwned")
                await caller.hang_up()
                await asyncio.wait_for(h.bridge_of(caller).finished.wait(), 5.0)
                await settle(h)
                assert h.state.store is not None
                now = time.time()
                await h.state.store.apply([
                    ToolRecorded(caller.call_sid, "call_1", "lookup", f'{{"q": "{IMG}"}}',
                                 f'"{SVG}"', None, 12, now),
                    EventRecorded(caller.call_sid, 999, "dtmf", now, {"digit": SCRIPT}),
                ])
                async with h.state.store.engine.begin() as connection:
                    await write_outcome(connection, caller.call_sid, 1, Done(analysis=Analysis(
                        "gpt-test", f"Summary {SCRIPT}", 0.5, IMG, 70, (SVG,),
                        {"objection": IMG, "notes": {"deep": SCRIPT}})), now)
                await page.goto(f"{h.server.url}/console/calls/{caller.call_sid}")
                record_pwned = await page.evaluate("window.__pwned")
                body = await page.locator("main").inner_text()
                images = await page.locator("main img").count()
                await screenshot(page, tmp_path, "hostile")
    assert live_pwned is None
    assert record_pwned is None
    assert f"Hello {IMG}" in live_texts
    assert f"Sure {SCRIPT}" in live_texts
    for text in (f"Hello {IMG}", f"Sure {SCRIPT}", f"Summary {SCRIPT}", SVG):
        assert text in body, text
    assert images == 0, "no element was made from the text"
