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
