"""The build report's pictures, drawn with Pillow like the robustness chart: class
counts, training curves, confusion matrices and saliency panels. Each function returns an
RGB PIL image; :mod:`codabench_kit.report.html` saves and embeds them."""

from __future__ import annotations

import numpy as np

from codabench_kit.report.drawing import (SCALE, canvas, finish, fit_text, font, marker,
                                          text_width, vertical_text)

TRAIN, VALIDATION, BEFORE, AFTER = "#1f77b4", "#ff7f0e", "#aec7e8", "#1f77b4"
HEAT_STOPS = np.array([(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99),
                       (212, 72, 66), (245, 125, 21), (250, 193, 39), (252, 255, 164)],
                      dtype=np.float32)
"""An inferno-like colour map: black (no influence) to pale yellow (most)."""


def class_counts_chart(class_names, before, after=None, width: int = 620):
    """Horizontal bars per class: images before cleaning (light) and after (dark)."""
    s, n = SCALE, len(class_names)
    row = 28
    height = 70 + n * row
    image, draw = canvas(width, height)
    small, normal = font(12), font(14)
    left, right = 180, 50
    x0, x1 = left * s, (width - right) * s
    top = max(max(before, default=0), max(after if after is not None else [0], default=0), 1)
    draw.text((12 * s, 12 * s), "images per class", fill="black", font=font(16), anchor="lt")
    legend = [("before cleaning", BEFORE)] + ([("after cleaning", AFTER)] if after is not None
                                             else [])
    lx = x1
    for label, colour in reversed(legend):
        lx -= (draw.textlength(label, font=normal) / s + 26) * s
        draw.rectangle([lx, 14 * s, lx + 14 * s, 26 * s], fill=colour)
        draw.text((lx + 18 * s, 20 * s), label, fill="black", font=normal, anchor="lm")
        lx -= 16 * s
    for i, name in enumerate(class_names):
        y = (48 + i * row) * s
        draw.text((x0 - 8 * s, y + row * s / 2), fit_text(draw, str(name), normal, (left - 14) * s),
                  fill="black", font=normal, anchor="rm")
        bars = [(before[i], BEFORE, 0)] + ([(after[i], AFTER, 1)] if after is not None else [])
        thick = (row - 8) / len(bars)
        for value, colour, k in bars:
            yy = y + (4 + k * thick) * s
            end = x0 + (x1 - x0) * value / top
            draw.rectangle([x0, yy, max(end, x0 + s), yy + (thick - 1) * s], fill=colour)
            draw.text((end + 4 * s, yy + thick * s / 2), str(int(value)), fill="black",
                      font=small, anchor="lm")
    draw.line([(x0, 44 * s), (x0, (50 + n * row) * s)], fill="black", width=s)
    return finish(image, width, height)


def _epochs(history: dict) -> tuple[dict[str, list[float]], list[tuple[str, int]]]:
    """Series concatenated over the training phases, and (phase, first epoch index)."""
    series: dict[str, list[float]] = {}
    phases, done = [], 0
    for phase, values in history.items():
        if not isinstance(values, dict) or not values:
            continue
        length = max(len(v) for v in values.values())
        phases.append((phase, done))
        for key, v in values.items():
            series.setdefault(key, [float("nan")] * done)
            series[key] += [float(x) for x in v] + [float("nan")] * (length - len(v))
        for key in series:
            series[key] += [float("nan")] * (done + length - len(series[key]))
        done += length
    return series, phases


def training_curves_chart(history: dict):
    """Loss and accuracy per epoch (training and validation), phases marked."""
    series, phases = _epochs(history)
    width, height = 980, 380
    image, draw = canvas(width, height)
    s = SCALE
    epochs = max((len(v) for v in series.values()), default=0)
    panels = [("loss", "loss", "val_loss"), ("accuracy", "accuracy", "val_accuracy")]
    for p, (title, train_key, val_key) in enumerate(panels):
        left = 60 + p * 490
        box = (left * s, 40 * s, (left + 400) * s, 320 * s)
        values = [x for key in (train_key, val_key) for x in series.get(key, []) if x == x]
        top = 1.0 if title == "accuracy" else nice_top(max(values, default=1.0))
        _line_panel(draw, box, epochs, top, title, phases,
                    [("training", series.get(train_key, []), TRAIN),
                     ("validation", series.get(val_key, []), VALIDATION)])
    if not epochs:
        draw.text((width * s / 2, height * s / 2), "no training epochs recorded",
                  fill="firebrick", font=font(16), anchor="mm")
    return finish(image, width, height)


