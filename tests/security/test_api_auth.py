"""The JSON API without its bearer token, with a wrong one or a malformed header: 401 on every
route (403 while the API is off), never a 500, and nothing left behind. tests/e2e/
test_call_record.py covers the list route's 401 and its filters."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.databases import fresh_database
from tests.e2e.harness import harness
from tests.security.conftest import assert_nothing_leaked, warm_baseline

pytestmark = pytest.mark.e2e

TOKEN = "the-api-token"
ROUTES = [("GET", "/api/calls"), ("GET", "/api/calls/CA" + "1" * 32),
          ("GET", "/api/calls/CA" + "1" * 32 + "/recording"), ("POST", "/api/calls")]
HEADERS = [
    pytest.param({}, id="no-header"),
    pytest.param({"Authorization": "Bearer wrong-token"}, id="wrong-token"),
    pytest.param({"Authorization": f"Bearer {TOKEN}x"}, id="token-plus-a-character"),
    pytest.param({"Authorization": f"Bearer {TOKEN[:-1]}"}, id="token-minus-a-character"),
    pytest.param({"Authorization": f"Basic {TOKEN}"}, id="another-scheme"),
    pytest.param({"Authorization": "Bearer"}, id="scheme-only"),
    pytest.param({"Authorization": f"Bearer  {TOKEN}"}, id="two-spaces"),
    pytest.param({"Authorization": "Bearer \u00e9t\u00e9".encode()}, id="non-ascii-token"),
    pytest.param({"Authorization": TOKEN}, id="token-without-scheme"),
]


@pytest.mark.parametrize("headers", HEADERS)
async def test_every_api_route_refuses_a_missing_wrong_or_malformed_token_with_401(
    headers: dict[str, str | bytes], tmp_path: Path,
) -> None:
    """All four routes, nine bad headers: 401 with `WWW-Authenticate: Bearer`, no leak."""
    async for database_url in fresh_database("sqlite", tmp_path):
        env = {"CALLBRIDGE_API_TOKEN": TOKEN, "CALLBRIDGE_JOURNAL": str(tmp_path / "j.jsonl")}
        async with harness(env=env, database_url=database_url, twilio_rest=True) as h:
            baseline = await warm_baseline(h)
            async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
                for method, path in ROUTES:
                    response = await client.request(method, path, headers=headers,
                                                    json={"to": "+15557654321"})
                    assert response.status_code == 401, (method, path)
                    assert response.headers["www-authenticate"] == "Bearer"
                good = await client.get("/api/calls", headers={"Authorization": f"Bearer {TOKEN}"})
                assert good.status_code == 200, "the right token still works"
            assert h.rest is not None
            assert h.rest.calls_created == [], "no refused request placed a call"
            await assert_nothing_leaked(h, baseline)


async def test_the_api_is_off_without_a_configured_token() -> None:
    """No CALLBRIDGE_API_TOKEN: every route answers 403, whatever token is presented."""
    async with harness() as h:
        baseline = await warm_baseline(h)
        async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
            for method, path in ROUTES:
                for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer x"}):
                    response = await client.request(method, path, headers=headers)
                    assert response.status_code == 403, (method, path, headers)
        await assert_nothing_leaked(h, baseline)
