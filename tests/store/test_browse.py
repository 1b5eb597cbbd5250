"""The console's queries on SQLite and PostgreSQL: every list filter, and the overview's
per-day figures."""

from __future__ import annotations

from datetime import UTC, date, datetime

from callbridge.store import browse
from callbridge.store.records import (
    CallEnded,
    CallOpened,
    EventRecorded,
    TurnRecorded,
)
from callbridge.store.repository import CallStore

DAY1 = datetime(2026, 12, 1, 10, tzinfo=UTC).timestamp()
DAY2 = datetime(2026, 12, 2, 10, tzinfo=UTC).timestamp()


async def seed(store: CallStore) -> None:
    await store.apply([
        CallOpened("CA1", "inbound", "+15550000001", "+15559990000", "sales", "m", "v", "i",
                   DAY1),
        CallOpened("CA2", "outbound-api", "+15559990000", "+15550000002", "support", "m", "v",
                   "i", DAY2),
        CallOpened("CA3", "browser", "console", "support", "support", "m", "v", "i", DAY2 + 60),
    ])
    await store.apply([
        TurnRecorded("CA1", "i1", "caller", "I want 100% of a refund_now", "", False, 0, 10),
        TurnRecorded("CA2", "i2", "caller", "Booking a TABLE for two", "", False, 0, 10),
        TurnRecorded("CA2", "i3", "agent", "Sure, which evening?", "Sure", True, 20, 30),
    ])
    await store.apply([
        EventRecorded("CA1", 1, "turn_latency", DAY1 + 5, {"ms": 700}),
        EventRecorded("CA2", 1, "turn_latency", DAY2 + 5, {"ms": 500}),
        EventRecorded("CA2", 2, "turn_latency", DAY2 + 6, {"ms": 900}),
        EventRecorded("CA2", 3, "barge_in", DAY2 + 7, {}),
        EventRecorded("CA2", 4, "upstream_restored", DAY2 + 8, {}),
        EventRecorded("CA3", 1, "upstream_gave_up", DAY2 + 70, {}),
    ])
    await store.apply([CallEnded("CA1", DAY1 + 120, "caller hung up", 120.0, 0.5),
                       CallEnded("CA2", DAY2 + 60, "caller hung up", 60.0, 0.25)])


async def sids(store: CallStore, **filters: object) -> list[str]:
    rows = await browse.list_calls(store, browse.ConsoleFilter(**filters))  # type: ignore[arg-type]
    return [row["call_sid"] for row in rows]


async def test_each_filter_narrows_the_list_newest_first(store: CallStore) -> None:
    """Number (either end), status, agent, direction, dates, words, paging."""
    await seed(store)
    assert await sids(store) == ["CA3", "CA2", "CA1"]
    assert await sids(store, number="+15559990000") == ["CA2", "CA1"]
    assert await sids(store, agent="support") == ["CA3", "CA2"]
    assert await sids(store, direction="browser") == ["CA3"]
    assert await sids(store, status="completed") == ["CA2", "CA1"]
    assert await sids(store, since=datetime(2026, 12, 2, tzinfo=UTC)) == ["CA3", "CA2"]
    assert await sids(store, until=datetime(2026, 12, 2, tzinfo=UTC)) == ["CA1"]
    assert await sids(store, limit=2) == ["CA3", "CA2"]
    first_page = await browse.list_calls(store, browse.ConsoleFilter(limit=2))
    assert await sids(store, before_id=first_page[-1]["id"]) == ["CA1"]


async def test_words_match_any_turn_case_insensitively_and_literally(store: CallStore) -> None:
    """Every word must occur; % and _ are plain characters, not wildcards."""
    await seed(store)
    assert await sids(store, words=("table",)) == ["CA2"]
    assert await sids(store, words=("booking", "evening")) == ["CA2"]
    assert await sids(store, words=("booking", "refund")) == []
    assert await sids(store, words=("100%",)) == ["CA1"]
    assert await sids(store, words=("refund_now",)) == ["CA1"]
    assert await sids(store, words=("1_0",)) == []
    assert await sids(store, words=("%",)) == ["CA1"]


async def test_the_overview_counts_each_day(store: CallStore) -> None:
    """Calls, minutes, cost, latency percentiles and counted events land on their UTC day;
    a day with nothing is present and empty."""
    await seed(store)
    days = await browse.overview(store, date(2026, 12, 1), date(2026, 12, 3))
    assert [d.day for d in days] == [date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3)]
    one, two, three = days
    assert (one.calls, one.minutes, one.cost_usd, one.p50_ms) == (1, 2.0, 0.5, 700)
    assert (two.calls, two.minutes, two.cost_usd) == (2, 1.0, 0.25)
    assert (two.p50_ms, two.p95_ms) == (500, 900), "percentile_disc on both databases"
    assert (two.barge_ins, two.reconnects, two.apologies) == (1, 1, 1)
    assert (three.calls, three.p50_ms) == (0, None)
    series = browse.group_days(days)
    assert series["calls"] == [1, 2, 0]
    assert series["day"][0] == "2026-12-01"


async def test_the_overview_range_is_bounded(store: CallStore) -> None:
    """A range of years is cut to the first 92 days; reversed ends are swapped."""
    days = await browse.overview(store, date(2026, 12, 31), date(2020, 1, 1))
    assert len(days) == browse.MAX_OVERVIEW_DAYS
    assert days[0].day == date(2020, 1, 1)
