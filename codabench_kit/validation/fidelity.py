"""The checks after the answer: parity with the trained model, and the server's budgets.

``parity``
    A cbk zip carries ``probe.npz``: a few test images (``images``, uint8) and the trained
    model's probabilities on them (``probabilities``), written by the build. The
    submission's ``Model().predict_proba`` on the same images, run in the target
    environment, must match within cbk's :data:`PARITY_TOLERANCE` (1e-4; a tolerance in
    the zip is ignored): the artifact computes, under the server's TensorFlow, what the
    build measured. The reference comes from the zip itself, so parity shows that the
    artifact is consistent, not that it is the trained model: the agreement check of
    ``cbk validate --data <name>.heldout.npz`` (the build's predictions) is the external one.
``budget``
    The run projected to the hidden test set: ``Model()`` time plus the measured time per
    image times ``hidden_images``, against ``time_limit_s``; the zip's size, and the peak
    memory of all the run's processes projected to ``hidden_images``, against their limits.
    Times and memory are measured by cbk from outside the child process.
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

    def check(self, *, load_s, ms_per_image, peak_mb, zip_bytes, held_mb=None, predict_peak_mb=None,
              n_images=None):
        """The ``budget`` check. Times and memory are cbk's own measurements of the run.

        Memory is projected to the hidden test set: what the run held once ``Model()`` was
        ready (``held_mb``) plus predict's growth above it on ``n_images`` images
        (``predict_peak_mb - held_mb``), scaled to ``hidden_images``, and never under the
        measured peak (linear: a model that predicts in fixed-size batches needs less). The
        check fails on the measured peak; a projection over the limit is said, not failed on,
        as it also scales what predict allocates only once."""
        projected = (load_s or 0.0) + (ms_per_image or 0.0) * self.hidden_images / 1000.0
        memory = project_memory(peak_mb, held_mb, predict_peak_mb, n_images, self.hidden_images)
        zip_mb = zip_bytes / 2**20
        over = []
        if projected > self.time_limit_s:
            over.append(f"projected run time {projected:.0f} s is over the {self.time_limit_s:g} s "
                        f"limit — a smaller backbone or a cheaper TTA predicts faster")
        if zip_mb > self.max_zip_mb:
            over.append(f"zip of {zip_mb:.1f} MB is over the {self.max_zip_mb:g} MB limit")
        if peak_mb is not None and peak_mb > self.max_memory_mb:
            over.append(f"peak memory {peak_mb:.0f} MB is over the {self.max_memory_mb:g} MB "
                        f"limit — predict in fixed-size batches to bound it")
        if over:
            return Check("budget", False, "; ".join(over))
        memory_line = (f", {self._memory_words(peak_mb, memory, n_images)} of {self.max_memory_mb:g} MB"
                       if memory is not None else "")
        if memory is not None and memory > self.max_memory_mb:
            # Linear from one small batch, the projection also scales what predict allocates
            # once (graph building, buffers): an upper bound, said but not failed on.
            memory_line += (f" (a linear upper bound from {n_images} images that may go over "
                            f"the limit: predict in fixed-size batches to bound it)")
        return Check("budget", True,
                     f"{self.hidden_images} hidden images in about {projected:.1f} s of "
                     f"{self.time_limit_s:g} s ({load_s or 0:.1f} s load + {ms_per_image or 0:.1f} "
                     f"ms/image); zip {zip_mb:.1f} of {self.max_zip_mb:g} MB{memory_line}")

    def _memory_words(self, peak_mb, memory, n_images):
        if n_images and self.hidden_images > n_images:
            return (f"peak memory {peak_mb:.0f} MB on {n_images} images, projected {memory:.0f} MB "
                    f"on {self.hidden_images}")
        return f"peak memory {peak_mb:.0f} MB"


def project_memory(peak_mb, held_mb, predict_peak_mb, n_images, hidden_images):
    """Peak memory projected from ``n_images`` to ``hidden_images`` (None without a peak):
    the memory held after ``Model()`` plus predict's growth, scaled linearly; at least the peak."""
    if peak_mb is None:
        return None
    if held_mb is None or predict_peak_mb is None or not n_images or hidden_images <= n_images:
        return peak_mb
    growth = max(predict_peak_mb - held_mb, 0.0)
    return max(peak_mb, held_mb + growth * hidden_images / n_images)


@dataclass(frozen=True)
class Probe:
    images: np.ndarray
    probabilities: np.ndarray
    """The zip's own reference: what the build says its trained model computed."""


def read_probe(submission: Path) -> Probe | None:
    """The parity probe of an unpacked submission; None when it has none (not a cbk zip)
    or it is malformed (then parity is not checked; the caller says so). A ``tolerance``
    in the file is ignored: the tolerance is cbk's, :data:`PARITY_TOLERANCE`."""
    path = submission / PROBE_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            images, probabilities = data["images"], data["probabilities"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if (images.dtype != np.uint8 or images.ndim != 4 or probabilities.ndim != 2
            or len(images) != len(probabilities) or not len(images)
            or probabilities.dtype.kind not in "fiu"):
        return None
    return Probe(images, probabilities.astype(np.float64))


def check_parity(probe: Probe, got: np.ndarray | None, *, reason: str | None = None,
                 external: str | None = None) -> Check:
    """The ``parity`` check of predict_proba's output on the probe (``got``, as cbk received
    it), or of ``reason`` it was not sent. ``external``: the build's .heldout.npz beside the zip."""
    if got is None:
        return Check("parity", False, f"expected predict_proba to return ({len(probe.images)}, "
                                      f"{probe.probabilities.shape[1]}) probabilities on the "
                                      f"probe, received {reason or 'nothing readable'}")
    if got.shape != probe.probabilities.shape:
        return Check("parity", False, f"expected probabilities of shape "
                                      f"{probe.probabilities.shape} on the probe, received "
                                      f"{got.shape}")
    if got.dtype.kind not in "fiu":
        return Check("parity", False, f"expected probabilities on the probe, received dtype {got.dtype}")
    diff = float(np.max(np.abs(got.astype(np.float64) - probe.probabilities)))
    equal = int(np.sum(got.argmax(-1) == probe.probabilities.argmax(-1)))
    n = len(probe.images)
    ok = bool(diff <= PARITY_TOLERANCE)  # NaN fails
    external = f": --data {external} compares with the build's predictions" if external else ""
    line = (f"probe of {n} images: max |dp| {diff:.1e} against the zip's own reference "
            f"(probe.npz, not an external check{external}), cbk's tolerance {PARITY_TOLERANCE:g}, "
            f"{equal}/{n} labels equal")
    return Check("parity", ok, line)
