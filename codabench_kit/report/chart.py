"""The robustness chart: accuracy vs severity, one line per corruption, drawn with Pillow.

The clean accuracy is a dashed reference line and the mixed held-out accuracy a dotted
one. :func:`write_chart` writes the PNG atomically and never overwrites a file.
"""

from __future__ import annotations

from pathlib import Path

from codabench_kit.packaging.bundle import write_new_file
from codabench_kit.report.drawing import (SCALE, canvas, finish, fit_text, font, marker,
                                          vertical_text)

WIDTH, HEIGHT = 980, 600
LEFT, RIGHT, TOP, BOTTOM = 78, 270, 62, 66
"""Margins around the plot area; the legend sits in the right one."""
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f")
MARKERS = ("circle", "square", "triangle", "diamond", "down", "circle", "square", "triangle",
           "diamond", "down")


def write_chart(report: dict, path: Path, *, title: str | None = None) -> Path:
    """Draw the chart of ``report`` (see :mod:`codabench_kit.evaluation.robustness`) into ``path``:
    written beside it under a temporary name, then published; never overwrites."""
    chart = draw_chart(report, title=title)
    return write_new_file(Path(path), lambda partial: chart.save(partial, format="PNG"))


def _dashed(draw, start, end, *, fill, width, dash, gap):
    """A straight line from ``start`` to ``end``: ``dash`` pixels drawn, ``gap`` left out."""
    (x0, y0), (x1, y1) = start, end
    length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
    position = 0.0
    while position < length:
        stop = min(position + dash, length)
        a, b = position / length, stop / length
        draw.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a),
                   (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)], fill=fill, width=width)
        position = stop + gap


class _Frame:
    """The plot area on the canvas, and where a (severity, accuracy) point falls in it."""

    def __init__(self, severities) -> None:
        s = SCALE
        self.box = (LEFT * s, TOP * s, (WIDTH - RIGHT) * s, (HEIGHT - BOTTOM) * s)
        self.severities = list(severities)
        self.lo, self.hi = min(self.severities) - 0.4, max(self.severities) + 0.4

    def px(self, severity: float) -> float:
        """The x of ``severity``: half a step of margin either side."""
        x0, _, x1, _ = self.box
        return x0 + (severity - self.lo) / (self.hi - self.lo) * (x1 - x0)

    def py(self, accuracy: float) -> float:
        """The y of ``accuracy``, 0..1.04: lines at 1.0 stay clear of the frame."""
        _, y0, _, y1 = self.box
        return y1 - accuracy / 1.04 * (y1 - y0)


def draw_chart(report: dict, *, title: str | None = None):
    """The chart as a PIL image (RGB, WIDTH x HEIGHT)."""
    image, draw = canvas(WIDTH, HEIGHT)
    frame = _Frame(report["severities"])
    _title(draw, frame, title or (f"Robustness: accuracy vs corruption severity "
                                  f"({report['n']} test images, seed {report['seed']})"))
    _grid(draw, frame)
    _axes(image, draw, frame)
    references = _references(report)
    _reference_lines(draw, frame, references)
    names = report.get("corruptions") or list(report["accuracy"])
    styles = {name: (COLOURS[i % len(COLOURS)], MARKERS[i % len(MARKERS)])
              for i, name in enumerate(names)}
    _series(draw, frame, report, names, styles)
    _legend(draw, frame, report, names, styles, references)
    return finish(image, WIDTH, HEIGHT)


def _title(draw, frame: _Frame, title: str) -> None:
    """``title`` at the top, cut short to fit; centred over the plot when it fits there."""
    big = font(17)
    x0, _, x1, _ = frame.box
    title = fit_text(draw, title, big, (WIDTH - 20) * SCALE, min_chars=10)
    centre = (x0 + x1) / 2 if draw.textlength(title, font=big) < x1 - x0 else WIDTH * SCALE / 2
    draw.text((centre, 24 * SCALE), title, fill="black", font=big, anchor="mm")


