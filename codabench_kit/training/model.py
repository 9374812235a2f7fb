"""Assembling the classifier (backbone + head) and the inference model (with TTA)."""

from __future__ import annotations

from codabench_kit.backend import import_keras

keras = import_keras()


def assemble_classifier(backbone, num_classes: int, *, dropout: float = 0.2,
                        dense: tuple[int, ...] | list[int] = (), norm: str = "none",
                        l2: float = 0.0):
    """Backbone features -> [dropout -> Dense(width, relu) -> norm] per ``dense`` width ->
    dropout -> softmax over ``num_classes`` (float32, also under mixed precision).

    ``norm``: none, batch, layer or group (8 groups, or fewer when the width needs);
    ``l2``: kernel regularisation of every Dense of the head."""
    regularizer = keras.regularizers.L2(l2) if l2 > 0 else None
    inputs = keras.Input(backbone.input_shape[1:], name="images")
    x = backbone(inputs)
    for i, width in enumerate(dense):
        x = keras.layers.Dropout(dropout, name=f"head_dropout_{i}")(x)
        x = keras.layers.Dense(width, activation="relu", kernel_regularizer=regularizer,
                               name=f"head_dense_{i}")(x)
        if norm == "batch":
            x = keras.layers.BatchNormalization(name=f"head_norm_{i}")(x)
        elif norm == "layer":
            x = keras.layers.LayerNormalization(name=f"head_norm_{i}")(x)
        elif norm == "group":
            groups = next(g for g in (8, 4, 2, 1) if width % g == 0)
            x = keras.layers.GroupNormalization(groups=groups, name=f"head_norm_{i}")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                 kernel_regularizer=regularizer, name="head")(x)
    return keras.Model(inputs, outputs, name="classifier")


def classifier_for(backbone, num_classes: int, recipe):
    """:func:`assemble_classifier` with a :class:`~codabench_kit.training.recipe.Recipe`'s head."""
    head = recipe.head
    return assemble_classifier(backbone, num_classes, dropout=head["dropout"],
                               dense=recipe.dense_widths(), norm=head["norm"], l2=head["l2"])


def inference_model(classifier, tta):
    """float32 images 0..255 -> class probabilities merged over the TTA views.

    The views are stacked into one batch, so TTA costs one forward pass of
    ``len(views) * n`` images rather than a Python loop per image or per view. The
    strategy's ``merge`` attribute (``"mean"`` when it has none) says how the views'
    probabilities are merged per image: ``"mean"``, their mean; ``"logits"``, the mean of
    their log-probabilities then a softmax (the normalised geometric mean).
    """
    from codabench_kit.errors import OptionError

    merges = ("mean", "logits")
    merge = getattr(tta, "merge", "mean")
    if merge not in merges:
        raise OptionError(
            f"TTA strategy {type(tta).__name__}: expected merge to be one of "
            f"{', '.join(merges)}; received {merge!r}"
        )
    inputs = keras.Input(classifier.input_shape[1:], name="images")
    views = tta(inputs)
    if len(views) == 1:
        outputs = classifier(views[0])
    else:
        stacked = keras.ops.concatenate(views, axis=0)
        probs = classifier(stacked)
        n_views = len(views)
        probs = keras.ops.reshape(probs, (n_views, -1, probs.shape[-1]))
        if merge == "logits":
            # A probability of exactly 0 (float32 underflow) would give log 0 = -inf.
            log_probs = keras.ops.log(keras.ops.maximum(probs, 1e-12))
            outputs = keras.ops.softmax(keras.ops.mean(log_probs, axis=0), axis=-1)
        else:
            outputs = keras.ops.mean(probs, axis=0)
    return keras.Model(inputs, outputs, name="inference")


def set_backbone_trainable(backbone, trainable: bool, *, freeze_batchnorm: bool) -> None:
    """Unfreeze (or freeze) the backbone; with ``freeze_batchnorm`` its BatchNorm layers
    stay frozen, which in Keras 3 also keeps them in inference mode while fine-tuning."""
    backbone.trainable = trainable
    if trainable and freeze_batchnorm:
        for layer in _all_layers(backbone):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False


def _all_layers(model):
    """Every layer inside ``model``, at any depth: also those of custom blocks that keep
    their sublayers as attributes rather than in ``.layers`` (keras-hub's MobileNetV3
    blocks hold 33 of its 34 BatchNorm layers so)."""
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:  # Keras 3's own walk over tracked sublayers
        yield from flatten(include_self=False, recursive=True)
        return
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
