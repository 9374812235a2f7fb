"""Two-phase training with early stopping and best-weights restore.

Pretrained backbone: phase 1 trains the head on a frozen backbone; phase 2 fine-tunes
the whole network with BatchNorm frozen at a lower learning rate (or, with
``train.unfreeze=gradual``, in stages opening ever deeper shares of the backbone).
Random backbone (``--weights none``, or ``cnn``): one phase, everything trainable,
BatchNorm included, because freezing an untrained network teaches nothing. The
optimizer, schedule, loss and EMA come from the recipe (``codabench_kit.training.recipe``).

On CPU with TensorFlow, training runs with TensorFlow's op determinism
(:func:`deterministic_ops`): with the seeds the build sets, the same data, seed and
options give the same weights, hence a byte-identical submission zip.
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
    """How long to train; ``cbk build`` fills it from its options (BuildConfig)."""

    head_epochs: int
    epochs: int
    patience: int
    scratch_warmup_epochs: int = 5
    """Early stopping may not stop a from-scratch run before this: BatchNorm's moving
    averages lag behind fast-changing weights, so early validation scores mislead."""


class EpochLines(keras.callbacks.Callback):
    """One progress line per epoch, sent to ``progress``, and a bar over the epoch's
    batches where ``progress`` draws bars (:func:`codabench_kit.progress.bar`)."""

    def __init__(self, phase: str, epochs: int, progress: Callable[[str], None]):
        super().__init__()
        self.phase, self.epochs, self.progress = phase, epochs, progress
        self._bar = None

    def on_epoch_begin(self, epoch, logs=None):
        from codabench_kit.progress import bar

        self.started = time.perf_counter()
        steps = (self.params or {}).get("steps") or 0
        self._bar = bar(self.progress, f"  {self.phase} epoch {epoch + 1}/{self.epochs}", steps)
        self._bar.__enter__()

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
        logs = logs or {}
        self.progress(
            f"  {self.phase} epoch {epoch + 1}/{self.epochs}: "
            f"loss {logs.get('loss', float('nan')):.3f} acc {logs.get('accuracy', float('nan')):.3f} "
            f"val_loss {logs.get('val_loss', float('nan')):.3f} "
            f"val_acc {logs.get('val_accuracy', float('nan')):.3f} "
            f"({time.perf_counter() - self.started:.0f} s)"
        )


def deterministic_ops() -> bool:
    """Make TensorFlow's ops deterministic when Keras trains with TensorFlow on CPU;
    return whether they are.

    Seeds alone (``keras.utils.set_random_seed``, set by the build) do not make every op
    deterministic: some may sum in the order their threads finish; with op determinism
    TensorFlow picks a deterministic algorithm for those (a demo build's losses change
    in the third decimal). It stays on for the rest of the process (TensorFlow has no
    public way back). Not on a GPU: there TensorFlow raises for the ops that have no
    deterministic GPU kernel, and reproducibility is promised on CPU only."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return False
    tf.config.experimental.enable_op_determinism()
    return True


def make_optimizer(recipe, learning_rate, steps: int):
    """The recipe's optimizer at ``learning_rate``, decayed over ``steps`` when the
    schedule is cosine."""
    train = recipe.train
    rate = learning_rate
    if train["schedule"] == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(learning_rate, max(steps, 1), alpha=0.01)
    common = {"use_ema": bool(train["ema"]), "ema_momentum": 0.99}
    name, decay = train["optimizer"], train["weight_decay"]
    if name == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=decay, **common)
    if name == "lion":
        return keras.optimizers.Lion(rate, weight_decay=decay or None, **common)
    if name == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True,
                                    weight_decay=decay or None, **common)
    return keras.optimizers.Adam(rate, **common)


def make_loss(recipe):
    train = recipe.train
    if train["loss"] == "focal":
        return keras.losses.CategoricalFocalCrossentropy(
            gamma=train["focal_gamma"], label_smoothing=train["label_smoothing"])
    return keras.losses.CategoricalCrossentropy(label_smoothing=train["label_smoothing"])


