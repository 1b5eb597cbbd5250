"""The console in a real browser (the system Chromium) against our real server: sign in, find a
call the fake caller placed, read it, play what the caller heard, watch a live call and hang it
up. Each page's screenshot is saved."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callbridge.testing.speech import speechlike
from tests.e2e.harness import connected_call
from tests.server.console.kit import (
    GREETING,
    browser_page,
    console_server,
    screenshot,
    settle,
    sign_in_browser,
    speak_and_watch_it_appear,
)

pytestmark = pytest.mark.e2e


async def test_a_signed_in_browser_finds_a_call_reads_it_and_plays_what_the_caller_heard(
        tmp_path: Path) -> None:
    """Sign in, filter the list by a word the caller said, open the call, play its recording."""
    async with console_server(tmp_path, user_transcripts=["When do you open on Saturday?"]) as h:
        async with await connected_call(h) as caller:
            await caller.wait_for_agent_audio(timeout=5.0)
            await caller.wait_until_agent_quiet(quiet_for=0.4, timeout=10.0)
            await caller.say(speechlike(1.0, seed=3))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            await caller.wait_until_agent_quiet(quiet_for=0.4, timeout=10.0)
            await caller.hang_up()
        await asyncio.wait_for(h.bridge_of(caller).finished.wait(), 5.0)
        await settle(h)
        async with browser_page() as page:
            await page.goto(f"{h.server.url}/console")
            assert page.url.endswith("/console/sign-in")
            await screenshot(page, tmp_path, "sign-in")
            await sign_in_browser(page, h.server.url)
            await page.fill("input[name=words]", "saturday")
            await page.click(".filters button[type=submit]")
            await page.wait_for_url("**/console/calls?*")
            link = page.locator(f"a[href='/console/calls/{caller.call_sid}']")
            assert await link.count() == 1
            await screenshot(page, tmp_path, "calls")
            await link.click()
            await page.wait_for_url(f"**/console/calls/{caller.call_sid}")
            turns = page.locator("#transcript .turn")
            assert await turns.count() == 3
            assert await turns.nth(0).locator(".text").inner_text() == GREETING
            assert await turns.nth(1).locator(".text").inner_text() == (
                "When do you open on Saturday?")
            assert await turns.nth(2).locator(".text").inner_text() == "We open at nine."
            await page.wait_for_function(
                "() => document.getElementById('recording').duration > 1", timeout=10_000)
            duration = await page.evaluate("document.getElementById('recording').duration")
            await turns.nth(2).click()
            await page.wait_for_function("() => !document.getElementById('recording').paused")
            position = await page.evaluate("document.getElementById('recording').currentTime")
            await screenshot(page, tmp_path, "call")
    assert 1.0 < duration < 60.0, "the as-heard recording's length, as the browser read it"
    assert position > 0.5, "clicking the agent's reply seeks past the start"


async def test_a_live_call_grows_on_screen_and_is_hung_up_from_the_console(
        tmp_path: Path) -> None:
    """The live page shows each turn as it finishes; Hang up (no goodbye) ends the call
    through Twilio's REST API and the page says it ended."""
    async with console_server(tmp_path, twilio_rest=True,
                              user_transcripts=["Can I move my appointment?"]) as h:
        caller = await connected_call(h)
        async with caller:
            await caller.wait_for_agent_audio(timeout=5.0)
            async with browser_page() as page:
                await sign_in_browser(page, h.server.url)
                await page.goto(f"{h.server.url}/console/live")
                await screenshot(page, tmp_path, "live-calls")
                await page.click(f"a[href='/console/live/{caller.call_sid}']")
                await page.wait_for_selector("#live-transcript .turn.agent")  # the greeting
                assert await page.locator("#live-transcript .turn").count() == 1
                texts = await speak_and_watch_it_appear(page, caller, seed=4)
                await screenshot(page, tmp_path, "live")
                await page.uncheck("input[name=goodbye]")
                await page.click("#hang-up")
                await page.wait_for_url(f"**/console/calls/{caller.call_sid}?note=*")
                await caller.wait_closed(timeout=5.0)
        await asyncio.wait_for(h.bridge_of(caller).finished.wait(), 5.0)
    assert texts[:3] == [GREETING, "Can I move my appointment?", "We open at nine."]
    assert h.rest is not None
    [update] = h.rest.updates(caller.call_sid)
    assert update.value("Status") == "completed", "hung up through Twilio's REST API"
