"""Self-contained HTML: the page shell, tables and inline SVG charts, built with ``html.escape``.

Nothing here reaches the network: no scripts, no web fonts, no images but inline SVG.  The
page carries a Content-Security-Policy that forbids loading anything, so a stray external
reference would show up as an error in the browser instead of as a silent request.
Every text that goes into the page passes through :func:`esc`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape

from retentiond.actions import REGISTRY

ACTION_COLOURS: Mapping[str, str] = {
    **{action.name: action.colour for action in REGISTRY.values()},
    # what later happens to a quarantined batch: ledger actions, not a rule's
    "purge": "#542788",
    "restore": "#7f7f7f",
}
"""One colour per action, the same in every chart and legend (in this order)."""
OTHER_COLOUR = "#444444"

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""Nothing may be loaded from anywhere: the page is complete as it is."""

STYLE = """
:root { color-scheme: light; --ink: #1a1a1a; --muted: #5c5c5c; --rule: #d0d0d0;
        --ok: #1b7837; --bad: #b2182b; --warn: #8a5a00; --band: #f4f4f2; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0 auto; padding: 2rem 1.5rem 4rem; max-width: 66rem; }
h1 { font-size: 1.8rem; margin: 0 0 .25rem; }
h2 { font-size: 1.35rem; margin: 2.5rem 0 .5rem; padding-bottom: .25rem;
     border-bottom: 2px solid var(--ink); }
h3 { font-size: 1.1rem; margin: 1.75rem 0 .4rem; }
h4 { font-size: 1rem; margin: 1.25rem 0 .3rem; }
p.lead, p.note, .muted { color: var(--muted); }
p.note { font-size: .9rem; }
code { font: .9em ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
       background: var(--band); padding: 0 .25em; border-radius: 3px; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: .92rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { border-bottom: 1px solid var(--rule); padding: .35rem .5rem; text-align: left;
         vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num, td code, td time { white-space: nowrap; }
.scroll { overflow-x: auto; }
tr.total td { font-weight: 600; border-top: 2px solid var(--ink); }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 1rem; font-weight: 600;
         font-size: .85rem; color: #fff; }
.badge.ok { background: var(--ok); } .badge.bad { background: var(--bad); }
.badge.warn { background: var(--warn); } .badge.off { background: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem;
           margin: .5rem 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(11rem, 1fr)); gap: .75rem;
         margin: 1rem 0; }
.card { border: 1px solid var(--rule); border-radius: 6px; padding: .6rem .8rem; }
.card .figure { font-size: 1.5rem; font-weight: 700; font-variant-numeric: tabular-nums; }
.card .label { color: var(--muted); font-size: .85rem; }
.legend { display: flex; flex-wrap: wrap; gap: .25rem 1rem; font-size: .85rem; margin: .25rem 0; }
.legend span::before { content: ""; display: inline-block; width: .8rem; height: .8rem;
                       margin-right: .3rem; vertical-align: -1px; background: var(--swatch); }
figure { margin: .75rem 0 1rem; } figure svg { max-width: 100%; height: auto; }
figcaption { font-size: .9rem; color: var(--muted); }
.promise { font-weight: 600; }
ul.holds { padding-left: 1.2rem; } ul.holds li { margin: .3rem 0; }
@media print { body { max-width: none; padding: 0; } h2 { break-after: avoid; }
               table, figure { break-inside: avoid; } }
"""


def esc(value: object) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes."""
    return escape(str(value), quote=True)


def number(value: int) -> str:
    """An integer with thousands separators, as every figure on the page is written."""
    return f"{value:,}"


def page(*, title: str, body: str) -> str:
    """A complete HTML document: charset, CSP, inline style, no external reference at all."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="retentiond">\n'
        # An empty inline icon: without it a browser may ask the server for /favicon.ico.
        '<link rel="icon" href="data:,">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def attrs(values: Mapping[str, object] | None) -> str:
    """`` name="value"`` pairs, escaped, in the order given."""
    if not values:
        return ""
    return "".join(f' {name}="{esc(value)}"' for name, value in values.items())


def cell(content: str, *, numeric: bool = False, data: Mapping[str, object] | None = None,
         header: bool = False) -> str:
    """One ``td`` (or ``th``) of already-escaped ``content``."""
    tag = "th" if header else "td"
    css = ' class="num"' if numeric else ""
    return f"<{tag}{css}{attrs(data)}>{content}</{tag}>"


def table(headers: Sequence[str], rows: Iterable[str], *, numeric_from: int | None = None,
          caption: str | None = None, css: str | None = None) -> str:
    """A table of ready-made ``<tr>`` rows; header columns from ``numeric_from`` align right."""
    heads = "".join(
        cell(esc(h), header=True, numeric=numeric_from is not None and i >= numeric_from)
        for i, h in enumerate(headers))
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    klass = f' class="{esc(css)}"' if css else ""
    body = "\n".join(rows)
    return (f'<div class="scroll"><table{klass}>{cap}<thead><tr>{heads}</tr></thead><tbody>\n'
            f"{body}\n</tbody></table></div>")


def row(cells: Iterable[str], *, css: str | None = None,
        data: Mapping[str, object] | None = None) -> str:
    """One ``<tr>`` of ready-made cells."""
    klass = f' class="{esc(css)}"' if css else ""
    return f"<tr{klass}{attrs(data)}>{''.join(cells)}</tr>"


