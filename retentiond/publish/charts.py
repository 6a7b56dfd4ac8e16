"""The report's charts as geometry: where each bar, column and label stands, in SVG user units.

Pure numbers and words; ``templates/_charts.html.j2`` draws them as inline SVG (which scales
down to the page's width), each segment in the colour of its series (an action).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from retentiond.publish.template import number

_BAR_HEIGHT = 22
_BAR_GAP = 8
_CHAR_WIDTH = 7.2
_LABEL_PAD = 12
_CHART_WIDTH = 760
_VALUE_ROOM = 80
_COLUMN_WIDTH = 34
_COLUMN_GAP = 22
_PLOT_HEIGHT = 200
_AXIS_ROOM = 56
_TOP_ROOM = 22
_BOTTOM_ROOM = 28
_TICKS = 4
_MAX_LABEL_CHARS = 40


@dataclass(frozen=True)
class Segment:
    """One series' part of a bar or a column: its rectangle, and the figure it stands for."""

    series: str
    amount: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Bar:
    """One horizontal bar: a label (a rule), its segments, and its total written after it."""

    label: str
    shown: str
    """The label as written beside the bar: cut at :data:`_MAX_LABEL_CHARS` characters."""
    total: int
    middle: float
    """The height of the bar's middle, where its label and its total stand."""
    end: float
    """Where the last segment ends."""
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class BarChart:
    """Horizontal stacked bars, one per label, labels right-aligned at ``label_x``."""

    width: float
    height: float
    label_x: float
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class Tick:
    """A horizontal grid line of a column chart, with its value written at the axis."""

    y: float
    label: str


@dataclass(frozen=True)
class Column:
    """One stacked column: a label (a month) under it, its total above its top."""

    label: str
    total: int
    centre: float
    top: float
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class ColumnChart:
    """Vertical stacked columns on a grid, standing on ``base``, the axis at ``axis``."""

    width: float
    height: float
    axis: float
    base: float
    ticks: tuple[Tick, ...]
    columns: tuple[Column, ...]


def nice_ceiling(value: int) -> int:
    """A round number at or above ``value`` for an axis (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return math.ceil(step * power)
    return 10 * power  # pragma: no cover - the loop always returns


def bar_chart(bars: Sequence[tuple[str, Mapping[str, int]]], series: Sequence[str]) -> BarChart:
    """One bar per label (a rule), one segment per series (an action), longest bar full width."""
    longest = max((len(label) for label, _ in bars), default=4)
    label_width = min(longest, _MAX_LABEL_CHARS) * _CHAR_WIDTH + _LABEL_PAD
    plot = _CHART_WIDTH - label_width - _VALUE_ROOM
    top = max((sum(values.values()) for _, values in bars), default=0) or 1
    made = []
    for i, (label, values) in enumerate(bars):
        y = _BAR_GAP + i * (_BAR_HEIGHT + _BAR_GAP)
        shown = label if len(label) <= _MAX_LABEL_CHARS else label[: _MAX_LABEL_CHARS - 1] + "…"
        x = label_width
        segments = []
        for name in series:
            amount = values.get(name, 0)
            if amount <= 0:
                continue
            width = max(plot * amount / top, 1.0)
            segments.append(Segment(name, amount, x, y, width, _BAR_HEIGHT))
            x += width
        made.append(Bar(label, shown, sum(values.values()), y + _BAR_HEIGHT / 2, x,
                        tuple(segments)))
    height = len(bars) * (_BAR_HEIGHT + _BAR_GAP) + _BAR_GAP
    return BarChart(_CHART_WIDTH, height, label_width - _LABEL_PAD / 2, tuple(made))


def column_chart(columns: Sequence[tuple[str, Mapping[str, int]]],
                 series: Sequence[str]) -> ColumnChart:
    """One column per label (a month), one segment per series (an action), on a round scale."""
    ceiling = nice_ceiling(max((sum(v.values()) for _, v in columns), default=0))
    width = _AXIS_ROOM + len(columns) * (_COLUMN_WIDTH + _COLUMN_GAP) + _COLUMN_GAP
    base = _TOP_ROOM + _PLOT_HEIGHT
    ticks = tuple(Tick(base - _PLOT_HEIGHT * tick / _TICKS, _tick_label(ceiling * tick / _TICKS))
                  for tick in range(_TICKS + 1))
    made = []
    for i, (label, values) in enumerate(columns):
        x = _AXIS_ROOM + _COLUMN_GAP + i * (_COLUMN_WIDTH + _COLUMN_GAP)
        y = float(base)
        segments = []
        for name in series:
            amount = values.get(name, 0)
            if amount <= 0:
                continue
            tall = max(_PLOT_HEIGHT * amount / ceiling, 1.0)
            y -= tall
            segments.append(Segment(name, amount, x, y, _COLUMN_WIDTH, tall))
        made.append(Column(label, sum(values.values()), x + _COLUMN_WIDTH / 2, y,
                           tuple(segments)))
    return ColumnChart(width, _TOP_ROOM + _PLOT_HEIGHT + _BOTTOM_ROOM, _AXIS_ROOM, base, ticks,
                       tuple(made))


def _tick_label(value: float) -> str:
    return number(int(value)) if value == int(value) else f"{value:,.1f}"
