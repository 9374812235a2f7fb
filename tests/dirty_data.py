"""Make a dirty copy of a clean dataset the AN2DL way, with the truth about every row.

Contaminants: one cartoon copied ``copies`` times under every label and one poster copied
``2 * copies`` times under one label. Exact duplicates (same label), near duplicates (JPEG
re-encodes and 1-pixel shifts, same label), and duplicates under another label
(conflicts, exact and re-encoded). Originals come first, copies after, shuffled.
"""

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass
class Dirty:
    images: np.ndarray
    labels: np.ndarray
    kind: np.ndarray
    """Per row: real, contaminant, exact_dup, near_dup or conflict."""
    partner: np.ndarray
    """Per copied row: the row of its original (-1 elsewhere)."""


def cartoon(size=96):
    y, x = np.mgrid[:size, :size]
    image = np.zeros((size, size, 3), np.uint8)
    image[:] = (40, 170, 60)
    face = (x - 48) ** 2 + (y - 48) ** 2 < 34**2
    image[face] = (250, 220, 40)
    for cx in (36, 60):
        image[(x - cx) ** 2 + (y - 40) ** 2 < 5**2] = (20, 20, 20)
    image[(np.abs(y - 62) < 3) & (np.abs(x - 48) < 16)] = (200, 30, 30)
    return image


def poster(size=96):
    y, x = np.mgrid[:size, :size]
    image = np.full((size, size, 3), 240, np.uint8)
    image[(y // 8) % 2 == 0] = (30, 30, 120)
    image[(x > 60) & (y > 50)] = (220, 60, 20)
    return image


def jpeg(image, quality):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(buffer).convert("RGB"))


def shift(image, dx, dy):
    out = np.roll(image, (dy, dx), axis=(0, 1))
    if dy:
        out[0 if dy > 0 else -1] = out[1 if dy > 0 else -2]
    if dx:
        out[:, 0 if dx > 0 else -1] = out[:, 1 if dx > 0 else -2]
    return out


def make_dirty(images, labels, *, seed=0, copies=15, exact=30, near=40, conflicts=20,
               num_classes=8) -> Dirty:
    rng = np.random.default_rng(seed)
    n = len(labels)
    picks = rng.permutation(n)
    exact_rows, near_rows, conflict_rows = np.split(picks[:exact + near + conflicts],
                                                    [exact, exact + near])
    new_images, new_labels, kinds, partners = [], [], [], []

    def add(image, label, kind, partner=-1):
        new_images.append(image)
        new_labels.append(label)
        kinds.append(kind)
        partners.append(partner)

    for label in range(num_classes):
        for _ in range(copies):
            add(cartoon(), label, "contaminant")
    for _ in range(2 * copies):
        add(poster(), 0, "contaminant")
    for row in exact_rows:
        add(images[row], labels[row], "exact_dup", row)
    for i, row in enumerate(near_rows):
        copy = jpeg(images[row], rng.integers(70, 95)) if i % 2 == 0 else \
            shift(images[row], *rng.choice([(1, 0), (-1, 0), (0, 1), (0, -1)]))
        add(copy, labels[row], "near_dup", row)
    for i, row in enumerate(conflict_rows):
        other = (labels[row] + rng.integers(1, num_classes)) % num_classes
        copy = images[row] if i % 2 == 0 else jpeg(images[row], 90)
        add(copy, other, "conflict", row)
    order = rng.permutation(len(new_labels))
    extra_images = np.stack(new_images)[order]
    kind = np.array(["real"] * n + [kinds[i] for i in order], dtype=object)
    kind[conflict_rows] = "conflict"
    partner = np.r_[np.full(n, -1), np.array(partners)[order]]
    return Dirty(np.concatenate([images, extra_images]),
                 np.r_[labels, np.array(new_labels)[order]].astype(np.int64),
                 kind, partner)


def score(dirty: Dirty, kept_rows) -> dict:
    """How well a cleaning did, from the rows it kept: contaminants removed, duplicate and
    conflicting pairs resolved, real images lost."""
    kept = np.zeros(len(dirty.labels), bool)
    kept[np.asarray(kept_rows)] = True
    kind, partner = dirty.kind, dirty.partner
    contaminants = kind == "contaminant"
    copies = np.flatnonzero(np.isin(kind, ["exact_dup", "near_dup"]) & (partner >= 0))
    both_kept = kept[copies] & kept[partner[copies]]
    both_lost = ~kept[copies] & ~kept[partner[copies]]
    conflict_copies = np.flatnonzero((kind == "conflict") & (partner >= 0))
    untouched = np.flatnonzero(kind == "real")
    untouched = untouched[~np.isin(untouched, partner[copies])]
    by_kind = {k: (kind[copies] == k) for k in ("exact_dup", "near_dup")}
    return {
        "contaminants_removed": int((~kept & contaminants).sum()),
        "contaminants": int(contaminants.sum()),
        "exact_pairs_resolved": int((~both_kept[by_kind["exact_dup"]]).sum()),
        "exact_pairs": int(by_kind["exact_dup"].sum()),
        "near_pairs_resolved": int((~both_kept[by_kind["near_dup"]]).sum()),
        "near_pairs": int(by_kind["near_dup"].sum()),
        "pairs_both_lost": int(both_lost.sum()),
        "conflicts_resolved": int((~(kept[conflict_copies] & kept[partner[conflict_copies]])).sum()),
        "conflicts": int(len(conflict_copies)),
        "real_lost": int((~kept[untouched]).sum()) + int(both_lost.sum()),
        "real": int(len(untouched) + len(copies)),
    }
