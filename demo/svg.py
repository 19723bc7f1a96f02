"""Small charts drawn as SVG text on the server: the why of a forecast and heat maps of the
network's matrices and hidden states.

A string of a few kilobytes costs well under a millisecond, where drawing a PNG with matplotlib
cost a click 230 ms; the browser scales an SVG to any width, a phone's included. Every value
written into the SVG is a number or text escaped here, never markup from a visitor.
"""
from __future__ import annotations

import html

import numpy as np

from cgpa_rnn.explanation import Explanation

# Diverging colours for signed values: blue below zero, white at zero, red above.
NEGATIVE, POSITIVE = (49, 104, 167), (200, 64, 52)
FONT = 'font-family="system-ui, sans-serif"'


def _colour(value: float, largest: float) -> str:
    share = 0.0 if largest == 0 else min(abs(value) / largest, 1.0)
    end = POSITIVE if value > 0 else NEGATIVE
    r, g, b = (round(255 + (channel - 255) * share) for channel in end)
    return f"rgb({r},{g},{b})"


def why_chart(why: Explanation, low: float, high: float, sentence: str) -> str:
    """A waterfall of the forecast: the group's mean, what the student's own deviation carries over
    (together the prior), what the network adds, and the prediction. Drawn over the values' own
    range (within the scale `low`-`high`), so a correction of a tenth is visible."""
    width, row, left, right = 360, 30, 112, 52
    values = (why.group_mean, why.prior, why.prediction)
    start, end = max(low, min(values) - 0.5), min(high, max(values) + 0.5)

    def x(value: float) -> float:
        return left + (width - left - right) * (value - start) / (end - start)

    steps = [("group's mean", start, why.group_mean, "#9ca3af", f"{why.group_mean:.2f}"),
             ("student carries", why.group_mean, why.prior, None, f"{why.prior - why.group_mean:+.2f}"),
             ("network adds", why.prior, why.prediction, None, f"{why.correction:+.2f}"),
             ("prediction", start, why.prediction, "#6b7280", f"{why.prediction:.2f}")]
    parts = [f'<svg viewBox="0 0 {width} {row * len(steps) + 26}" width="100%" style="max-width:{width * 1.6:.0f}px" '
             f'role="img" {FONT} font-size="12" aria-label="{html.escape(sentence)}">']
    for i, (label, begin, finish, colour, text) in enumerate(steps):
        top = 6 + i * row
        a, b = sorted((x(begin), x(finish)))
        fill = colour or "rgb({},{},{})".format(*(POSITIVE if finish >= begin else NEGATIVE))
        parts.append(f'<text x="0" y="{top + 15}">{label}</text><rect x="{a:.1f}" y="{top}" '
                     f'width="{max(b - a, 1.5):.1f}" height="20" fill="{fill}"/>'
                     f'<text x="{b + 4:.1f}" y="{top + 15}">{text}</text>')
    parts.append(f'<text x="{left}" y="{row * len(steps) + 20}" fill="#555" font-size="11">grade points, '
                 f'{start:.1f} to {end:.1f} shown</text></svg>')
    return "".join(parts)


def heat_map(values: np.ndarray, rows: list[str], columns: list[str], title: str, cell: int = 14) -> str:
    """A matrix as coloured cells (signed values around white), its row and column names beside it."""
    values = np.asarray(values, dtype=float)
    largest = float(np.nanmax(np.abs(values))) if values.size else 0.0
    label_width = 8 * max((len(r) for r in rows), default=1) + 8
    top = 34 if max((len(c) for c in columns), default=0) <= 3 else 64
    width, height = label_width + cell * values.shape[1] + 4, top + cell * values.shape[0] + 4
    parts = [f'<figure style="margin:0 0 12px 0"><figcaption style="font-size:13px">{html.escape(title)} '
             f'(largest |value| {largest:.2f}; blue below 0, red above)</figcaption>'
             f'<svg viewBox="0 0 {width} {height}" style="max-width:100%;width:{width}px" role="img" {FONT} '
             f'font-size="10" aria-label="{html.escape(title)}">']
    for j, name in enumerate(columns):
        x = label_width + j * cell + cell / 2
        place = f'transform="translate({x:.1f},{top - 4}) rotate(-60)"' if top > 34 else \
            f'x="{x:.1f}" y="{top - 4}" text-anchor="middle"'
        parts.append(f'<text {place}>{html.escape(name)}</text>')
    for i, name in enumerate(rows):
        y = top + i * cell
        parts.append(f'<text x="{label_width - 4}" y="{y + cell - 3}" text-anchor="end">{html.escape(name)}</text>')
        parts += [f'<rect x="{label_width + j * cell}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                  f'fill="{_colour(value, largest)}"><title>{html.escape(name)}, {html.escape(columns[j])}: '
                  f'{value:.3f}</title></rect>' for j, value in enumerate(values[i])]
    parts.append("</svg></figure>")
    return "".join(parts)
