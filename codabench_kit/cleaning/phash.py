"""Perceptual hashes (pHash) of a whole image array at once, bit-identical to ``imagehash``.

``imagehash.phash(PIL.Image.fromarray(img))`` (hash_size 8, highfreq_factor 4) does::

    image.convert("L").resize((32, 32), LANCZOS)        # Pillow, 8-bit integer arithmetic
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
    low = dct[:8, :8]
    bits = low > numpy.median(low)

Called once per image that is about 0.1 ms of one core for a 96x96 image (half of it in
Pillow's resize), about 1.4 s for the 13,759 AN2DL images. :func:`phash_bits` does the
same for a whole ``(N, H, W, 3)`` array with a fixed number of numpy/BLAS calls per chunk
of images (about 0.2 s for 13,759 images on 2 cores) and gives the *same bits*.

Why the fixed-point arithmetic
------------------------------
The hash compares each low-frequency DCT coefficient with the median of the 64; a
coefficient that sits close to the median flips its bit on the smallest change of input.
A float re-implementation of "grey, then Lanczos to 32x32" (same Lanczos weights, no
rounding between steps) differs from Pillow by a grey level here and there, and that
flips bits: on the 800 real images of ``pbc96_mini_800`` it gave a different hash for
47 of them. Hashes that differ from imagehash's would change which images count as
near duplicates, so every step reproduces Pillow's integer arithmetic instead:

* RGB -> L: ``L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16`` (Pillow's ``rgb2l``;
  the weights are ITU-R 601-2 luma scaled by 2**16 and sum to 2**16).
* LANCZOS resize (``src/libImaging/Resample.c``): per output pixel, the Lanczos-3 window
  is evaluated in double precision exactly as ``precompute_coeffs`` does (support
  ``3 * scale`` when shrinking, taps at ``(x - center + 0.5) / scale``, the window bounds
  rounded the C way, taps normalised to sum 1), then turned into integers with
  ``PRECISION_BITS = 22`` (``normalize_coeffs_8bpc``: ``(int)(k * 2**22 +- 0.5)``).
  Each pass computes ``clip8((2**21 + sum(pixel * coeff)) >> 22)``, i.e. it rounds to an
  8-bit image, and the second pass reads that 8-bit result. Both passes are written as
  matrix products over the batch.
* Pass order: Pillow 13 resizes vertically first when the height shrinks markedly more
  than the width (Pillow PR #9549). For a 32x32 target that is ``H > 32 and H - 32 >
  2 * (W - 32)``: a rule found by comparing with Pillow 13.0.0 on every H, W in 8..129
  and on tall images up to 777 rows, not read from its source. Before that change
  Pillow always went horizontal first, which is what is done for an installed Pillow
  older than 13 (its version is read from the package metadata, Pillow is not
  imported). Because each pass rounds to 8 bits the order changes the result. Square
  images, such as the 96x96 AN2DL ones, go horizontal first in every version.

How it is fast *and* exact
--------------------------
The integer sums are computed as float products through BLAS, where every intermediate
value is an integer (or an integer times a power of two) well inside the exact range of
the float type, so the results are exactly the integers Pillow computes:

* grey: ``R * w_R / 2**16 + ...`` in float32 -- every product and partial sum is a
  multiple of 2**-16 below 256, i.e. needs at most 24 significant bits;
* resize: ``pixel * coeff / 2**22`` summed in float64 -- every product and partial sum
  is a multiple of 2**-22 no larger than ``255 * sum|coeff| / 2**22`` (Pillow keeps the
  integer sum inside an int32), i.e. needs at most about 32 of float64's 53 significant
  bits, so the summation order (BLAS blocking, FMA) cannot change it;
  ``floor(x + 0.5)`` then equals Pillow's ``(2**21 + s) >> 22``;
* the Lanczos matrices are banded, so each pass multiplies only the band of input
  columns that a group of 8 output columns reads.

The DCT is ``scipy.fftpack.dct`` itself, run on the whole chunk along the same axes in
the same order as imagehash (y first, then x); per line it does the same arithmetic as in
imagehash's per-image call (the tests check the bits). The median of the 64 low
coefficients is taken with the same partition-and-average arithmetic as ``numpy.median``.

Work is done in chunks of images (bounded memory, scratch buffers reused from chunk to
chunk) spread over threads. While they run, BLAS is limited to one thread through
``threadpoolctl`` (installed with scikit-learn), process-wide, so that BLAS's own threads
do not fight ours; without threadpoolctl everything runs in the calling thread. (The
limit is process-wide and restored on return, so calls from several threads at once may
leave it in the wrong place: hash a big array in one call instead.)
"""

