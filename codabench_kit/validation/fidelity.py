"""The checks after the answer: parity with the trained model, and the server's budgets.

``parity``
    A cbk zip carries ``probe.npz``: a few test images (``images``, uint8) and the trained
    model's probabilities on them (``probabilities``), written by the build. The
    submission's ``Model().predict_proba`` on the same images, run in the target
    environment, must match within ``tolerance`` (1e-4): the artifact computes, under the
    server's TensorFlow, what the build measured.
``budget``
    The run projected to the hidden test set: ``Model()`` time plus the measured time per
    image times ``hidden_images``, against ``time_limit_s``; the zip's size and the
    child's peak memory against their limits.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codabench_kit.validation.check import Check

PROBE_FILE = "probe.npz"
PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Budget:
    """The server's limits. The defaults are generous guesses: set your competition's."""

    time_limit_s: float = 600.0
    hidden_images: int = 2000
    max_zip_mb: float = 500.0
    max_memory_mb: float = 8192.0

    def check(self, *, load_s, ms_per_image, peak_mb, zip_bytes):
        """``(ok, line)``."""
    
        projected = (load_s or 0.0) + (ms_per_image or 0.0) * self.hidden_images / 1000.0
        zip_mb = zip_bytes / 2**20
        over = []
        if projected > self.time_limit_s:
            over.append(f"projected run time {projected:.0f} s is over the {self.time_limit_s:g} s "
                        f"limit — a smaller backbone or a cheaper TTA predicts faster")
        if zip_mb > self.max_zip_mb:
            over.append(f"zip of {zip_mb:.1f} MB is over the {self.max_zip_mb:g} MB limit")
        if peak_mb is not None and peak_mb > self.max_memory_mb:
            over.append(f"peak memory {peak_mb:.0f} MB is over the {self.max_memory_mb:g} MB limit")
        if over:
            return Check("budget", False, "; ".join(over))
        memory = f", peak memory {peak_mb:.0f} of {self.max_memory_mb:g} MB" if peak_mb else ""
        return Check("budget", True,
                     f"{self.hidden_images} hidden images in about {projected:.1f} s of "
                     f"{self.time_limit_s:g} s ({load_s or 0:.1f} s load + {ms_per_image or 0:.1f} "
                     f"ms/image); zip {zip_mb:.1f} of {self.max_zip_mb:g} MB{memory}")


@dataclass(frozen=True)
class Probe:
    images: np.ndarray
    probabilities: np.ndarray
    tolerance: float = PARITY_TOLERANCE


def read_probe(submission: Path) -> Probe | None:
    """The parity probe of an unpacked submission; None when it has none (not a cbk zip)
    or it is malformed (then parity is not checked; the caller says so)."""
    path = submission / PROBE_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            images, probabilities = data["images"], data["probabilities"]
            tolerance = float(data["tolerance"]) if "tolerance" in data else PARITY_TOLERANCE
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    if (images.dtype != np.uint8 or images.ndim != 4 or probabilities.ndim != 2
            or len(images) != len(probabilities) or not len(images)):
        return None
    return Probe(images, probabilities.astype(np.float64), tolerance)


def check_parity(probe: Probe, info: dict, output: Path):
    """The ``parity`` check from what ingest.py recorded (``info``) and saved (``output``)."""

    if not info.get("saved"):
        reason = info.get("reason") or "nothing readable"
        return Check("parity", False, f"expected predict_proba to return ({len(probe.images)}, "
                                      f"{probe.probabilities.shape[1]}) probabilities on the "
                                      f"probe, received {reason}")
    try:
        got = np.load(output, allow_pickle=False)
    except (OSError, ValueError) as exc:
        return Check("parity", False, f"could not read predict_proba's output: {exc}")
    if got.shape != probe.probabilities.shape:
        return Check("parity", False, f"expected probabilities of shape "
                                      f"{probe.probabilities.shape} on the probe, received "
                                      f"{got.shape}")
    diff = float(np.max(np.abs(got.astype(np.float64) - probe.probabilities)))
    equal = int(np.sum(got.argmax(-1) == probe.probabilities.argmax(-1)))
    n = len(probe.images)
    line = (f"probe of {n} images: max |dp| {diff:.1e} against the trained model "
            f"(tolerance {probe.tolerance:g}), {equal}/{n} labels equal")
    return Check("parity", diff <= probe.tolerance, line)
