"""The overview, agents and jobs pages over real sockets: secrets never shown, dead jobs retried
only with the session's CSRF token; then each page in the browser, and the call list on a
phone-sized screen, with screenshots."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from callbridge.store import schema
from callbridge.store.records import CallEnded, CallOpened, EventRecorded
from tests.e2e.harness import Harness
from tests.server.console.kit import (
    browser_page,
    console_server,
    csrf_in,
    screenshot,
    settle,
    sign_in_browser,
    signed_in,
)

pytestmark = pytest.mark.e2e

WEBHOOK_SECRET = "whsec-do-not-show-me"
AGENT_FILE = f"""tools_module = "tests.e2e.agent_tools"
default_agent = "front-desk"
[agents.front-desk]
instructions = "Answer questions about opening hours."
tools = ["lookup_order", "add"]
record_audio = true
webhook_url = "https://hooks.example.test/calls?token=also-secret"
webhook_secret = "{WEBHOOK_SECRET}"
analysis_fields = {{ wants_callback = {{ type = "boolean", description = "asked to be called" }} }}
[agents.after-hours]
instructions = "Take a message."
[numbers]
"+15550002222" = "front-desk"
"+15550003333" = "after-hours"
"""


async def seed_dead_job(h: Harness) -> int:
    """A finished call whose analysis job is dead."""
    store = h.state.store
    assert store is not None
    now = time.time()
    await store.apply([CallOpened("CAdead", "inbound", "+15550001111", "+15550002222",
                                  "front-desk", "m", "v", "i", now - 300)])
    await store.apply([EventRecorded("CAdead", 1, "turn_latency", now - 290, {"ms": 640}),
                       EventRecorded("CAdead", 2, "barge_in", now - 280, {})])
    await store.apply([CallEnded("CAdead", now - 200, "caller hung up", 100.0, 0.12)])
    jobs = schema.jobs
    async with store.engine.begin() as connection:
        await connection.execute(update(jobs).where(jobs.c.call_sid == "CAdead").values(
            state="dead", attempts=5, last_error="the analysis model answered 500"))
        return int((await connection.execute(select(jobs.c.id).where(
            jobs.c.call_sid == "CAdead", jobs.c.kind == "analyze"))).scalar_one())


async def job_state(h: Harness, job_id: int) -> str:
    assert h.state.store is not None
    async with h.state.store.engine.connect() as connection:
        return str((await connection.execute(select(schema.jobs.c.state).where(
            schema.jobs.c.id == job_id))).scalar_one())


async def test_agents_show_their_numbers_settings_and_tool_schemas_but_no_secret(
        tmp_path: Path) -> None:
    """The number map, each agent's settings and tools' JSON schemas; the webhook secret is
    masked and the webhook URL loses its query string."""
    async with console_server(tmp_path, agent_file=AGENT_FILE) as h:
        async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
            await signed_in(client)
            page = (await client.get("/console/agents")).text
    assert WEBHOOK_SECRET not in page
    assert "also-secret" not in page
    assert "https://hooks.example.test/calls?…" in page
    assert "+15550003333" in page
    assert "after-hours" in page
    assert "lookup_order" in page
    assert "order_id" in page, "the tool's JSON schema"
    assert "wants_callback" in page


async def test_a_dead_job_is_retried_only_with_the_sessions_csrf_token(tmp_path: Path) -> None:
    """Without the token the job stays dead; with it, it is pending again with fresh attempts."""
    async with console_server(tmp_path) as h:
        job_id = await seed_dead_job(h)
        async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
            await signed_in(client)
            listing = await client.get("/console/jobs")
            assert "the analysis model answered 500" in listing.text
            refused = await client.post("/console/jobs/retry", data={"job": str(job_id)})
            assert refused.status_code == 403
            assert await job_state(h, job_id) == "dead"
            done = await client.post("/console/jobs/retry",
                                     data={"job": str(job_id), "csrf": csrf_in(listing.text)})
            assert done.status_code == 303
            assert await job_state(h, job_id) == "pending"
            again = await client.post("/console/jobs/retry",
                                      data={"job": "nonsense", "csrf": csrf_in(listing.text)})
            assert "error=" in again.headers["location"]


async def test_operator_pages_in_a_browser_and_the_call_list_on_a_phone(tmp_path: Path) -> None:
    """Overview charts with today's call, agents, jobs (Retry all clicked), and the call list
    at 390 px wide without sideways scrolling of the page."""
    async with console_server(tmp_path, agent_file=AGENT_FILE) as h:
        job_id = await seed_dead_job(h)
        await settle(h)
        async with browser_page() as page:
            await sign_in_browser(page, h.server.url)
            await page.goto(f"{h.server.url}/console/overview")
            bars = await page.locator("figure.chart").first.locator("rect").count()
            titles = await page.locator("figure.chart h3").all_inner_texts()
            await screenshot(page, tmp_path, "overview")
            await page.goto(f"{h.server.url}/console/agents")
            await page.click("details summary")
            await screenshot(page, tmp_path, "agents")
            await page.goto(f"{h.server.url}/console/jobs")
            await screenshot(page, tmp_path, "jobs")
            await page.click("button:has-text('Retry all')")
            await page.wait_for_url("**/console/jobs?note=*")
            await page.set_viewport_size({"width": 390, "height": 760})
            await page.goto(f"{h.server.url}/console/calls")
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            await screenshot(page, tmp_path, "calls-phone")
        assert await job_state(h, job_id) == "pending"
    assert bars == 1, f"one day with calls in the last 14 days ({datetime.now(UTC).date()})"
    assert titles[0].startswith("Calls per day")
    assert overflow <= 0, "the page itself fits a phone; wide tables scroll inside their box"