def _fit(classifier, batches, validation, *, phase, epochs, learning_rate, patience, progress,
         recipe, start_from_epoch=0):
    classifier.compile(optimizer=make_optimizer(recipe, learning_rate, epochs * len(batches)),
                       loss=make_loss(recipe), metrics=["accuracy"])
    callbacks = []
    if recipe.train["ema"]:  # validate, and keep the best of, the averaged weights
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    callbacks.append(keras.callbacks.EarlyStopping(
        monitor="val_accuracy", patience=patience, restore_best_weights=True, mode="max",
        start_from_epoch=start_from_epoch))
    if recipe.train["schedule"] == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.3, patience=max(1, patience // 2),
            min_lr=learning_rate / 100))
    callbacks.append(EpochLines(phase, epochs, progress))
    history = classifier.fit(batches, validation_data=validation, epochs=epochs, verbose=0,
                             callbacks=callbacks)
    return {key: [float(v) for v in values] for key, values in history.history.items()}


def unfreeze_top(backbone, share: float) -> int:
    """Make the deepest ``share`` of the backbone's layers trainable (BatchNorm stays
    frozen), the rest frozen; return how many layers are open."""
    layers = [layer for layer in _weighted_layers(backbone)]
    first_open = int(round(len(layers) * (1.0 - share)))
    backbone.trainable = True
    opened = 0
    for index, layer in enumerate(layers):
        layer.trainable = (index >= first_open
                           and not isinstance(layer, keras.layers.BatchNormalization))
        opened += layer.trainable
    return opened


def _weighted_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _weighted_layers(layer)
        elif layer.weights:
            yield layer


def train(classifier, backbone, batches, validation, *, pretrained: bool, plan: TrainingPlan,
          recipe=None, progress: Callable[[str], None] = lambda line: None) -> dict:
    """Train in place; return per-phase history (loss/accuracy per epoch)."""
    from codabench_kit.training.recipe import Recipe

    recipe = recipe or Recipe()
    deterministic_ops()
    train_options = recipe.train
    fit = dict(validation=validation, patience=plan.patience, progress=progress, recipe=recipe)
    history = {}
    if pretrained:
        if plan.head_epochs > 0:
            set_backbone_trainable(backbone, False, freeze_batchnorm=True)
            progress(f"phase 1: head only, backbone frozen ({plan.head_epochs} epochs max)")
            history["head"] = _fit(classifier, batches, phase="head", epochs=plan.head_epochs,
                                   learning_rate=train_options["learning_rate"], **fit)
        if plan.epochs > 0 and train_options["unfreeze"] == "gradual":
            stages = train_options["unfreeze_stages"]
            per_stage = max(1, -(-plan.epochs // stages))
            for stage in range(1, stages + 1):
                opened = unfreeze_top(backbone, stage / stages)
                progress(f"phase 2.{stage}: fine-tune the deepest {stage}/{stages} of the "
                         f"backbone ({opened} layers), BatchNorm frozen ({per_stage} epochs max)")
                history[f"finetune_{stage}"] = _fit(
                    classifier, batches, phase=f"finetune {stage}/{stages}", epochs=per_stage,
                    learning_rate=train_options["finetune_learning_rate"], **fit)
        elif plan.epochs > 0:
            set_backbone_trainable(backbone, True, freeze_batchnorm=True)
            progress(f"phase 2: fine-tune, BatchNorm frozen ({plan.epochs} epochs max)")
            history["finetune"] = _fit(classifier, batches, phase="finetune", epochs=plan.epochs,
                                       learning_rate=train_options["finetune_learning_rate"],
                                       **fit)
    else:
        set_backbone_trainable(backbone, True, freeze_batchnorm=False)
        progress(f"training from scratch ({plan.epochs} epochs max)")
        history["scratch"] = _fit(classifier, batches, phase="train", epochs=plan.epochs,
                                  learning_rate=train_options["learning_rate"],
                                  start_from_epoch=plan.scratch_warmup_epochs, **fit)
    return history