def nice_top(value: float) -> float:
    """The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^k) >= ``value``."""
    if not value > 0 or value != value or value == float("inf"):
        return 1.0
    power = 10.0 ** np.floor(np.log10(value))
    return next(float(m * power) for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)
                if m * power >= value * 0.9999)


def _line_panel(draw, box, epochs, top, title, phases, lines):
    """One panel of the training curves in ``box``: ``lines`` over epochs, phases marked."""
    s = SCALE
    x0, y0, x1, y1 = box
    small, normal = font(11), font(13)
    draw.text((x0, y0 - 14 * s), title, fill="black", font=font(15), anchor="ls")

    def px(i):  # epoch index 0..epochs-1
        return x0 + (i + 0.5) / max(epochs, 1) * (x1 - x0)

    def py(v):  # up to 1.04 x top: a line at the top stays clear of the frame
        return y1 - v / (1.04 * top) * (y1 - y0)

    for k in range(6):
        y = py(top * k / 5)
        if 0 < k:
            draw.line([(x0, y), (x1, y)], fill="#e6e6e6", width=s)
        draw.text((x0 - 6 * s, y), f"{top * k / 5:.3g}", fill="black", font=small, anchor="rm")
    step = max(1, -(-epochs // 10))
    for i in range(0, epochs, step):
        draw.line([(px(i), y1), (px(i), y1 + 5 * s)], fill="black", width=s)
        draw.text((px(i), y1 + 8 * s), str(i + 1), fill="black", font=small, anchor="mt")
    draw.text(((x0 + x1) / 2, y1 + 26 * s), "epoch", fill="black", font=normal, anchor="mt")
    phase_labels = []
    for phase, start in phases:
        x = x0 + start / max(epochs, 1) * (x1 - x0)
        if start:
            draw.line([(x, y0), (x, y1)], fill="#999999", width=s)
        phase_labels.append(((x + 4 * s, y0 + 4 * s), phase))
    draw.rectangle([x0, y0, x1, y1], outline="black", width=s)
    for name, values, colour in lines:
        points = [(px(i), py(v)) for i, v in enumerate(values) if v == v]
        if len(points) > 1:
            draw.line(points, fill=colour, width=3 * s, joint="curve")
        for x, y in points:
            marker(draw, "circle", x, y, 4 * s, colour)
    for at, phase in phase_labels:  # over the lines, on a white ground
        _label_on_white(draw, at, phase, small)
    _panel_legend(draw, (x1, y0 - 19 * s), lines, small)


def _label_on_white(draw, at, text: str, small) -> None:
    """``text`` in grey with its top-left at ``at``, on a white patch hiding what is under it."""
    s = SCALE
    box = draw.textbbox(at, text, font=small, anchor="lt")
    draw.rectangle([box[0] - 2 * s, box[1] - 2 * s, box[2] + 2 * s, box[3] + 2 * s],
                   fill="white")
    draw.text(at, text, fill="#555555", font=small, anchor="lt")


def _panel_legend(draw, end, lines, small) -> None:
    """The panel's series names with their colours, right-aligned to ``end`` (x, y)."""
    s = SCALE
    lx, ly = end
    for name, _, colour in reversed(lines):
        lx -= draw.textlength(name, font=small) + 30 * s
        draw.line([(lx, ly), (lx + 20 * s, ly)], fill=colour, width=3 * s)
        draw.text((lx + 26 * s, ly), name, fill="black", font=small, anchor="lm")
        lx -= 14 * s


def confusion_chart(matrix, class_names, title: str):
    """Counts per (true, predicted) class; cells shaded by their share of the true class."""
    matrix = np.asarray(matrix, dtype=np.int64)
    n = len(matrix)
    cell = int(min(44, max(16, 320 // max(n, 1))))
    s = SCALE
    small, normal = font(11 if cell >= 28 else 9), font(13)
    longest = max((text_width(str(name), small) / SCALE for name in class_names[:n]), default=0)
    left, top = int(min(longest, 120) + 40), 44
    bottom = int(min(longest, 120) + 36)
    width = max(left + n * cell + 20, 360)
    height = top + n * cell + bottom
    image, draw = canvas(width, height)
    draw.text((width * s / 2, 18 * s), fit_text(draw, title, font(15), (width - 10) * s),
              fill="black", font=font(15), anchor="mm")
    x0, y0 = left * s, top * s
    _confusion_cells(draw, matrix, (x0, y0), cell, small)
    draw.rectangle([x0, y0, x0 + n * cell * s, y0 + n * cell * s], outline="black", width=s)
    for i, name in enumerate(class_names[:n]):
        label = fit_text(draw, str(name), small, (left - 36) * s)
        draw.text((x0 - 6 * s, y0 + (i + 0.5) * cell * s), label, fill="black", font=small,
                  anchor="rm")
        vertical = vertical_text(fit_text(draw, str(name), small, (bottom - 32) * s), small)
        image.paste(vertical, (int(x0 + (i + 0.5) * cell * s - vertical.width / 2),
                               int(y0 + n * cell * s + 6 * s)))
    draw.text((x0 + n * cell * s / 2, (height - 12) * s), "predicted class", fill="black",
              font=normal, anchor="mm")
    label = vertical_text("true class", normal)
    image.paste(label, (2 * s, int(y0 + n * cell * s / 2 - label.height / 2)))
    return finish(image, width, height)


def _confusion_cells(draw, matrix, origin, cell: int, small) -> None:
    """The matrix's cells from ``origin``, shaded by their share of the true class (row), each
    non-zero count written in it."""
    s, n = SCALE, len(matrix)
    x0, y0 = origin
    totals = np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    share = matrix / totals
    for i in range(n):
        for j in range(n):
            v = float(share[i, j])
            colour = tuple(int(255 - (255 - c) * v) for c in (8, 48, 107))
            box = [x0 + j * cell * s, y0 + i * cell * s,
                   x0 + (j + 1) * cell * s, y0 + (i + 1) * cell * s]
            draw.rectangle(box, fill=colour, outline="#dddddd", width=s)
            if matrix[i, j]:
                draw.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), str(matrix[i, j]),
                          fill="white" if v > 0.5 else "black", font=small, anchor="mm")


def heat_colours(heat: np.ndarray) -> np.ndarray:
    """``heat`` (0..1) through the colour map: uint8 RGB."""
    position = np.clip(np.asarray(heat, dtype=np.float32), 0, 1) * (len(HEAT_STOPS) - 1)
    low = np.floor(position).astype(int).clip(0, len(HEAT_STOPS) - 2)
    t = (position - low)[..., None]
    return np.round(HEAT_STOPS[low] * (1 - t) + HEAT_STOPS[low + 1] * t).astype(np.uint8)


def saliency_panel(image: np.ndarray, heat: np.ndarray, size: int = 160):
    """The image, its heat map and the two blended, side by side, with titles."""
    from PIL import Image, ImageDraw

    gap, header = 8, 18
    picture = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).resize(
        (size, size), Image.BICUBIC)
    colours = Image.fromarray(heat_colours(heat)).resize((size, size), Image.BICUBIC)
    blend = Image.blend(picture.convert("RGB"), colours, 0.55)
    sheet = Image.new("RGB", (3 * size + 2 * gap, size + header), "white")
    draw = ImageDraw.Draw(sheet)
    label_font = font(12, scale=1)
    for k, (title, tile) in enumerate((("image", picture), ("saliency", colours),
                                       ("overlay", blend))):
        x = k * (size + gap)
        draw.text((x + size / 2, header / 2), title, fill="black", font=label_font,
                  anchor="mm")
        sheet.paste(tile.convert("RGB"), (x, header))
    return sheet
