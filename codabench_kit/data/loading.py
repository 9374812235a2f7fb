"""Load and validate a training set: an AN2DL-style ``.npz`` file or a folder of class folders.

Everything is checked before :func:`load_dataset` returns, and every failure is a
:class:`~codabench_kit.errors.DataError` that names the file, says what was expected
and echoes what was received.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from codabench_kit.data.dataset import AN2DL_CLASS_NAMES, Dataset
from codabench_kit.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""File suffixes read from a folder layout (case-insensitive)."""

DEFAULT_NUM_CLASSES = len(AN2DL_CLASS_NAMES)

_NPZ_LAYOUT = ("an .npz archive with keys 'images' (N, H, W, 3) uint8 and 'labels' (N,) integers "
               "or (N, C) one-hot, e.g. saved with np.savez(path, images=images, labels=labels)")


def load_dataset(path, *, image_size=(96, 96), num_classes: int | None = None) -> Dataset:
    """Load a training set and check all of it.

    Two layouts are read:

    * a ``.npz`` file like AN2DL's ``training_set.npz``: ``images`` ``(N, H, W, 3)``
      uint8 and ``labels`` ``(N,)`` integers or ``(N, C)`` one-hot; an optional
      ``class_names`` ``(C,)`` string array names the classes; other keys are ignored;
    * a directory with one subfolder per class (sorted folder names are the class
      names, hidden folders are ignored) holding image files of exactly ``image_size``.

    The number of classes comes from ``class_names`` if the file has it, else from the
    one-hot width, else from ``num_classes``, else 8 (AN2DL). Every class must have at
    least one image.

    Args:
        path: The ``.npz`` file or the directory.
        image_size: Expected ``(height, width)``, or one int for square images.
        num_classes: Number of classes when the data does not say; if the data does
            say, it must agree.

    Returns:
        A :class:`Dataset` with C-contiguous uint8 images and int64 labels.

    Raises:
        DataError: The path is missing or the data is not what is described above.
    """
    size = _normalize_image_size(image_size)
    if num_classes is not None:
        num_classes = _normalize_num_classes(num_classes)
    path = Path(path)
    images, labels, names = _read(path, size, num_classes)
    _check_no_empty_class(labels, names, path)
    return Dataset(
        images=np.ascontiguousarray(images, dtype=np.uint8),
        labels=np.ascontiguousarray(labels, dtype=np.int64),
        class_names=tuple(names),
        source=str(path),
    )


def _read(path: Path, size: tuple[int, int], num_classes: int | None):
    """Read the class folders or the .npz file at ``path`` as ``(images, labels, class names)``."""
    if not path.exists():
        raise DataError(
            f"Expected a training set: a .npz file or a folder of class subfolders. "
            f"Received: {path} does not exist"
        )
    if path.is_dir():
        images, labels, names = _read_folder(path, size)
        if num_classes is not None and num_classes != len(names):
            raise DataError(
                f"Expected {num_classes} class folders in {path} (num_classes={num_classes}). "
                f"Received: {len(names)} class folders: {list(names)}"
            )
        return images, labels, names
    if path.is_file() and path.suffix.lower() == ".npz":
        return _read_npz(path, size, num_classes)
    kind = "a file" if path.is_file() else "not a regular file or folder"
    raise DataError(
        f"Expected a .npz file ({_NPZ_LAYOUT}) or a folder of class subfolders. "
        f"Received: {path} is {kind} with suffix {path.suffix or '(none)'!r}"
    )


# --------------------------------------------------------------------------- arguments


def _normalize_image_size(image_size) -> tuple[int, int]:
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (int(image_size), int(image_size))
    try:
        height, width = (int(v) for v in image_size)
        ok = all(int(v) == v for v in image_size) and height > 0 and width > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DataError(
            f"Expected image_size as (height, width) positive integers or one integer. "
            f"Received: image_size={image_size!r}"
        )
    return height, width


