"""Classification metrics: accuracy, macro precision/recall/F1 and the confusion matrix."""

from __future__ import annotations

import numpy as np

from codabench_kit.evaluation.heldout_sets import HeldoutSets


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


def heldout_metrics(model, heldout: HeldoutSets, num_classes: int, *, batch_size: int = 64,
                    progress=None, label: str = "evaluate") -> tuple[dict, HeldoutSets]:
    """``(metrics, heldout)``: metrics of ``model`` on the clean and augmented test sets,
    and the held-out sets with its probabilities. A bar per test set where ``progress``
    draws bars."""
    from codabench_kit.progress import predict_callbacks

    metrics, probabilities = {}, []
    for split, test_set in heldout.splits():
        callbacks = predict_callbacks(progress, f"{label} {split.replace('_', ' ')}",
                                      -(-len(test_set.images) // batch_size))
        predicted = np.asarray(model.predict(test_set.images.astype("float32"), verbose=0,
                                             batch_size=batch_size, callbacks=callbacks),
                               dtype="float32")
        probabilities.append(predicted)
        metrics[split] = classification_metrics(test_set.labels, predicted.argmax(-1),
                                                num_classes)
    return metrics, heldout.with_probabilities(*probabilities)
