"""What the console tests share: a recorded server with the console on, signing in over HTTP,
and the system Chromium driven by Playwright (skipped with a reason when absent, failed on CI)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from callbridge.testing.fake_realtime import Reply
from callbridge.testing.speech import speechlike
from tests.databases import fresh_database
from tests.e2e.harness import Harness, harness

API_TOKEN = "console-api-token"
GREETING = "Thanks for calling Harbour Dental, how can I help?"
SHOTS_ENV = "CALLBRIDGE_CONSOLE_SHOTS"  # a directory: screenshots are copied there too


@contextlib.asynccontextmanager
async def console_server(tmp_path: Path, *, replies: list[Reply] | None = None,
                         agent_file: str = "[agent]\nrecord_audio = true\n",
                         backend: str = "sqlite", **options: Any) -> AsyncIterator[Harness]:
    """Our server with the console on, a fresh database and as-heard recordings."""
    agents = tmp_path / "agents.toml"
    agents.write_text(agent_file)
    env = {"CALLBRIDGE_API_TOKEN": API_TOKEN, "CALLBRIDGE_GREETING": GREETING,
           "CALLBRIDGE_AGENT_FILE": str(agents),
           "CALLBRIDGE_RECORDINGS_DIR": str(tmp_path / "recordings"),
           "CALLBRIDGE_JOURNAL": str(tmp_path / "journal.jsonl"),
           "CALLBRIDGE_INSTANCE_ID": "console-test", **options.pop("env", {})}
    async for url in fresh_database(backend, tmp_path):
        async with harness(replies or [Reply(text="We open at nine.")], env=env,
                           database_url=url, **options) as h:
            yield h


async def settle(h: Harness) -> None:
    assert h.state.writer is not None
    await h.state.writer.flush()


def csrf_in(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, "the page carries a CSRF token"
    return match.group(1)


async def signed_in(client: httpx.AsyncClient, token: str = API_TOKEN) -> httpx.Response:
    """Sign `client` in through the form; returns the sign-in POST's response."""
    form = await client.get("/console/sign-in")
    return await client.post("/console/sign-in",
                             data={"csrf": csrf_in(form.text), "token": token})


def chromium() -> str:
    """The system Chromium's path; skips (fails on CI) when it is not installed."""
    path = shutil.which("chromium") or ("/usr/bin/chromium"
                                        if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        reason = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    return path


@contextlib.asynccontextmanager
async def browser_page(extra_args: tuple[str, ...] = (), *,
                       bypass_csp: bool = False) -> AsyncIterator[Any]:
    """A fresh page in the system Chromium (headless), under the console's
    Content-Security-Policy unless `bypass_csp` (wait_for_function then needs arrow functions,
    which Playwright calls rather than evaluates)."""
    from playwright.async_api import async_playwright

    executable = chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True,
            args=["--autoplay-policy=no-user-gesture-required", *extra_args])
        try:
            context = await browser.new_context(viewport={"width": 1100, "height": 800},
                                                bypass_csp=bypass_csp)
            page = await context.new_page()
            page.set_default_timeout(10_000)
            yield page
        finally:
            await browser.close()


async def sign_in_browser(page: Any, base_url: str, token: str = API_TOKEN) -> None:
    await page.goto(f"{base_url}/console")
    await page.fill("input[name=token]", token)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base_url}/console/calls")


async def speak_and_watch_it_appear(page: Any, caller: Any, seed: int) -> list[str]:
    """Once the agent is quiet the caller speaks; wait until the live page shows the caller's
    turn and the agent's reply (three turns with the greeting); returns the turns' texts."""
    await caller.wait_until_agent_quiet(quiet_for=0.4, timeout=10.0)
    await caller.say(speechlike(1.0, seed=seed))
    await page.wait_for_function(
        "() => document.querySelectorAll('#live-transcript .turn').length >= 3",
        timeout=15_000)
    texts: list[str] = await page.locator("#live-transcript .turn .text").all_inner_texts()
    return texts


async def screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    """Save the page as `name`.png under tmp_path (and under $CALLBRIDGE_CONSOLE_SHOTS)."""
    path = tmp_path / f"{name}.png"
    await page.screenshot(path=str(path), full_page=False)
    _keep(path)
    return path


def _keep(path: Path) -> None:
    assert path.stat().st_size > 1000, "a screenshot with something on it"
    target = os.environ.get(SHOTS_ENV)
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
