"""Classification metrics: accuracy, macro precision/recall/F1 and the confusion matrix."""

from __future__ import annotations

import numpy as np


def classification_metrics(labels: np.ndarray, predictions: np.ndarray,
                           num_classes: int) -> dict:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    classes = list(range(num_classes))
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, labels=classes, average="macro", zero_division=0)
    return {
        "n": int(len(labels)),
        "accuracy": float(np.mean(labels == predictions)) if len(labels) else float("nan"),
        "macro_precision": float(precision),
        "macro_recall": float(recall),
        "macro_f1": float(f1),
        "confusion_matrix": confusion_matrix(labels, predictions, labels=classes).tolist(),
    }


HELDOUT_SPLITS = (("clean_test", "images"), ("augmented_test", "images_augmented"))
"""Metric name and ``heldout`` key of the two test sets every build scores."""


def heldout_metrics(model, heldout: dict, num_classes: int, *, batch_size: int = 64,
                    progress=None, label: str = "evaluate") -> dict:
    """Metrics of ``model`` on the clean and augmented test sets of ``heldout``; adds its
    probabilities to ``heldout`` (``probabilities``, ``probabilities_augmented``). A bar
    per test set where ``progress`` draws bars."""
    from codabench_kit.progress import predict_callbacks

    metrics = {}
    for split, key in HELDOUT_SPLITS:
        images = heldout[key]
        callbacks = predict_callbacks(progress, f"{label} {split.replace('_', ' ')}",
                                      -(-len(images) // batch_size))
        probabilities = np.asarray(model.predict(images.astype("float32"), verbose=0,
                                                 batch_size=batch_size, callbacks=callbacks),
                                   dtype="float32")
        heldout[key.replace("images", "probabilities")] = probabilities
        labels = heldout.get(key.replace("images", "labels"), heldout["labels"])
        metrics[split] = classification_metrics(labels, probabilities.argmax(-1), num_classes)
    return metrics