from __future__ import annotations

import functools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["HASH_SIZE", "hamming", "phash", "phash_bits", "to_hex"]

HASH_SIZE = 8
"""Side of the hash's DCT block: 8x8 = 64 bits (imagehash's default ``hash_size``)."""
_SIDE = HASH_SIZE * 4  # imagehash's highfreq_factor 4: images are resized to 32x32
_PRECISION_BITS = 32 - 8 - 2  # Pillow's Resample.c, 8 bits per channel
_GROUP = 8  # output columns per band-limited matrix product
_CHUNK_PIXELS = 32 * 96 * 96  # input pixels per chunk (32 AN2DL images)

# Pillow's rgb2l weights, scaled by 2**-16 (exact in float32); alpha, if any, weighs 0.
_GREY_WEIGHTS = np.array([19595, 38470, 7471, 0], dtype=np.float32) * np.float32(2.0 ** -16)


# --------------------------------------------------------------------------- resize


def _lanczos(x: float) -> float:
    """Pillow's ``lanczos_filter``: sinc(x) * sinc(x / 3) on [-3, 3), same operations."""

    def sinc(v: float) -> float:
        if v == 0.0:
            return 1.0
        v = v * math.pi
        return math.sin(v) / v

    if -3.0 <= x < 3.0:
        return sinc(x) * sinc(x / 3)
    return 0.0


@functools.lru_cache(maxsize=64)
def _pillow_coefficients(in_size: int, out_size: int) -> np.ndarray:
    """Pillow's fixed-point LANCZOS coefficients as an ``(in_size, out_size)`` int64 matrix.

    Column ``o`` holds the integer taps Pillow applies to input pixels for output pixel
    ``o`` (``precompute_coeffs`` followed by ``normalize_coeffs_8bpc``), zero outside
    the window. Python floats are C doubles and ``math.sin`` is the C library's, so the
    taps (and their rounding to integers) are Pillow's.
    """
    scale = float(in_size) / out_size  # (in1 - in0) / outSize with the default box
    filterscale = max(scale, 1.0)
    support = 3.0 * filterscale
    ss = 1.0 / filterscale
    matrix = np.zeros((in_size, out_size), dtype=np.int64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)  # C (int) truncates toward zero
        xmax = min(int(center + support + 0.5), in_size) - xmin
        taps = []
        total = 0.0
        for x in range(xmax):
            w = _lanczos((x + xmin - center + 0.5) * ss)
            taps.append(w)
            total += w
        for x, w in enumerate(taps):
            k = w / total if total != 0.0 else w
            if k < 0:
                matrix[xmin + x, xx] = int(-0.5 + k * (1 << _PRECISION_BITS))
            else:
                matrix[xmin + x, xx] = int(0.5 + k * (1 << _PRECISION_BITS))
    return matrix


