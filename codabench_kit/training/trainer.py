"""Two-phase training with early stopping and best-weights restore.

Pretrained backbone: phase 1 trains the head on a frozen backbone; phase 2 fine-tunes
the whole network with BatchNorm frozen at a lower learning rate. Random backbone
(``--weights none``, or ``cnn``): one phase, everything trainable, BatchNorm included,
because freezing an untrained network teaches nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from codabench_kit.backend import import_keras
from codabench_kit.training.model import set_backbone_trainable

keras = import_keras()


@dataclass
class TrainingPlan:
    head_epochs: int = 5
    epochs: int = 20
    patience: int = 4
    scratch_warmup_epochs: int = 5
    """Early stopping may not stop a from-scratch run before this: BatchNorm's moving
    averages lag behind fast-changing weights, so early validation scores mislead."""
    head_learning_rate: float = 1e-3
    finetune_learning_rate: float = 1e-4
    scratch_learning_rate: float = 1e-3


class EpochLines(keras.callbacks.Callback):
    """One progress line per epoch, sent to ``progress``."""

    def __init__(self, phase: str, epochs: int, progress: Callable[[str], None]):
        super().__init__()
        self.phase, self.epochs, self.progress = phase, epochs, progress

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.progress(
            f"  {self.phase} epoch {epoch + 1}/{self.epochs}: "
            f"loss {logs.get('loss', float('nan')):.3f} acc {logs.get('accuracy', float('nan')):.3f} "
            f"val_loss {logs.get('val_loss', float('nan')):.3f} "
            f"val_acc {logs.get('val_accuracy', float('nan')):.3f} "
            f"({time.perf_counter() - self.started:.0f} s)"
        )


def _fit(classifier, batches, validation, *, phase, epochs, learning_rate, patience, progress,
         start_from_epoch=0):
    classifier.compile(optimizer=keras.optimizers.Adam(learning_rate),
                       loss="categorical_crossentropy", metrics=["accuracy"])
    stopper = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience,
                                            restore_best_weights=True, mode="max",
                                            start_from_epoch=start_from_epoch)
    history = classifier.fit(batches, validation_data=validation, epochs=epochs, verbose=0,
                             callbacks=[stopper, EpochLines(phase, epochs, progress)])
    return {key: [float(v) for v in values] for key, values in history.history.items()}


def train(classifier, backbone, batches, validation, *, pretrained: bool, plan: TrainingPlan,
          progress: Callable[[str], None] = lambda line: None) -> dict:
    """Train in place; return per-phase history (loss/accuracy per epoch)."""
    history = {}
    if pretrained:
        if plan.head_epochs > 0:
            set_backbone_trainable(backbone, False, freeze_batchnorm=True)
            progress(f"phase 1: head only, backbone frozen ({plan.head_epochs} epochs max)")
            history["head"] = _fit(classifier, batches, validation, phase="head",
                                   epochs=plan.head_epochs, learning_rate=plan.head_learning_rate,
                                   patience=plan.patience, progress=progress)
        if plan.epochs > 0:
            set_backbone_trainable(backbone, True, freeze_batchnorm=True)
            progress(f"phase 2: fine-tune, BatchNorm frozen ({plan.epochs} epochs max)")
            history["finetune"] = _fit(classifier, batches, validation, phase="finetune",
                                       epochs=plan.epochs,
                                       learning_rate=plan.finetune_learning_rate,
                                       patience=plan.patience, progress=progress)
    else:
        set_backbone_trainable(backbone, True, freeze_batchnorm=False)
        progress(f"training from scratch ({plan.epochs} epochs max)")
        history["scratch"] = _fit(classifier, batches, validation, phase="train",
                                  epochs=plan.epochs, learning_rate=plan.scratch_learning_rate,
                                  patience=plan.patience, progress=progress,
                                  start_from_epoch=plan.scratch_warmup_epochs)
    return history
