"""Grouping images that are the same picture: by exact pixels, or by pHash distance.

Groups are lists of row indices (ascending) with at least two members, so cleaners can
decide per group what to keep.
"""

from __future__ import annotations

import hashlib

import numpy as np


def exact_groups(images: np.ndarray) -> list[np.ndarray]:
    """Rows whose pixels are identical, as groups of two or more."""
    digests = np.array([hashlib.blake2b(image.tobytes(), digest_size=16).digest()
                        for image in images], dtype="S16")
    return _groups_from_keys(digests)


def near_groups(hashes: np.ndarray, max_distance: int, chunk: int = 1024) -> list[np.ndarray]:
    """Connected components of 'pHash Hamming distance <= max_distance', size >= 2.

    All pairs are compared in chunks (about 1 s for 14,000 hashes on 2 cores); pairs are
    joined with union-find, so a chain of near copies forms one group.
    """
    from codabench_kit.phash import hamming

    hashes = np.asarray(hashes, dtype=np.uint64)
    parent = np.arange(len(hashes))

    def find(i):
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    for start in range(0, len(hashes), chunk):
        block = hashes[start:start + chunk]
        distances = hamming(block[:, None], hashes[None, :])
        rows, cols = np.nonzero(distances <= max_distance)
        rows = rows + start
        for a, b in zip(rows[rows < cols], cols[rows < cols]):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(i) for i in range(len(hashes))])
    return _groups_from_keys(roots)


def _groups_from_keys(keys: np.ndarray) -> list[np.ndarray]:
    if len(keys) == 0:
        return []
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    split = np.split(order, np.cumsum(counts)[:-1])
    return sorted((np.sort(g) for g in split if len(g) > 1), key=lambda g: g[0])