class _Pass:
    """One resampling pass as band-limited matrix products: ``(M, in) -> (out, M)``.

    ``__call__(x)`` returns ``coeffs.T @ x.T`` rounded like Pillow: the contracted axis
    leaves the end of the array and the new (resampled) axis comes first, which keeps the
    products large (``M`` is the long side) and lets the next pass read its axis
    contiguously without a copy. ``groups`` are ``(o0, o1, lo, hi, block)``: outputs
    ``o0:o1`` read only inputs ``lo:hi``, through ``block`` = (coefficients *
    2**-22).T (float64, exact).
    """

    def __init__(self, in_size: int, out_size: int):
        coeffs = _pillow_coefficients(in_size, out_size)
        scaled = (coeffs.astype(np.float64) * 2.0 ** -_PRECISION_BITS).T
        self.out_size = out_size
        self.groups = []
        for o0 in range(0, out_size, _GROUP):
            o1 = min(o0 + _GROUP, out_size)
            cols = np.flatnonzero((coeffs[:, o0:o1] != 0).any(axis=1))
            lo, hi = (int(cols[0]), int(cols[-1]) + 1) if len(cols) else (0, 1)
            self.groups.append((o0, o1, lo, hi, np.ascontiguousarray(scaled[o0:o1, lo:hi])))
        banded = sum((hi - lo) * (o1 - o0) for o0, o1, lo, hi, _ in self.groups)
        if banded > 0.75 * in_size * out_size:  # hardly banded: one product is cheaper
            self.groups = [(0, out_size, 0, in_size, np.ascontiguousarray(scaled))]

    def __call__(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``x``: (M, in) float64 of 8-bit values -> ``out``: (out, M), 8-bit values."""
        xt = x.T
        for o0, o1, lo, hi, block in self.groups:
            np.matmul(block, xt[lo:hi], out=out[o0:o1])
        # Pillow: clip8((2**21 + s) >> 22); here out = s / 2**22 exactly.
        out += 0.5
        np.floor(out, out=out)
        np.clip(out, 0.0, 255.0, out=out)
        return out


@functools.lru_cache(maxsize=64)
def _resize_plan(height: int, width: int) -> tuple[_Pass | None, _Pass | None, bool]:
    """(horizontal pass or None, vertical pass or None, vertical pass first?)."""
    horizontal = _Pass(width, _SIDE) if width != _SIDE else None
    vertical = _Pass(height, _SIDE) if height != _SIDE else None
    return horizontal, vertical, _vertical_first(height, width)


def _vertical_first(height: int, width: int) -> bool:
    """Whether Pillow resizes ``height x width`` to 32x32 vertically first (see module doc)."""
    if _pillow_major() < 13:
        return False
    return height > _SIDE and (height - _SIDE) > 2 * (width - _SIDE)


@functools.lru_cache(maxsize=1)
def _pillow_major() -> int:
    """Major version of the installed Pillow (13 when it is absent: match current Pillow)."""
    from importlib import metadata

    try:
        return int(metadata.version("pillow").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return 13


def _resize(grey: np.ndarray, ws: dict) -> tuple[np.ndarray, str]:
    """(n, H, W) float64 grey -> (32x32 per image, axis names) as Pillow's LANCZOS.

    Each pass moves its axis to the front (see :class:`_Pass`), so the result's axes are
    some order of ``"n"``, ``"y"``, ``"x"``, given by the returned string: ``"yxn"`` for
    the usual horizontal-then-vertical resize.
    """
    horizontal, vertical, vertical_first = _resize_plan(*grey.shape[1:])
    steps = (vertical, horizontal) if vertical_first else (horizontal, vertical)
    a, axes = grey, "nyx"
    for i, step in enumerate(steps):
        if step is None:
            continue
        axis = "y" if step is vertical else "x"
        if axes[2] != axis:  # a pass contracts the last, contiguous axis
            order = [j for j in range(3) if axes[j] != axis] + [axes.index(axis)]
            a, axes = np.ascontiguousarray(a.transpose(order)), "".join(axes[j] for j in order)
        out = _buffer(ws, f"pass{i}", (_SIDE, a.shape[0] * a.shape[1]))
        a = step(a.reshape(-1, a.shape[2]), out).reshape(_SIDE, a.shape[0], a.shape[1])
        axes = axis + axes[:2]
    return a, axes


def _buffer(ws: dict, name: str, shape: tuple, dtype=np.float64) -> np.ndarray:
    """A scratch array from the worker's workspace ``ws``, reused from chunk to chunk.

    Allocating fresh multi-megabyte arrays for every chunk costs page faults that took
    as long as the arithmetic; each worker keeps one flat buffer per name instead.
    """
    size = math.prod(shape)
    flat = ws.get(name)
    if flat is None or flat.size < size or flat.dtype != dtype:
        flat = ws[name] = np.empty(size, dtype)
    return flat[:size].reshape(shape)


# ----------------------------------------------------------------------------- hash


def _grey(chunk: np.ndarray, ws: dict) -> np.ndarray:
    """(n, H, W[, C]) uint8 -> (n, H, W) float64 holding Pillow's 8-bit "L" values."""
    n, height, width = chunk.shape[:3]
    out = _buffer(ws, "grey", (n, height, width))
    if chunk.ndim == 3 or chunk.shape[3] == 1:  # already grey ("L")
        np.copyto(out, chunk.reshape(n, height, width), casting="unsafe")
        return out
    channels = chunk.shape[3]
    pixels = _buffer(ws, "pixels", (n * height * width, channels), np.float32)
    np.copyto(pixels, chunk.reshape(-1, channels), casting="unsafe")
    grey = _buffer(ws, "grey32", (n * height * width,), np.float32)
    np.matmul(pixels, _GREY_WEIGHTS[:channels], out=grey)  # exact: k * 2**-16 below 256
    grey += np.float32(0.5)  # (s + 0x8000) >> 16 == floor(s / 2**16 + 0.5)
    np.floor(grey.reshape(n, height, width), out=out)
    return out


def _median64(low: np.ndarray) -> np.ndarray:
    """``numpy.median`` of each row of (n, 64): mean of the 32nd and 33rd smallest."""
    part = np.partition(low, (31, 32), axis=1)
    return (part[:, 31] + part[:, 32]) / 2


def _hash_chunk(chunk: np.ndarray, ws: dict) -> np.ndarray:
    import scipy.fftpack

    small, axes = _resize(_grey(chunk, ws), ws)
    # pocketfft is much faster along contiguous lines than across images: [n, y, x] first.
    small = np.ascontiguousarray(small.transpose([axes.index(c) for c in "nyx"]))
    # imagehash: dct over y (axis 0 of one image) first, then over x; keep the 8x8 corner.
    low = scipy.fftpack.dct(small, axis=1)[:, :HASH_SIZE]
    low = scipy.fftpack.dct(low, axis=2)[:, :, :HASH_SIZE]
    block = np.ascontiguousarray(low).reshape(len(chunk), HASH_SIZE * HASH_SIZE)
    return block > _median64(block)[:, None]


def _check(images) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"phash expects uint8 images; received dtype {images.dtype}")
    ok = images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in (1, 3, 4))
    if not ok:
        raise ValueError("phash expects images shaped (N, H, W, 3), (N, H, W, 4), "
                         f"(N, H, W, 1) or grey (N, H, W); received {images.shape}")
    return images


