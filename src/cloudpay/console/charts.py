"""Charts drawn on the server as SVG: no JavaScript library, nothing to build or fetch.

Coordinates are integers computed with integer arithmetic from fen amounts; labels are
escaped by the caller's template (the SVG is returned as markup-safe text of numbers only,
plus labels escaped here).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH = 720
HEIGHT = 200
PADDING = 24
BAR_GAP = 2


def bar_chart(values: Sequence[int], labels: Sequence[str], *, title: str) -> str:
    """Bars scaled to the largest value (all zero: a flat baseline), one `<title>` per bar so
    a hover shows the label and the value."""
    count = max(len(values), 1)
    top = max(max(values, default=0), 1)
    plot_height = HEIGHT - 2 * PADDING
    bar_width = max((WIDTH - 2 * PADDING) // count - BAR_GAP, 1)
    bars = []
    for index, (value, label) in enumerate(zip(values, labels, strict=True)):
        height = value * plot_height // top
        x = PADDING + index * (bar_width + BAR_GAP)
        y = HEIGHT - PADDING - height
        bars.append(
            f'<rect x="{x}" y="{y}" width="{bar_width}" height="{height}" class="bar">'
            f"<title>{escape(label)}</title></rect>"
        )
    first = escape(labels[0]) if labels else ""
    last = escape(labels[-1]) if labels else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" class="chart">'
        f"<title>{escape(title)}</title>"
        f'<line x1="{PADDING}" y1="{HEIGHT - PADDING}" x2="{WIDTH - PADDING}" '
        f'y2="{HEIGHT - PADDING}" class="axis"/>'
        + "".join(bars)
        + f'<text x="{PADDING}" y="{HEIGHT - 6}" class="label">{first}</text>'
        f'<text x="{WIDTH - PADDING}" y="{HEIGHT - 6}" text-anchor="end" class="label">'
        f"{last}</text>"
        "</svg>"
    )