def _normalize_num_classes(num_classes) -> int:
    if (isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer))
            or num_classes < 2):
        raise DataError(f"Expected num_classes to be an integer >= 2. Received: num_classes={num_classes!r}")
    return int(num_classes)


# --------------------------------------------------------------------------- .npz files


def _read_npz(path: Path, size: tuple[int, int], num_classes: int | None):
    _check_npz_container(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            missing = [k for k in ("images", "labels") if k not in keys]
            if missing:
                raise DataError(
                    f"Expected {_NPZ_LAYOUT}. Received: {path} is missing "
                    f"{' and '.join(repr(k) for k in missing)}; keys found: {keys}"
                )
            images = _read_key(archive, "images", path)
            labels = _read_key(archive, "labels", path)
            names = _read_class_names(archive, path) if "class_names" in keys else None
    except DataError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise _unreadable_npz(path, f"{type(exc).__name__}: {exc}") from None

    images = _check_images(images, size, path)
    labels, onehot_width = _check_labels(labels, len(images), path)

    defaulted = names is None and onehot_width is None and num_classes is None
    if names is not None:
        n = len(names)
        for what, value in (("one-hot labels of width ", onehot_width), ("num_classes=", num_classes)):
            if value is not None and value != n:
                raise DataError(
                    f"Expected {what}{n} to match the {n} entries of 'class_names' in {path}. "
                    f"Received: {what}{value}"
                )
    elif onehot_width is not None:
        n = onehot_width
        if num_classes is not None and num_classes != n:
            raise DataError(
                f"Expected num_classes={num_classes} to match the one-hot labels in {path}. "
                f"Received: labels of shape (N, {n}), i.e. {n} classes"
            )
        names = _default_class_names(n)
    else:
        n = num_classes if num_classes is not None else DEFAULT_NUM_CLASSES
        names = _default_class_names(n)
    _check_label_range(labels, n, path, given=not defaulted)
    return images, labels, names


def _check_npz_container(path: Path) -> None:
    """Give a precise reason when the file is clearly not an npz archive."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise _unreadable_npz(path, f"cannot open it: {exc}") from None
    if not head:
        raise _unreadable_npz(path, "the file is empty (0 bytes)")
    if head.startswith(b"\x93NUMPY"):
        raise _unreadable_npz(
            path, "it is a single .npy array, not an .npz archive; save images and labels "
                  "together with np.savez(path, images=images, labels=labels)")
    if not zipfile.is_zipfile(path):
        if head.startswith(b"PK"):
            reason = "it starts like a zip archive but its end (the zip directory) is missing"
        else:
            reason = f"no zip archive found; the file starts with {head!r}"
        raise _unreadable_npz(path, reason)


def _unreadable_npz(path: Path, reason: str) -> DataError:
    return DataError(
        f"Expected {_NPZ_LAYOUT}. Received: {path} is not a readable .npz archive "
        f"(truncated or not an npz): {reason}"
    )


def _read_key(archive, key: str, path: Path) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataError(
                f"Expected {key!r} in {path} to be a numeric array. Received: an object "
                f"array (it would need pickle to load, which cbk never does)"
            ) from None
        raise


def _read_class_names(archive, path: Path) -> tuple[str, ...]:
    try:
        raw = archive["class_names"]
    except ValueError:
        raise DataError(
            f"Expected 'class_names' in {path} to be a string array, e.g. "
            f"np.array(['basophil', 'eosinophil'], dtype=str). Received: an object array "
            f"(it would need pickle to load, which cbk never does)"
        ) from None
    if raw.ndim != 1 or raw.dtype.kind not in "US":
        raise DataError(
            f"Expected 'class_names' in {path} to be a 1-D string array of shape (C,). "
            f"Received: shape={raw.shape}, dtype={raw.dtype}"
        )
    names = tuple(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in raw.tolist())
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if len(names) < 2 or duplicates or any(not n.strip() for n in names):
        raise DataError(
            f"Expected 'class_names' in {path} to hold at least 2 distinct, non-empty names. "
            f"Received: {list(names)}" + (f" (duplicates: {duplicates})" if duplicates else "")
        )
    return names


# --------------------------------------------------------------------------- folders


def _read_folder(path: Path, size: tuple[int, int]):
    height, width = size
    class_dirs = sorted((p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")),
                        key=lambda p: p.name)
    if not class_dirs:
        files = [p.name for p in path.iterdir() if not p.name.startswith(".")]
        raise DataError(
            f"Expected a folder with one subfolder per class holding its images, e.g. "
            f"{path / 'basophil' / '0001.png'}, {path / 'eosinophil' / '0002.png'}. "
            f"Received: no class subfolders in {path} ({len(files)} other entries"
            + (f", e.g. {sorted(files)[:3]})" if files else ")")
        )
    names = tuple(d.name for d in class_dirs)
    if len(names) < 2:
        raise DataError(
            f"Expected at least 2 class subfolders in {path}. Received: only {names[0]!r}"
        )
    per_class = [
        sorted((f for f in d.iterdir() if f.is_file() and not f.name.startswith(".")
                and f.suffix.lower() in IMAGE_SUFFIXES), key=lambda f: f.name)
        for d in class_dirs
    ]
    empty = [i for i, files in enumerate(per_class) if not files]
    if empty:
        listed = ", ".join(f"class {i} ({names[i]!r}: {class_dirs[i]})" for i in empty)
        raise DataError(
            f"Expected at least one image ({', '.join(IMAGE_SUFFIXES)}) in every class folder "
            f"of {path}. Received: no images for {listed}"
        )

    total = sum(len(files) for files in per_class)
    images = np.empty((total, height, width, 3), dtype=np.uint8)
    labels = np.empty((total,), dtype=np.int64)
    row = 0
    for label, files in enumerate(per_class):
        for file in files:
            images[row] = _read_image(file, size)
            labels[row] = label
            row += 1
    return images, labels, names


def _read_image(file: Path, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image  # deferred: loading an .npz never needs PIL

    height, width = size
    try:
        with Image.open(file) as im:
            w, h = im.size
            if (h, w) != (height, width):
                raise DataError(
                    f"Expected every image to be {height}x{width} pixels (height x width). "
                    f"Received: {file} is {h}x{w}; resize it first"
                )
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"Expected a readable image file ({', '.join(IMAGE_SUFFIXES)}). "
            f"Received: {file} could not be read: {type(exc).__name__}: {exc}"
        ) from None
    return rgb


# --------------------------------------------------------------------------- checks


def _describe_values(array: np.ndarray) -> str:
    if array.size == 0:
        return "no values"
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        finite = array[np.isfinite(array)]
        bad = "NaN/inf values"
        if finite.size == 0:
            return f"only {bad}"
        return f"{bad} and finite values in [{finite.min()}, {finite.max()}]"
    return f"values in [{array.min()}, {array.max()}]"


def _check_images(images: np.ndarray, size: tuple[int, int], path: Path) -> np.ndarray:
    """Check that ``images`` is (N, height, width, 3) with N >= 1 and fits uint8; return it as uint8."""
    _check_image_shape(images, size, path)
    return _images_as_uint8(images, path)


def _check_image_shape(images: np.ndarray, size: tuple[int, int], path: Path) -> None:
    """Raise unless ``images`` is a numeric array of shape (N, height, width, 3) with N >= 1."""
    height, width = size
    expected = f"images of shape (N, {height}, {width}, 3)"
    shape = tuple(int(d) for d in images.shape)
    if images.dtype.kind not in "uif":
        raise DataError(
            f"Expected uint8 {expected} in 'images' of {path}. "
            f"Received: dtype={images.dtype}, shape={shape}"
        )
    received = f"Received: shape={shape} in {path}"
    if images.ndim == 3:
        raise DataError(f"Expected {expected}. {received}{_three_axes_hint(shape, size)}")
    if images.ndim != 4:
        raise DataError(f"Expected {expected} (4-D). {received} ({images.ndim}-D)")
    if shape[-1] != 3:
        raise DataError(f"Expected {expected} with 3 (RGB) channels last. {received}{_channels_hint(shape)}")
    if shape[1:3] != (height, width):
        raise DataError(
            f"Expected {expected}. {received}: images are {shape[1]}x{shape[2]}, not "
            f"{height}x{width}; resize them first"
        )
    if shape[0] == 0:
        raise DataError(f"Expected at least one image: {expected} with N >= 1. {received}")


def _three_axes_hint(shape: tuple[int, ...], size: tuple[int, int]) -> str:
    """What a 3-D images array probably is (one image, or grayscale images), or ``""``."""
    height, width = size
    if shape == (height, width, 3):
        return "; this looks like a single image: add a batch axis with images[None]"
    if shape[1:] == (height, width):
        return ("; this looks like grayscale images with no channel axis: make them RGB "
                "with np.repeat(images[..., None], 3, axis=-1)")
    return ""


def _channels_hint(shape: tuple[int, ...]) -> str:
    """What 4-D images without 3 channels last probably are, and how to fix them."""
    if shape[1] == 3:
        return ("; this looks channels-first (N, 3, H, W): move the channels last with "
                "np.transpose(images, (0, 2, 3, 1))")
    if shape[-1] == 1:
        return ("; this looks like single-channel (grayscale) images: make them RGB with "
                "np.repeat(images, 3, axis=-1)")
    if shape[-1] == 4:
        return "; this looks like RGBA: drop the alpha channel with images[..., :3]"
    return f"; the last axis has {shape[-1]} channels"


def _images_as_uint8(images: np.ndarray, path: Path) -> np.ndarray:
    """``images`` as uint8 when they are uint8 or integers in 0..255; floats are refused."""
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind == "f":
        values = _describe_values(images)
        finite = np.isfinite(images).all()
        if finite and images.min() >= 0 and images.max() <= 1:
            hint = "scale and convert them with (images * 255).round().astype(np.uint8)"
        else:
            hint = "convert them with np.clip(images, 0, 255).round().astype(np.uint8)"
        raise DataError(
            f"Expected uint8 images in 0..255 in {path}. Received: dtype={images.dtype} "
            f"with {values}. If that is what you mean, {hint}"
        )
    lo, hi = images.min(), images.max()
    if lo < 0 or hi > 255:
        raise DataError(
            f"Expected uint8 images in 0..255 in {path}. Received: dtype={images.dtype} "
            f"with values in [{lo}, {hi}], which do not fit in uint8"
        )
    return images.astype(np.uint8)


def _check_labels(labels: np.ndarray, n_images: int, path: Path):
    """Return ``(labels as (N,) int64, one-hot width or None)``."""
    labels = _check_label_shape(labels, n_images, path)
    if labels.ndim == 2:
        return _one_hot_to_int(labels, path), labels.shape[1]
    _check_label_values(labels, path)
    return labels.astype(np.int64), None


def _check_label_shape(labels: np.ndarray, n_images: int, path: Path) -> np.ndarray:
    """Check that ``labels`` is numeric, (N,) or (N, C), one per image; an (N, 1) column becomes (N,)."""
    shape = tuple(int(d) for d in labels.shape)
    expected = "labels of shape (N,) integers or (N, C) one-hot"
    if labels.dtype.kind not in "buif":
        raise DataError(
            f"Expected integer class {expected} in {path}. "
            f"Received: dtype={labels.dtype}, shape={shape}"
        )
    if labels.ndim == 2 and shape[1] == 1:
        labels = labels[:, 0]  # a column of integer labels
        shape = (shape[0],)
    if labels.ndim not in (1, 2):
        raise DataError(f"Expected {expected}. Received: shape={shape} in {path}")
    if shape[0] != n_images:
        raise DataError(
            f"Expected one label per image ({n_images} images). "
            f"Received: {shape[0]} labels (labels shape={shape}) in {path}"
        )
    return labels


def _one_hot_to_int(labels: np.ndarray, path: Path) -> np.ndarray:
    """The int64 class index of each row of (N, C) one-hot ``labels``; raise at the first other row."""
    is_binary = (labels == 0) | (labels == 1)
    good_rows = is_binary.all(axis=1) & (np.count_nonzero(labels, axis=1) == 1)
    if not good_rows.all():
        bad = np.flatnonzero(~good_rows)
        row = labels[bad[0]]
        shown = ", ".join(f"{v:.3g}" for v in row[:10].astype(float).tolist())
        shown = f"[{shown}{', ...' if row.size > 10 else ''}]"
        raise DataError(
            f"Expected one-hot labels of shape (N, C): each row a single 1 and zeros "
            f"elsewhere. Received: {len(bad)} of {len(labels)} rows are not one-hot in {path} "
            f"(first: row {bad[0]} = {shown})"
        )
    return np.argmax(labels, axis=1).astype(np.int64)


def _check_label_values(labels: np.ndarray, path: Path) -> None:
    """Raise unless the (N,) ``labels`` are whole numbers that fit int64 and are >= 0."""
    if labels.dtype.kind == "f":
        finite = np.isfinite(labels)
        whole = finite & (labels == np.round(np.where(finite, labels, 0)))
        if not whole.all():
            example = labels[np.flatnonzero(~whole)[0]]
            raise DataError(
                f"Expected integer class labels in {path}. Received: dtype={labels.dtype} "
                f"with {np.count_nonzero(~whole)} non-integer values (e.g. {example})"
            )
        lo, hi = labels.min(), labels.max()
        if lo < 0 or hi > np.iinfo(np.int64).max:
            raise DataError(
                f"Expected labels >= 0 in {path}. Received: labels out of range: "
                f"min={lo:g}, max={hi:g}"
            )
    elif labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise DataError(
            f"Expected labels >= 0 in {path}. Received: labels out of range: min={labels.min()}, "
            f"max={labels.max()} ({np.count_nonzero(labels < 0)} of {labels.size} labels < 0)"
        )
    elif labels.dtype.kind == "u" and labels.size and labels.max() > np.iinfo(np.int64).max:
        raise DataError(
            f"Expected small non-negative class labels in {path}. Received: labels out of "
            f"range: max={labels.max()}"
        )


def _check_label_range(labels: np.ndarray, num_classes: int, path: Path, *, given: bool) -> None:
    hi = int(labels.max())
    if hi >= num_classes:
        n_bad = int(np.count_nonzero(labels >= num_classes))
        source = "" if given else (", the AN2DL default; pass num_classes=... if your data "
                                   "has more classes")
        raise DataError(
            f"Expected labels in 0..{num_classes - 1} (num_classes={num_classes}{source}) in "
            f"{path}. Received: labels out of range: max={hi} ({n_bad} of {labels.size} labels "
            f">= {num_classes})"
        )


def _check_no_empty_class(labels: np.ndarray, names: Sequence[str], path: Path) -> None:
    counts = np.bincount(labels, minlength=len(names))
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        listed = ", ".join(f"class {i} ({names[i]!r})" for i in empty)
        raise DataError(
            f"Expected at least one image of every class (num_classes={len(names)}) in {path}. "
            f"Received: no images for {listed}; counts per class: {counts.tolist()}"
        )


def _default_class_names(num_classes: int) -> tuple[str, ...]:
    if num_classes == DEFAULT_NUM_CLASSES:
        return AN2DL_CLASS_NAMES
    return tuple(f"class_{i}" for i in range(num_classes))
