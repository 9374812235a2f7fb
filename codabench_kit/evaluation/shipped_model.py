"""How the model a build ships does on its held-out sets: metrics with and without its
TTA strategy, and the robustness report (accuracy per corruption and severity)."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from codabench_kit.evaluation.corruptions import CORRUPTIONS
from codabench_kit.evaluation.heldout import SEVERITIES
from codabench_kit.evaluation.heldout_sets import HeldoutSets
from codabench_kit.evaluation.metrics import heldout_metrics
from codabench_kit.evaluation.robustness import CLEAN, MIXED, robustness_report, table_lines


ROBUSTNESS_VIEW_BUDGET = 2000
"""Image-views per block of a build's robustness report: with a TTA strategy of V views
the report is on at most 2000 // V test images (a fixed random subset: 250 with the
8 views of ``d4-tta``), so its cost stays bounded whatever the TTA (on the 750-image dev
test split, d4-tta's report predicts 2.7x the image-views of one without TTA, where
8 views of every image would be 8x)."""


def evaluate_shipped_model(model, classifier, heldout: HeldoutSets, num_classes: int, *,
                           tta: str, batch_size: int, views: int = 1,
                           progress: Callable[[str], None] = lambda s: None):
    """``(metrics, robustness, heldout)`` of ``model`` (the classifier with its TTA
    strategy ``tta``), ``heldout`` now holding its probabilities.

    ``metrics`` has ``clean_test`` and ``augmented_test`` and, with a TTA strategy,
    ``tta_gain`` (the same figures of ``classifier`` alone)."""
    metrics, heldout = heldout_metrics(model, heldout, num_classes, batch_size=batch_size,
                                       progress=progress, label=f"evaluate ({tta})")
    clean, augmented = metrics["clean_test"], metrics["augmented_test"]
    progress(f"test accuracy: clean {clean['accuracy']:.3f}, augmented "
             f"({heldout.policy}) {augmented['accuracy']:.3f} "
             f"(macro F1 {clean['macro_f1']:.3f} / {augmented['macro_f1']:.3f})")
    if tta != "no-tta":
        without, _ = heldout_metrics(classifier, heldout, num_classes, batch_size=batch_size,
                                     progress=progress, label="evaluate (no TTA)")
        metrics["tta_gain"] = tta_gain(tta, metrics, without)
        progress(tta_gain_line(metrics["tta_gain"]))
    return (metrics, shipped_robustness(model, heldout, batch_size, progress, views=views),
            heldout)


def known_predictions(heldout: HeldoutSets) -> dict:
    """The robustness report's blocks that the held-out sets already predicted: the clean
    test set, and the augmented one when its policy is a block of the report."""
    known = {CLEAN: heldout.clean.predictions}
    augmented, n = heldout.augmented.predictions, len(heldout.clean)
    if heldout.policy == MIXED:
        known[MIXED] = augmented
    elif heldout.policy == "corruptions":
        keys = [(name, s) for name in CORRUPTIONS for s in SEVERITIES]
        known.update({key: augmented[i * n:(i + 1) * n] for i, key in enumerate(keys)})
    return known


def shipped_robustness(model, heldout: HeldoutSets, batch_size: int, progress, *,
                       views: int = 1) -> dict:
    """The robustness report of ``model`` (``views`` views per image) on the clean test
    images, or a fixed random subset of :data:`ROBUSTNESS_VIEW_BUDGET` // ``views`` of
    them, reusing the held-out sets' predictions where the images are the same; printed
    as a table."""

    def predict(images):
        return model.predict(images.astype("float32"), verbose=0,
                             batch_size=batch_size).argmax(-1)

    started = time.perf_counter()
    n, most = len(heldout.clean), max(1, ROBUSTNESS_VIEW_BUDGET // max(1, views))
    images, labels, known = heldout.clean.images, heldout.clean.labels, known_predictions(heldout)
    if n > most:
        subset = np.sort(np.random.default_rng(heldout.seed).permutation(n)[:most])
        images, labels = images[subset], labels[subset]
        known = {CLEAN: known[CLEAN][subset]}  # the mixed set of a subset is drawn anew
        progress(f"robustness: on {most} of the {n} test images (a fixed random subset: "
                 f"{views} TTA views per image)")
    report = robustness_report(predict, images, labels, known=known, seed=heldout.seed,
                               heldout_families=heldout.families, progress=progress)
    for line in table_lines(report):
        progress(line)
    progress(f"robustness report in {time.perf_counter() - started:.1f} s")
    return report


def tta_gain(strategy: str, with_tta: dict, without: dict) -> dict:
    """Accuracy on the clean and augmented test sets with the TTA strategy and without
    (the classifier alone), and the difference."""
    gain = {"strategy": strategy}
    for split in ("clean_test", "augmented_test"):
        a, b = with_tta[split]["accuracy"], without[split]["accuracy"]
        gain[split] = {"with": a, "without": b, "gain": a - b}
    return gain


def tta_gain_line(gain: dict) -> str:
    """One line that says whether the TTA helped on the augmented test set."""
    aug, clean = gain["augmented_test"], gain["clean_test"]
    verdict = ("it helps" if aug["gain"] > 0 else "it hurts" if aug["gain"] < 0
               else "it does not help")
    return (f"TTA {gain['strategy']}: augmented test {aug['with']:.3f} against "
            f"{aug['without']:.3f} without ({aug['gain']:+.3f}), clean {clean['with']:.3f} "
            f"against {clean['without']:.3f} ({clean['gain']:+.3f}): {verdict}")