def badge(text: str, kind: str) -> str:
    """A coloured label: ``ok``, ``bad``, ``warn`` or ``off``."""
    return f'<span class="badge {esc(kind)}">{esc(text)}</span>'


def colour(series: str) -> str:
    """The colour of an action (or any other series name)."""
    return ACTION_COLOURS.get(series, OTHER_COLOUR)


def legend(series: Sequence[str]) -> str:
    """Colour swatches naming each series of a chart."""
    items = "".join(f'<span style="--swatch: {colour(s)}">{esc(s)}</span>' for s in series)
    return f'<div class="legend">{items}</div>'


# Chart geometry, in SVG user units (the SVG scales down to the page's width).
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


def nice_ceiling(value: int) -> int:
    """A round number at or above ``value`` for an axis (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return math.ceil(step * power)
    return 10 * power  # pragma: no cover - the loop always returns


def bar_chart(bars: Sequence[tuple[str, Mapping[str, int]]], series: Sequence[str], *,
              title: str) -> str:
    """Horizontal stacked bars, one per label (a rule), one segment per series (an action)."""
    longest = max((len(label) for label, _ in bars), default=4)
    label_width = min(longest, _MAX_LABEL_CHARS) * _CHAR_WIDTH + _LABEL_PAD
    plot = _CHART_WIDTH - label_width - _VALUE_ROOM
    top = max((sum(values.values()) for _, values in bars), default=0) or 1
    height = len(bars) * (_BAR_HEIGHT + _BAR_GAP) + _BAR_GAP
    parts = [f"<title>{esc(title)}</title>"]
    for i, (label, values) in enumerate(bars):
        y = _BAR_GAP + i * (_BAR_HEIGHT + _BAR_GAP)
        middle = y + _BAR_HEIGHT / 2
        shown = label if len(label) <= _MAX_LABEL_CHARS else label[: _MAX_LABEL_CHARS - 1] + "…"
        parts.append(f'<text x="{label_width - _LABEL_PAD / 2:.1f}" y="{middle:.1f}" '
                     f'text-anchor="end" dominant-baseline="middle">{esc(shown)}</text>')
        x = label_width
        for name in series:
            amount = values.get(name, 0)
            if amount <= 0:
                continue
            width = max(plot * amount / top, 1.0)
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{_BAR_HEIGHT}" '
                         f'fill="{colour(name)}"><title>{esc(label)}: {esc(name)} '
                         f'{number(amount)}</title></rect>')
            x += width
        parts.append(f'<text x="{x + 6:.1f}" y="{middle:.1f}" dominant-baseline="middle">'
                     f"{number(sum(values.values()))}</text>")
    return _svg(_CHART_WIDTH, height, title, parts)


def column_chart(columns: Sequence[tuple[str, Mapping[str, int]]], series: Sequence[str], *,
                 title: str) -> str:
    """Vertical stacked columns, one per label (a month), one segment per series (an action)."""
    ceiling = nice_ceiling(max((sum(v.values()) for _, v in columns), default=0))
    width = _AXIS_ROOM + len(columns) * (_COLUMN_WIDTH + _COLUMN_GAP) + _COLUMN_GAP
    height = _TOP_ROOM + _PLOT_HEIGHT + _BOTTOM_ROOM
    base = _TOP_ROOM + _PLOT_HEIGHT
    parts = [f"<title>{esc(title)}</title>"]
    for tick in range(_TICKS + 1):
        value = ceiling * tick / _TICKS
        y = base - _PLOT_HEIGHT * tick / _TICKS
        parts.append(f'<line x1="{_AXIS_ROOM}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#d0d0d0" stroke-width="1"/>')
        parts.append(f'<text x="{_AXIS_ROOM - 6}" y="{y:.1f}" text-anchor="end" '
                     f'dominant-baseline="middle" font-size="11">{_tick_label(value)}</text>')
    for i, (label, values) in enumerate(columns):
        x = _AXIS_ROOM + _COLUMN_GAP + i * (_COLUMN_WIDTH + _COLUMN_GAP)
        y = float(base)
        for name in series:
            amount = values.get(name, 0)
            if amount <= 0:
                continue
            tall = max(_PLOT_HEIGHT * amount / ceiling, 1.0)
            y -= tall
            parts.append(f'<rect x="{x}" y="{y:.1f}" width="{_COLUMN_WIDTH}" height="{tall:.1f}" '
                         f'fill="{colour(name)}"><title>{esc(label)}: {esc(name)} '
                         f'{number(amount)}</title></rect>')
        centre = x + _COLUMN_WIDTH / 2
        parts.append(f'<text x="{centre:.1f}" y="{y - 5:.1f}" text-anchor="middle" '
                     f'font-size="11">{number(sum(values.values()))}</text>')
        parts.append(f'<text x="{centre:.1f}" y="{base + 18}" text-anchor="middle" '
                     f'font-size="11">{esc(label)}</text>')
    return _svg(width, height, title, parts)


def _tick_label(value: float) -> str:
    return number(int(value)) if value == int(value) else f"{value:,.1f}"


def _svg(width: float, height: float, title: str, parts: Sequence[str]) -> str:
    body = "\n".join(parts)
    return (f'<svg role="img" aria-label="{esc(title)}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
            f'font-family="system-ui, sans-serif" font-size="12" fill="#1a1a1a">\n'
            f"{body}\n</svg>")
