"""Bar charts drawn by the server as SVG geometry: no chart library, no script.

`bar_chart()` turns a series into rectangles and labels in a fixed 600×180 viewBox; the template
draws them with attributes only (the CSP forbids inline style). Missing and zero values draw
no bar.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 600.0, 180.0
LEFT, BOTTOM, TOP = 96.0, 28.0, 20.0


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: str


@dataclass(frozen=True)
class Chart:
    title: str
    bars: list[Bar]
    maximum: str
    first_label: str
    last_label: str
    total: str
    width: float = WIDTH
    height: float = HEIGHT
    left: float = LEFT
    base: float = HEIGHT - BOTTOM
    top: float = TOP


def bar_chart(title: str, labels: list[str], values: list[float | int | None],
              unit: str = "", digits: int = 0, total: bool = True) -> Chart:
    """One bar per label; the y axis runs from 0 to the largest value."""
    present = [v for v in values if v is not None]
    top = max(present, default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    step = plot_w / max(1, len(labels))
    bars = []
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        if not value:  # None (no figure) or 0: nothing to draw
            continue
        height = plot_h * (value / top)
        bars.append(Bar(round(LEFT + index * step + step * 0.1, 2),
                        round(HEIGHT - BOTTOM - height, 2), round(step * 0.8, 2),
                        round(height, 2), label, _format(value, unit, digits)))
    summary = _format(sum(present), unit, digits) if total and present else ""
    return Chart(title, bars, _format(top, unit, digits), labels[0] if labels else "",
                 labels[-1] if labels else "", summary)


def _format(value: float, unit: str, digits: int) -> str:
    text = f"{value:,.{digits}f}"
    return f"${text}" if unit == "$" else f"{text}{unit}"
