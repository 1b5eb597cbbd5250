"""Shared call facts and single-use stream tokens in PostgreSQL (`store.routes`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callbridge.store.repository import CallStore
from callbridge.store.routes import CallFacts, RouteStore
from tests.databases import fresh_database

SID = "CA" + "7" * 32
FACTS = CallFacts("outbound-api", "+15550001111", "+15550002222", "reminders", True)


@pytest.fixture
async def routes(tmp_path: Path) -> AsyncIterator[RouteStore]:
    async for url in fresh_database("postgresql", tmp_path):
        store = CallStore(url)
        yield RouteStore(store.engine)
        await store.close()


async def test_a_nonce_is_redeemed_once_whoever_asks(routes: RouteStore) -> None:
    """The first instance gets True; the same nonce from any instance is False ever after."""
    assert await routes.redeem("nonce-1", SID, "a", 2e9) is True
    assert await routes.redeem("nonce-1", SID, "b", 2e9) is False
    assert await routes.redeem("nonce-1", SID, "a", 2e9) is False
    assert await routes.redeem("nonce-2", SID, "b", 2e9) is True


async def test_the_taker_reads_the_webhooks_facts_and_becomes_the_owner(
    routes: RouteStore,
) -> None:
    """Facts written by the webhook's instance reach the one taking the stream."""
    await routes.remember(SID, FACTS, "a", 100.0)
    route = await routes.take(SID, CallFacts(), "b", 101.0)
    assert route.facts == FACTS
    assert (route.webhook_instance, route.owner, route.ended) == ("a", "b", False)
    assert [r.call_sid for r in await routes.live()] == [SID]


async def test_a_stream_without_a_described_call_keeps_its_own_facts(routes: RouteStore) -> None:
    """No webhook row (its instance had no database): the taker's fallback facts stand."""
    fallback = CallFacts("inbound", "+1555", "+1666")
    route = await routes.take(SID, fallback, "b", 101.0)
    assert route.facts == fallback
    assert route.webhook_instance == ""


async def test_a_verdict_before_the_stream_is_seen_by_the_taker_and_one_after_names_the_owner(
    routes: RouteStore,
) -> None:
    """Before: the verdict rides on the take. After: the verdict's write returns the owner."""
    await routes.remember(SID, FACTS, "a", 100.0)
    early = await routes.verdict(SID, "machine_end_beep", 100.5)
    assert early.owner is None
    assert (await routes.take(SID, CallFacts(), "b", 101.0)).answered_by == "machine_end_beep"
    other = "CA" + "8" * 32
    await routes.remember(other, FACTS, "a", 100.0)
    await routes.take(other, CallFacts(), "b", 101.0)
    assert (await routes.verdict(other, "human", 102.0)).owner == "b"


async def test_only_the_owner_ends_a_call_and_ended_calls_leave_the_live_list(
    routes: RouteStore,
) -> None:
    """The webhook's instance releasing its bridge does not end a call carried elsewhere."""
    await routes.remember(SID, FACTS, "a", 100.0)
    await routes.take(SID, CallFacts(), "b", 101.0)
    await routes.finish(SID, "a", 102.0)
    assert [r.call_sid for r in await routes.live()] == [SID]
    await routes.finish(SID, "b", 103.0)
    assert await routes.live() == []
    route = await routes.get(SID)
    assert route is not None
    assert route.ended


async def test_pruning_forgets_expired_nonces(routes: RouteStore) -> None:
    """An expired nonce is gone (the token is refused on its expiry anyway)."""
    await routes.redeem("old", SID, "a", 50.0)
    await routes.redeem("fresh", SID, "a", 2e9)
    await routes.prune(100.0)
    assert await routes.redeem("old", SID, "a", 2e9) is True
    assert await routes.redeem("fresh", SID, "a", 2e9) is False
