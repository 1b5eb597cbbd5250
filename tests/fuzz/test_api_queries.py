"""Fuzzing the JSON API's query parsing. The API publishes no OpenAPI description, so there is
nothing for Schemathesis to read; instead hypothesis sends `GET /api/calls` every combination of
`since`, `limit`, `before`, `status` and `number` it can think of, and `GET /api/calls/{sid}`
any path segment: 200, 400 or 404, never a server error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.databases import BACKENDS, fresh_database
from tests.e2e.harness import harness
from tests.fuzz.conftest import API_TOKEN, LiveApp

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
TEXT = st.text(max_size=30)
NUMBERS = st.integers(-(2**70), 2**70).map(str) | st.sampled_from(
    ["", "0", "-0", "+5", " 7 ", "1_0", "٣", "²", "1e3", "0x10", "nan", "500", "501"])
TIMES = st.datetimes().map(lambda t: t.isoformat()) | st.sampled_from(
    ["2026-11-21T08:00:00Z", "2026-11-21", "0001-01-01T00:00:00+23:59",
     "9999-12-31T23:59:59-23:59", "2026-13-01", "yesterday", "Z", "T"])
QUERIES = st.fixed_dictionaries({}, optional={
    "since": TIMES | TEXT, "limit": NUMBERS | TEXT, "before": NUMBERS | TEXT,
    "status": st.sampled_from(["completed", "in-progress", "ringing"]) | TEXT,
    "number": st.sampled_from(["+15550001111", "+15550002220"]) | TEXT})


@settings(max_examples=300, deadline=None)
@given(QUERIES)
def test_any_list_query_is_answered_200_or_400(live_app: LiveApp, params: dict[str, str]) -> None:
    """Filters of any content, well-formed or not: 200 with a page, or 400 naming the filter."""
    response = live_app.client.get("/api/calls", params=params, headers=AUTH)
    assert response.status_code in (200, 400), response.text
    body: dict[str, Any] = response.json()
    assert ("calls" in body) if response.status_code == 200 else ("error" in body)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_any_call_sid_in_the_path_is_answered_200_or_404(live_app: LiveApp, sid: str) -> None:
    """Any path segment as the CallSid: the call, or 404."""
    response = live_app.client.get(f"/api/calls/{quote(sid, safe='')}", headers=AUTH)
    assert response.status_code in (200, 404), response.text


@pytest.mark.parametrize("before", [10**30, 2**31], ids=["beyond-64-bits", "beyond-32-bits"])
@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_before_no_call_id_can_reach_is_refused_with_400(
    backend: str, before: int, tmp_path: Path,
) -> None:
    """A `before` past the largest call id (2**31 - 1, PostgreSQL's): 400 on either database."""
    async for database_url in fresh_database(backend, tmp_path):
        env = {"CALLBRIDGE_API_TOKEN": API_TOKEN,
               "CALLBRIDGE_JOURNAL": str(tmp_path / "journal.jsonl")}
        async with harness(env=env, database_url=database_url) as h:
            async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
                response = await client.get("/api/calls", params={"before": str(before)},
                                            headers=AUTH)
        assert response.status_code == 400


@pytest.mark.parametrize("params", [
    {"status": "comp\x00leted"}, {"number": "+1555\x000001111"},
    {"since": "0001-01-01T00:00:00+23:59"}, {"since": "9999-12-31T23:59:59-23:59"},
], ids=["nul-status", "nul-number", "since-before-year-1", "since-after-year-9999"])
@pytest.mark.parametrize("backend", BACKENDS)
async def test_filters_the_database_would_refuse_are_400_not_503(
    backend: str, params: dict[str, str], tmp_path: Path,
) -> None:
    """PostgreSQL refuses NUL in text and times outside years 1–9999: the API says 400 first,
    rather than reporting the refusal as an unavailable database."""
    async for database_url in fresh_database(backend, tmp_path):
        env = {"CALLBRIDGE_API_TOKEN": API_TOKEN,
               "CALLBRIDGE_JOURNAL": str(tmp_path / "journal.jsonl")}
        async with harness(env=env, database_url=database_url) as h:
            async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
                response = await client.get("/api/calls", params=params, headers=AUTH)
        assert response.status_code == 400, response.text
        assert "error" in response.json()
