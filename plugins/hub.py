"""The ``hub`` backbone: ImageNet networks from KerasHub (keras-cv's maintained successor
for models), one per ``preset`` (``--set hub.preset=resnet_50_imagenet``).

KerasHub keeps its presets on Kaggle: ``keras_hub.models.Backbone.from_preset(name)``
downloads the preset's config and weights. The graph must not depend on that download
(packaging rebuilds the classifier with ``weights=None``, offline, and loads the trained
weights into it), so :data:`PRESETS` holds each known preset's architecture: its
backbone class and constructor arguments, the ones keras-hub's timm converter gave the
Kaggle preset. Then

* ``weights=None`` builds that architecture offline, randomly initialised;
* ``weights="imagenet"`` builds it the same way, downloads the preset (internet needed),
  checks that the preset's class and config are the table's, and copies the preset's
  weights in;
* a weights-file path (for instance the preset's own ``model.weights.h5``, fetched on a
  machine with internet) is loaded into the offline architecture.

Like the built-in families, the factory returns a ``keras.Model`` from float32 images in
0..255 to pooled features (``GlobalAveragePooling2D``), named ``hub_<preset>``, with the
preset's preprocessing inside the graph in a standard ``Normalization`` layer, and a
``size`` option: 0 keeps the images' size, otherwise a bilinear ``Resizing`` inside the
graph resizes them first. Images (or ``size``) under 32x32 are a :class:`BuildError`.
Every preset below was converted from a timm model normalised with ImageNet's mean and
std (the preset's ImageConverter applies them as ``x * scale + offset``; keras-hub 0.29's
preprocessing layers need tensorflow-text, so the plugin does not load it).

It needs keras-hub, which is not a dependency of codabench-kit: keras-hub requires
tensorflow-text, which requires ``tensorflow``, whose files would overwrite those of
the ``tensorflow-cpu`` codabench-kit installs on Linux x86_64 (and KerasHub's image
backbones never use tensorflow-text). So the ``hub`` extra brings keras-hub's other
requirements, and keras-hub itself installs without its dependencies: :data:`INSTALL`.
This module never imports keras_hub at import time; the component is always listed,
with ``requires="keras-hub"`` in its metadata.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from codabench_kit.api import BuildError, OptionError, check_int, hookimpl

KERAS_HUB = "keras-hub>=0.29,<0.30"
"""The keras-hub releases the table below was checked against (tests/test_hub.py checks
it against the installed one); 0.30 and later pin a kagglesdk older than the one
kagglehub needs."""
INSTALL = f"pip install 'codabench-kit[hub]' && pip install --no-deps '{KERAS_HUB}'"
"""How to install keras-hub without tensorflow-text (see the module's docstring)."""

MIN_IMAGE_SIZE = 32
"""Smallest image side (after ``size``): every preset downsamples by 32."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""ImageNet's mean and standard deviation in 0..1 (timm's defaults)."""


@dataclass(frozen=True)
class Preset:
    """A KerasHub preset's architecture: ``keras_hub.models.<backbone>(**arguments)``,
    fed ``(x / 255 - mean) / std``."""

    backbone: str
    arguments: dict = field(repr=False)
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD


_RESNET = dict(input_conv_filters=[64], input_conv_kernel_sizes=[7],
               stackwise_num_filters=[64, 128, 256, 512], stackwise_num_strides=[1, 2, 2, 2])
_EFFICIENTNET = dict(
    stackwise_kernel_sizes=[3, 3, 5, 3, 5, 5, 3], stackwise_num_repeats=[1, 2, 2, 3, 3, 4, 1],
    stackwise_input_filters=[32, 16, 24, 40, 80, 112, 192],
    stackwise_output_filters=[16, 24, 40, 80, 112, 192, 320],
    stackwise_expansion_ratios=[1, 6, 6, 6, 6, 6, 6], stackwise_strides=[1, 2, 2, 2, 1, 2, 1],
    stackwise_block_types=["v1"] * 7, min_depth=None, include_stem_padding=True,
    use_depth_divisor_as_min_depth=True, cap_round_filter_decrease=True,
    stem_conv_padding="valid", batch_norm_momentum=0.9, batch_norm_epsilon=1e-5, dropout=0,
    projection_activation=None)

PRESETS = {
    "resnet_18_imagenet": Preset("ResNetBackbone", dict(
        _RESNET, stackwise_num_blocks=[2, 2, 2, 2], block_type="basic_block",
        use_pre_activation=False)),
    "resnet_50_imagenet": Preset("ResNetBackbone", dict(
        _RESNET, stackwise_num_blocks=[3, 4, 6, 3], block_type="bottleneck_block",
        use_pre_activation=False)),
    "resnet_v2_50_imagenet": Preset("ResNetBackbone", dict(
        _RESNET, stackwise_num_blocks=[3, 4, 6, 3], block_type="bottleneck_block",
        use_pre_activation=True)),
    "efficientnet_b0_ra_imagenet": Preset("EfficientNetBackbone", dict(
        _EFFICIENTNET, stackwise_width_coefficients=[1.0] * 7,
        stackwise_depth_coefficients=[1.0] * 7,
        stackwise_squeeze_and_excite_ratios=[0.25] * 7)),
    "mobilenet_v3_small_100_imagenet": Preset("MobileNetBackbone", dict(
        stackwise_num_blocks=[2, 3, 2, 3],
        stackwise_expansion=[[72, 88], [96, 240, 240], [120, 144], [288, 576, 576]],
        stackwise_num_filters=[[24, 24], [40, 40, 40], [48, 48], [96, 96, 96]],
        stackwise_kernel_size=[[3, 3], [5, 5, 5], [5, 5], [5, 5, 5]],
        stackwise_num_strides=[[2, 1], [2, 1, 1], [1, 1], [2, 1, 1]],
        stackwise_se_ratio=[[None, None], [0.25] * 3, [0.25] * 2, [0.25] * 3],
        stackwise_activation=[["relu"] * 2, ["hard_swish"] * 3, ["hard_swish"] * 2,
                              ["hard_swish"] * 3],
        stackwise_padding=[[1, 1], [2, 2, 2], [2, 2], [2, 2, 2]],
        output_num_filters=1024, input_num_filters=16, depthwise_filters=16,
        depthwise_stride=2, depthwise_residual=False, squeeze_and_excite=0.5,
        last_layer_filter=576, input_activation="hard_swish",
        output_activation="hard_swish")),
    "csp_darknet_53_ra_imagenet": Preset("CSPNetBackbone", dict(
        stem_filters=32, stem_kernel_size=3, stem_strides=1,
        stackwise_depth=[1, 2, 8, 8, 4], stackwise_num_filters=[64, 128, 256, 512, 1024],
        stackwise_strides=[2, 2, 2, 2, 2], bottle_ratio=[0.5, 1.0], block_ratio=[1.0, 0.5],
        expand_ratio=[2.0, 1.0], stage_type="csp", block_type="dark_block", groups=1,
        down_growth=True, stem_pooling=None, stem_padding="same", avg_down=False,
        cross_linear=False)),
    "densenet_121_imagenet": Preset("DenseNetBackbone", dict(
        stackwise_num_repeats=[6, 12, 24, 16], compression_ratio=0.5, growth_rate=32)),
    "vgg_16_imagenet": Preset("VGGBackbone", dict(
        stackwise_num_repeats=[2, 2, 3, 3, 3], stackwise_num_filters=[64, 128, 256, 512, 512])),
}
"""Preset name -> its architecture, from keras-hub's timm converters
(``keras_hub/src/utils/timm/convert_*.py``), which made the Kaggle presets."""

DEFAULT_PRESET = "resnet_50_imagenet"

CONFIG_KEYS_NOT_ARCHITECTURE = ("name", "trainable", "dtype", "image_shape", "input_shape")
"""Backbone config keys that say nothing about the architecture (the image shape is the
build's own)."""


@hookimpl
def register_backbones(register):
    register("hub", make_hub, pretrained=True, requires="keras-hub",
             description=f"A KerasHub preset's architecture, built offline: --set "
                         f"hub.preset=NAME, one of {', '.join(PRESETS)} ({DEFAULT_PRESET} "
                         f"default); --weights imagenet downloads the preset's weights "
                         f"(internet); size 0 (default) keeps the image size. Needs keras-hub: "
                         f"{INSTALL}.")


def make_hub(input_shape, weights=None, preset=DEFAULT_PRESET, size=0):
    """The ``preset``'s architecture on ``input_shape`` images (resized to ``size`` first
    unless it is 0), ImageNet-normalised inside the graph, globally average-pooled."""
    import keras

    spec = preset_spec(preset)
    size = check_int("hub", "size", size, low=0)
    shape = _base_input_shape(preset, input_shape, size)
    keras_hub = _keras_hub()
    base = build_architecture(keras_hub, preset, shape)
    if weights == "imagenet":
        _copy_preset_weights(keras_hub, preset, base)
    elif weights is not None:
        try:
            base.load_weights(weights)
        except Exception as exc:
            raise BuildError(f"the weights file {weights} does not fit hub preset {preset} "
                             f"({spec.backbone}): {type(exc).__name__}: {str(exc)[:300]}") from None

    inputs = keras.Input(tuple(input_shape), name="images")
    x = inputs
    if size and tuple(input_shape[:2]) != (size, size):
        x = keras.layers.Resizing(size, size, interpolation="bilinear")(x)
    x = keras.layers.Normalization(mean=[255.0 * m for m in spec.mean],
                                   variance=[(255.0 * s) ** 2 for s in spec.std])(x)
    outputs = keras.layers.GlobalAveragePooling2D()(base(x))
    return keras.Model(inputs, outputs, name=f"hub_{preset}")


def preset_spec(preset) -> Preset:
    """The table's entry for ``preset``, or an :class:`OptionError` listing the known ones."""
    if preset in PRESETS:
        return PRESETS[preset]
    close = difflib.get_close_matches(str(preset), PRESETS, n=1)
    hint = f". Did you mean {close[0]!r}?" if close else ""
    raise OptionError(f"hub.preset expects one of {', '.join(PRESETS)}; "
                      f"received {preset!r}{hint}")


def build_architecture(keras_hub, preset, image_shape):
    """The preset's backbone, randomly initialised, for images of ``image_shape``; no
    download. (EfficientNetBackbone calls its image shape ``input_shape``.)"""
    import inspect

    spec = PRESETS[preset]
    cls = getattr(keras_hub.models, spec.backbone)
    parameters = inspect.signature(cls.__init__).parameters
    shape_argument = "image_shape" if "image_shape" in parameters else "input_shape"
    return cls(**spec.arguments, **{shape_argument: tuple(image_shape)})


def _keras_hub():
    try:
        import keras_hub
    except ImportError as exc:
        raise BuildError(f"hub needs keras-hub; install it with: {INSTALL} "
                         f"(import keras_hub raised {type(exc).__name__}: {exc})") from None
    return keras_hub


def _base_input_shape(preset, input_shape, size):
    """``(size, size, 3)``, or the images' own shape when ``size`` is 0; both at least
    :data:`MIN_IMAGE_SIZE` on a side, and RGB."""
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise BuildError(f"hub ({preset}) expected RGB images of shape (H, W, 3); "
                         f"received {tuple(input_shape)}")
    if size:
        if size < MIN_IMAGE_SIZE:
            raise BuildError(f"hub ({preset}) expected hub.size >= {MIN_IMAGE_SIZE} (or 0 to "
                             f"keep the images' size); received hub.size={size}")
        return (size, size, 3)
    height, width = input_shape[0], input_shape[1]
    if min(height, width) < MIN_IMAGE_SIZE:
        raise BuildError(
            f"hub ({preset}) expected images of at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} "
            f"pixels; received {height}x{width}; --set hub.size={MIN_IMAGE_SIZE} (or more) "
            f"resizes them inside the model")
    return tuple(input_shape)


def _copy_preset_weights(keras_hub, preset, base):
    """Download ``preset`` (kagglehub caches it) and copy its weights into ``base``, after
    checking that the preset is the table's architecture: otherwise the offline rebuild
    would differ from what trained."""
    import json

    spec = PRESETS[preset]
    try:
        loaded = keras_hub.models.Backbone.from_preset(preset)
    except Exception as exc:
        raise BuildError(
            f"could not download keras-hub preset {preset!r}: --weights imagenet needs "
            f"internet access (to Kaggle): {type(exc).__name__}: {str(exc)[:300]}. Offline, "
            f"pass --weights none (train from scratch) or --weights PATH (the preset's "
            f"model.weights.h5)") from None

    def architecture(model):
        config = {k: v for k, v in model.get_config().items()
                  if k not in CONFIG_KEYS_NOT_ARCHITECTURE}
        return json.loads(json.dumps(config))  # tuples -> lists, as in the preset's file

    ours, theirs = architecture(base), architecture(loaded)
    differences = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
    if type(loaded).__name__ != spec.backbone or differences:
        raise BuildError(
            f"keras-hub preset {preset!r} is not the architecture cbk's table lists for it "
            f"({spec.backbone}): it is a {type(loaded).__name__}"
            + (f" differing in {', '.join(differences)}" if differences else ""))
    base.set_weights(loaded.get_weights())