def phash_bits(images, *, chunk_size: int | None = None, workers: int | None = None
               ) -> np.ndarray:
    """pHash bits of every image: bool ``(N, 64)``, equal to imagehash's.

    Row ``i`` equals ``imagehash.phash(PIL.Image.fromarray(images[i])).hash.flatten()``:
    the 8x8 low-frequency block in row-major order (index ``8 * row + col``, row = the
    vertical frequency).

    images: uint8 ``(N, H, W, 3)`` RGB (``(N, H, W, 4)`` RGBA: alpha ignored, as
    ``convert("L")`` does) or grey ``(N, H, W)`` / ``(N, H, W, 1)``; any H, W (the
    resampling matrices are computed once per size and cached).
    chunk_size: images per chunk (default: about 295k pixels' worth, 32 images of 96x96);
    it bounds the scratch memory, about 25 bytes per pixel of a chunk, per worker.
    workers: threads (default: the CPUs this process may use, at most 8).
    """
    images = _check(images)
    n = len(images)
    if n == 0:
        return np.zeros((0, HASH_SIZE * HASH_SIZE), dtype=bool)
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_PIXELS // (images.shape[1] * images.shape[2]))
    starts = range(0, n, chunk_size)
    if workers is None:
        workers = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1))
    workers = max(1, min(workers, len(starts)))
    out = np.empty((n, HASH_SIZE * HASH_SIZE), dtype=bool)

    local = threading.local()  # each worker's scratch buffers, freed with this call

    def work(start: int) -> None:
        ws = local.__dict__.setdefault("ws", {})
        out[start:start + chunk_size] = _hash_chunk(images[start:start + chunk_size], ws)

    controller = _blas_controller()
    if controller is None:  # BLAS threads would fight ours: one thread, BLAS's own threads
        for start in starts:
            work(start)
        return out
    # One BLAS thread per worker: the products are small, and a multi-threaded BLAS
    # called from several threads (or on a busy machine) spends its time waiting.
    with controller.limit(limits=1, user_api="blas"):
        if workers == 1:
            for start in starts:
                work(start)
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(work, starts))
    return out


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries, or None without it."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def phash(images, **kwargs) -> np.ndarray:
    """pHash of every image as uint64 ``(N,)``; keyword arguments as :func:`phash_bits`.

    Bit order: hash bit ``i`` (``phash_bits(...)[:, i]``, row-major over the 8x8 block) is
    bit ``63 - i`` of the integer, i.e. the first bit is the most significant, as in
    imagehash's hex string: ``to_hex(phash(x)[i]) == str(imagehash.phash(image_i))``.
    """
    bits = phash_bits(images, **kwargs)
    packed = np.packbits(bits, axis=1)  # (N, 8) bytes, most significant bit first
    return packed.view(">u8").reshape(-1).astype(np.uint64)


_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def hamming(a, b) -> np.ndarray:
    """Hamming distance(s) between uint64 hashes, broadcasting like ``a ^ b``: uint8 0..64.

    Equals ``imagehash_a - imagehash_b`` for the corresponding ImageHash objects.
    """
    x = np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(x)
    x = np.ascontiguousarray(x)
    counts = _POPCOUNT8[x.reshape(x.shape + (1,)).view(np.uint8)]
    return counts.sum(axis=-1, dtype=np.uint8)


def to_hex(h):
    """Hex string of a uint64 hash, as ``str(imagehash.ImageHash)``; a list for an array."""
    arr = np.asarray(h, dtype=np.uint64)
    if arr.ndim == 0:
        return f"{int(arr):016x}"
    return [f"{int(v):016x}" for v in arr.reshape(-1)]
