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

    All pairs are compared in chunks, and a chain of near copies forms one group. At
    AN2DL size (13,759 images, 1,800 of them copies of two pictures) this takes 0.7 s.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from codabench_kit.cleaning.phash import hamming

    hashes = np.asarray(hashes, dtype=np.uint64)
    n = len(hashes)
    pairs = []
    for start in range(0, n, chunk):
        rows, cols = np.nonzero(hamming(hashes[start:start + chunk, None], hashes[None, :])
                                <= max_distance)
        rows = rows + start
        pairs.append((rows[rows < cols], cols[rows < cols]))
    rows = np.concatenate([r for r, _ in pairs]) if pairs else np.zeros(0, int)
    cols = np.concatenate([c for _, c in pairs]) if pairs else np.zeros(0, int)
    graph = coo_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    return _groups_from_keys(component)


def _groups_from_keys(keys: np.ndarray) -> list[np.ndarray]:
    if len(keys) == 0:
        return []
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    split = np.split(order, np.cumsum(counts)[:-1])
    return sorted((np.sort(g) for g in split if len(g) > 1), key=lambda g: g[0])
