"""Assembling the classifier (backbone + head) and the inference model (with TTA)."""

from __future__ import annotations

from codabench_kit.backend import import_keras

keras = import_keras()


def assemble_classifier(backbone, num_classes: int, *, dropout: float = 0.2):
    """Backbone features -> dropout -> softmax over ``num_classes``."""
    inputs = keras.Input(backbone.input_shape[1:], name="images")
    features = backbone(inputs)
    x = keras.layers.Dropout(dropout, name="head_dropout")(features)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="classifier")


def inference_model(classifier, tta):
    """float32 images 0..255 -> class probabilities averaged over the TTA views.

    The views are stacked into one batch, so TTA costs one forward pass of
    ``len(views) * n`` images rather than a Python loop per image or per view.
    """
    inputs = keras.Input(classifier.input_shape[1:], name="images")
    views = tta(inputs)
    if len(views) == 1:
        outputs = classifier(views[0])
    else:
        stacked = keras.ops.concatenate(views, axis=0)
        probs = classifier(stacked)
        n_views = len(views)
        probs = keras.ops.reshape(probs, (n_views, -1, probs.shape[-1]))
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
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
