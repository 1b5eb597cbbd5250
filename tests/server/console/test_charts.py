"""Server-drawn bar charts: heights in proportion, gaps for missing values."""

from __future__ import annotations

import pytest

from callbridge.server.console.charts import BOTTOM, HEIGHT, TOP, bar_chart


def test_bars_are_in_proportion_to_the_largest_value() -> None:
    """The largest value fills the plot; half of it fills half; the labels and total follow."""
    chart = bar_chart("Calls", ["a", "b", "c"], [10, 5, 0])
    full = HEIGHT - BOTTOM - TOP
    assert [bar.height for bar in chart.bars] == [pytest.approx(full), pytest.approx(full / 2)]
    assert [bar.value for bar in chart.bars] == ["10", "5"], "a zero draws no bar"
    assert (chart.maximum, chart.total, chart.first_label, chart.last_label) == ("10", "15", "a",
                                                                                  "c")
    assert chart.bars[0].x < chart.bars[1].x


def test_missing_values_draw_no_bar_and_an_empty_series_draws_nothing() -> None:
    """None (a day without latency figures) leaves a gap; all-None has no total."""
    chart = bar_chart("p50", ["a", "b"], [None, 300], unit=" ms", total=False)
    assert [bar.label for bar in chart.bars] == ["b"]
    assert chart.bars[0].value == "300 ms"
    empty = bar_chart("p50", ["a"], [None])
    assert (empty.bars, empty.total) == ([], "")


def test_money_is_written_with_a_dollar_sign() -> None:
    """Cost bars read $0.25, not 0.25$."""
    assert bar_chart("Cost", ["a"], [0.25], unit="$", digits=2).bars[0].value == "$0.25"
