"""A picture of what cleaning removed: one section per reason, thumbnails captioned with
row and label.

Users judge a cleaning by looking at it. Every reason gets its own section (up to
``per_reason`` tiles), so a rare reason is not drowned by a frequent one.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from codabench_kit.report import drawing

TILE = 96
CAPTION = 14
HEADER = 18
COLUMNS = 8


def removed_grid(images: np.ndarray, labels: np.ndarray, class_names, removed,
                 path: Path, *, per_reason: int = 16) -> int:
    """Draw ``removed`` ([(row, cleaner, reason), ...]) into a PNG at ``path``; rows index
    ``images``. Returns the number of tiles drawn."""
    from PIL import Image, ImageDraw

    by_reason: dict[str, list[int]] = defaultdict(list)
    for row, cleaner, reason in removed:
        by_reason[f"{cleaner}: {reason}"].append(row)
    sections = sorted(by_reason.items(), key=lambda item: (-len(item[1]), item[0]))
    height = HEADER + sum(HEADER + -(-min(len(rows), per_reason) // COLUMNS) * (TILE + CAPTION)
                          for _, rows in sections)
    sheet = Image.new("RGB", (COLUMNS * TILE, max(height, 2 * HEADER)), "white")
    draw = ImageDraw.Draw(sheet)
    font = drawing.font(11, scale=1)
    draw.text((4, 3), f"{len(removed)} images removed; up to {per_reason} shown per reason"
              if removed else "nothing was removed", fill="black", font=font)
    y, drawn = HEADER, 0
    for why, rows in sections:
        draw.rectangle((0, y, COLUMNS * TILE, y + HEADER - 2), fill=(235, 235, 245))
        draw.text((4, y + 2), f"{why}  ({len(rows)} images)", fill="firebrick", font=font)
        y += HEADER
        for k, row in enumerate(rows[:per_reason]):
            x, top = (k % COLUMNS) * TILE, y + (k // COLUMNS) * (TILE + CAPTION)
            tile = Image.fromarray(np.ascontiguousarray(images[row])).resize((TILE, TILE))
            sheet.paste(tile, (x, top))
            label = int(labels[row])
            name = class_names[label] if label < len(class_names) else str(label)
            draw.text((x + 2, top + TILE), f"#{row} {name}"[:17], fill="black", font=font)
            drawn += 1
        y += -(-min(len(rows), per_reason) // COLUMNS) * (TILE + CAPTION)
    sheet.save(path)
    return drawn