def _grid(draw, frame: _Frame) -> None:
    """Grid lines, ticks and tick labels: every 0.1 of accuracy, and every severity."""
    s, small = SCALE, font(12)
    x0, y0, x1, y1 = frame.box
    for tenth in range(11):
        y = frame.py(tenth / 10)
        if 0 < tenth < 10:
            draw.line([(x0, y), (x1, y)], fill="#e6e6e6", width=s)
        draw.line([(x0 - 6 * s, y), (x0, y)], fill="black", width=s)
        draw.text((x0 - 10 * s, y), f"{tenth / 10:.1f}", fill="black", font=small, anchor="rm")
    for severity in frame.severities:
        x = frame.px(severity)
        draw.line([(x, y0), (x, y1)], fill="#f0f0f0", width=s)
        draw.line([(x, y1), (x, y1 + 6 * s)], fill="black", width=s)
        draw.text((x, y1 + 10 * s), str(severity), fill="black", font=small, anchor="mt")


def _axes(image, draw, frame: _Frame) -> None:
    """The frame round the plot and the axis titles, the accuracy one turned on its side."""
    s, normal = SCALE, font(14)
    x0, y0, x1, y1 = frame.box
    draw.rectangle([x0, y0, x1, y1], outline="black", width=s)
    draw.text(((x0 + x1) / 2, y1 + 34 * s), "severity (1 = mild, 5 = strong)", fill="black",
              font=normal, anchor="mt")
    label = vertical_text("accuracy", normal, height=22)
    image.paste(label, (int(16 * s), int((y0 + y1) / 2 - label.height / 2)))


def _references(report: dict) -> list[tuple]:
    """(label, accuracy, colour, dash, gap) of the clean (dashed) and mixed held-out (dotted)
    reference lines."""
    s = SCALE
    return [("clean test", report["clean"], "black", 12 * s, 7 * s),
            (f"{report.get('mixed_policy', 'mixed')} held-out", report["mixed"], "#555555",
             3 * s, 4 * s)]


def _reference_lines(draw, frame: _Frame, references: list[tuple]) -> None:
    """The reference accuracies across the plot (none for a NaN)."""
    x0, _, x1, _ = frame.box
    for _, value, colour, dash, gap in references:
        if value == value:  # not NaN
            _dashed(draw, (x0, frame.py(value)), (x1, frame.py(value)), fill=colour,
                    width=2 * SCALE, dash=dash, gap=gap)


def _series(draw, frame: _Frame, report: dict, names, styles: dict) -> None:
    """One line per corruption, then the markers, so that no line hides a marker."""
    for name in names:
        colour, _ = styles[name]
        points = [(frame.px(sv), frame.py(a))
                  for sv, a in zip(frame.severities, report["accuracy"][name])]
        draw.line(points, fill=colour, width=3 * SCALE, joint="curve")
    for name in names:
        colour, shape = styles[name]
        for sv, a in zip(frame.severities, report["accuracy"][name]):
            marker(draw, shape, frame.px(sv), frame.py(a), 5 * SCALE, colour)


def _legend(draw, frame: _Frame, report: dict, names, styles: dict,
            references: list[tuple]) -> None:
    """Right of the plot: each corruption with its mean accuracy, then the reference lines."""
    s, normal = SCALE, font(14)
    _, y0, x1, _ = frame.box
    lx, ly = x1 + 18 * s, y0
    draw.text((lx, ly), "corruption (mean accuracy)", fill="black", font=normal, anchor="lt")
    ly += 28 * s
    for name in names:
        colour, shape = styles[name]
        draw.line([(lx, ly), (lx + 30 * s, ly)], fill=colour, width=3 * s)
        marker(draw, shape, lx + 15 * s, ly, 5 * s, colour)
        draw.text((lx + 40 * s, ly), f"{name} ({report['mean'][name]:.3f})", fill="black",
                  font=normal, anchor="lm")
        ly += 24 * s
    ly += 14 * s
    for name, value, colour, dash, gap in references:
        _dashed(draw, (lx, ly), (lx + 30 * s, ly), fill=colour, width=2 * s, dash=dash, gap=gap)
        draw.text((lx + 40 * s, ly), f"{name} ({value:.3f})", fill="black", font=normal,
                  anchor="lm")
        ly += 24 * s
