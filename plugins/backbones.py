"""Built-in backbones: ``cnn`` (small baseline, from scratch) and families of
``keras.applications`` networks, each choosing its member with a ``variant`` option:
``effnet`` (EfficientNetV2), ``efficientnet`` (EfficientNet), ``convnext``,
``mobilenet``, ``resnet``, ``vgg``, ``inception`` (InceptionV3) and ``densenet``.

Each factory returns a ``keras.Model`` from float32 images in 0..255 to pooled features
(``GlobalAveragePooling2D``), named ``<family>_<variant>``, with its preprocessing inside
the graph in standard serialisable layers, so the submission feeds raw pixels:

* EfficientNet, EfficientNetV2, ConvNeXt and MobileNetV3 bring their own (the
  applications' built-in preprocessing);
* MobileNetV2, ResNet50V2 and InceptionV3 take [-1, 1] (``Rescaling``);
* ResNet50, VGG16 and VGG19 take Caffe's BGR minus the ImageNet mean (a weight-free
  channel reversal, then ``Normalization`` with unit variance);
* DenseNet121 takes torch's ``(x / 255 - mean) / std`` (``Normalization`` on 0..255).

Input size: every family but ``cnn`` has a ``size`` option: 0 keeps the images' size; otherwise a bilinear
``Resizing(size, size)`` inside the graph resizes them first. ``convnext`` defaults to
224 (the first-place team resized 96 -> 224), ``mobilenet`` to 128 (with EMA, which it
recommends to the training recipe, it lifted accuracy on a corruption family no
augmenter simulates beyond seed noise: README, "Robustness to corruptions it never
trained on"), the others to 0. Images smaller than a family's minimum (75 for
InceptionV3, 32 for the others) are a :class:`BuildError`.

The graph never depends on ``weights``: packaging rebuilds the classifier with
``weights=None`` and loads the trained weights into it, so both graphs must be the same.
"""

from codabench_kit.api import check_choice, hookimpl

MOBILENET_VARIANTS = ("v2", "v3small", "v3large")
MOBILENET_RECIPE = {"train": {"ema": True}}
"""What ``mobilenet`` recommends to the training recipe (``--set train.ema=false`` undoes it)."""
EFFNET_VARIANTS = ("b0", "b1", "b2", "b3", "s", "m", "l")
EFFICIENTNET_VARIANTS = ("b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7")
CONVNEXT_VARIANTS = ("tiny", "small", "base", "large", "xlarge")
CONVNEXT_CONSTRUCTORS = {"tiny": "ConvNeXtTiny", "small": "ConvNeXtSmall",
                         "base": "ConvNeXtBase", "large": "ConvNeXtLarge",
                         "xlarge": "ConvNeXtXLarge"}
RESNET_VARIANTS = ("50", "50v2")
VGG_VARIANTS = ("16", "19")
INCEPTION_VARIANTS = ("v3",)
DENSENET_VARIANTS = ("121",)

MIN_IMAGE_SIZE = {"inception": 75}
"""Smallest image side each family accepts (keras.applications' own limits); others 32."""
DEFAULT_MIN_IMAGE_SIZE = 32

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
"""ImageNet mean in 0..255, BGR order: ``preprocess_input`` mode ``"caffe"``."""
TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
TORCH_STD_RGB = (0.229, 0.224, 0.225)
"""ImageNet mean and standard deviation in 0..1: ``preprocess_input`` mode ``"torch"``."""


@hookimpl
def register_backbones(register):
    register("cnn", make_cnn, description="Small baseline CNN trained from scratch; fast on CPU.",
             pretrained=False)
    register("mobilenet", make_mobilenet,
             description="MobileNet (V2 default; v3small, v3large) from keras.applications; "
                         "resizes to size=128 by default and recommends train.ema=true; "
                         "size=0 keeps the image size.",
             pretrained=True, recipe=MOBILENET_RECIPE)
    register("effnet", make_effnet,
             description="EfficientNetV2 (b0 default; b1-b3, s, m, l) from keras.applications.",
             pretrained=True)
    register("efficientnet", make_efficientnet,
             description="EfficientNet (b0 default; b1-b7) from keras.applications; "
                         "size 0 (default) keeps the image size.",
             pretrained=True)
    register("convnext", make_convnext,
             description="ConvNeXt (tiny default; small, base, large, xlarge) from "
                         "keras.applications; resizes to size=224 by default (the first-place "
                         "team's 96->224); size=0 keeps the image size.",
             pretrained=True)
    register("resnet", make_resnet,
             description="ResNet (50 default; 50v2) from keras.applications; "
                         "size 0 (default) keeps the image size.",
             pretrained=True)
    register("vgg", make_vgg,
             description="VGG (16 default; 19) from keras.applications; "
                         "size 0 (default) keeps the image size.",
             pretrained=True)
    register("inception", make_inception,
             description="InceptionV3 (variant v3, the only one) from keras.applications; "
                         "needs images of 75x75 or more; size 0 (default) keeps the image size, "
                         "size 75 or more resizes smaller ones.", pretrained=True)
    register("densenet", make_densenet,
             description="DenseNet (121, the only variant and default) from keras.applications; "
                         "size 0 (default) keeps the image size.",
             pretrained=True)


def make_cnn(input_shape, weights=None, width=32, blocks=3, norm="batch"):
    """A stride-2 stem, then ``blocks`` of two 3x3 convolutions and a 2x2 pool, doubling
    the width each block: about 0.1 GMAC per 96x96 image, so it trains fast on CPU.

    ``norm``: ``"batch"`` (default; momentum 0.9, because with Keras' 0.99 the moving
    averages lag so far behind a network trained from scratch for a few hundred steps
    that validation accuracy stays at chance), ``"group"`` or ``"none"``; on the demo
    data both of the latter learned several times slower."""
    import keras
    from keras import layers

    from codabench_kit.api import BuildError

    if weights is not None:
        raise BuildError("cnn has no pretrained weights; use --weights none with it")
    check_choice("cnn", "norm", norm, ("batch", "group", "none"))

    def conv_bn_relu(x, filters, strides=1):
        x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
        if norm == "group":
            x = layers.GroupNormalization(groups=min(8, filters))(x)
        elif norm == "batch":
            x = layers.BatchNormalization(momentum=0.9)(x)
        return layers.Activation("relu")(x)

    inputs = keras.Input(input_shape, name="images")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = conv_bn_relu(x, max(width // 2, 8), strides=2)
    for i in range(blocks):
        x = conv_bn_relu(x, width * 2**i)
        x = conv_bn_relu(x, width * 2**i)
        x = layers.MaxPooling2D()(x)
    outputs = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, outputs, name="cnn")


def make_mobilenet(input_shape, weights=None, variant="v2", alpha=1.0, size=128):
    """MobileNetV2 on [-1, 1], or MobileNetV3 with its own preprocessing, fed the images
    resized to ``size`` (128 by default; 0 keeps their size)."""
    import keras

    from codabench_kit.training.weights import build_application

    check_choice("mobilenet", "variant", variant, MOBILENET_VARIANTS)
    if variant == "v2":  # MobileNetV2 expects [-1, 1]
        constructor, preprocess, own = keras.applications.MobileNetV2, _minus_one_to_one, {}
    else:
        constructor = (keras.applications.MobileNetV3Small if variant == "v3small"
                       else keras.applications.MobileNetV3Large)
        preprocess, own = None, {"include_preprocessing": True}
    return _application("mobilenet", variant, input_shape, size, lambda shape: build_application(
        constructor, weights, f"mobilenet ({variant})", input_shape=shape, alpha=alpha, **own),
        preprocess)


def make_effnet(input_shape, weights=None, variant="b0", size=0):
    """EfficientNetV2 B0-B3, S, M, L; its own ``Rescaling`` is its preprocessing."""
    import keras

    from codabench_kit.training.weights import build_application

    check_choice("effnet", "variant", variant, EFFNET_VARIANTS)
    constructor = getattr(keras.applications, f"EfficientNetV2{variant.upper()}")
    return _application("effnet", variant, input_shape, size, lambda shape: build_application(
        constructor, weights, f"effnet ({variant})", input_shape=shape,
        include_preprocessing=True))


def make_efficientnet(input_shape, weights=None, variant="b0", size=0):
    """EfficientNet B0-B7; its own ``Rescaling`` and ``Normalization`` are its preprocessing."""
    import keras

    check_choice("efficientnet", "variant", variant, EFFICIENTNET_VARIANTS)
    constructor = getattr(keras.applications, f"EfficientNet{variant.upper()}")
    return _application("efficientnet", variant, input_shape, size, lambda shape:
                        _efficientnet_base(constructor, weights, f"efficientnet ({variant})",
                                           shape))


def make_convnext(input_shape, weights=None, variant="tiny", size=224):
    """ConvNeXt, resized to ``size`` (224 by default) inside the graph, with its own
    ImageNet normalisation (``include_preprocessing=True``)."""
    import keras

    from codabench_kit.training.weights import build_application

    check_choice("convnext", "variant", variant, CONVNEXT_VARIANTS)
    constructor = getattr(keras.applications, CONVNEXT_CONSTRUCTORS[variant])
    return _application("convnext", variant, input_shape, size, lambda shape: build_application(
        constructor, weights, f"convnext ({variant})", input_shape=shape,
        include_preprocessing=True))


def make_resnet(input_shape, weights=None, variant="50", size=0):
    """ResNet50 (Caffe preprocessing: BGR minus the ImageNet mean) or ResNet50V2 ([-1, 1])."""
    import keras

    from codabench_kit.training.weights import build_application

    variant = check_choice("resnet", "variant", str(variant), RESNET_VARIANTS)
    if variant == "50":
        constructor, preprocess = keras.applications.ResNet50, _caffe
    else:
        constructor, preprocess = keras.applications.ResNet50V2, _minus_one_to_one
    return _application("resnet", variant, input_shape, size, lambda shape: build_application(
        constructor, weights, f"resnet ({variant})", input_shape=shape), preprocess)


def make_vgg(input_shape, weights=None, variant="16", size=0):
    """VGG16 or VGG19, with Caffe preprocessing (BGR minus the ImageNet mean)."""
    import keras

    from codabench_kit.training.weights import build_application

    variant = check_choice("vgg", "variant", str(variant), VGG_VARIANTS)
    constructor = getattr(keras.applications, f"VGG{variant}")
    return _application("vgg", variant, input_shape, size, lambda shape: build_application(
        constructor, weights, f"vgg ({variant})", input_shape=shape), _caffe)


def make_inception(input_shape, weights=None, variant="v3", size=0):
    """InceptionV3 on [-1, 1]; it needs images of at least 75x75 (``size`` can resize)."""
    import keras

    from codabench_kit.training.weights import build_application

    check_choice("inception", "variant", variant, INCEPTION_VARIANTS)
    return _application("inception", variant, input_shape, size, lambda shape: build_application(
        keras.applications.InceptionV3, weights, "inception (v3)", input_shape=shape),
        _minus_one_to_one)


def make_densenet(input_shape, weights=None, variant="121", size=0):
    """DenseNet121 with torch preprocessing: ``(x / 255 - mean) / std``."""
    import keras

    from codabench_kit.training.weights import build_application

    variant = check_choice("densenet", "variant", str(variant), DENSENET_VARIANTS)
    return _application("densenet", variant, input_shape, size, lambda shape: build_application(
        keras.applications.DenseNet121, weights, "densenet (121)", input_shape=shape), _torch)


# --- shared pieces ---------------------------------------------------------------------


def _application(family, variant, input_shape, size, make_base, preprocess=None):
    """A family's backbone: the application ``make_base(shape)`` builds for the image shape
    it sees (checked by :func:`_base_input_shape`), fed the images resized to ``size``
    and ``preprocess``-ed (when the application does not preprocess itself), pooled."""
    import keras

    base = make_base(_base_input_shape(family, variant, input_shape, size))
    inputs = keras.Input(input_shape, name="images")
    x = _resize(inputs, size)
    if preprocess is not None:
        x = preprocess(x)
    return _pooled(f"{family}_{variant}", inputs, base(x))


def _pooled(name, inputs, features):
    """The backbone model: ``inputs`` -> global average of the ``features`` map."""
    import keras

    outputs = keras.layers.GlobalAveragePooling2D()(features)
    return keras.Model(inputs, outputs, name=name)


def _resize(images, size):
    """``images`` resized (bilinear) to ``size`` x ``size``; unchanged if ``size`` is 0
    or already their size."""
    import keras

    height, width = images.shape[1], images.shape[2]
    if not size or (height, width) == (size, size):
        return images
    return keras.layers.Resizing(size, size, interpolation="bilinear")(images)


def _check_image_size(family, variant, input_shape, size=None):
    """Raise a :class:`BuildError` if images of ``input_shape`` (resized to ``size`` when
    that is given and not 0) are smaller than the family's minimum."""
    from codabench_kit.api import BuildError

    minimum = MIN_IMAGE_SIZE.get(family, DEFAULT_MIN_IMAGE_SIZE)
    if size:
        if size < minimum:
            raise BuildError(
                f"{family} ({variant}) expected {family}.size >= {minimum} (or 0 to keep the "
                f"images' size); received {family}.size={size}")
        return
    height, width = input_shape[0], input_shape[1]
    if min(height, width) < minimum:
        hint = (f"; --set {family}.size={minimum} (or more) resizes them inside the model"
                if size is not None else "")
        raise BuildError(
            f"{family} ({variant}) expected images of at least {minimum}x{minimum} pixels; "
            f"received {height}x{width}{hint}")


def _base_input_shape(family, variant, input_shape, size):
    """The image shape the application sees: ``(size, size, 3)``, or the images' own
    shape when ``size`` is 0; checks channels, ``size`` and the family's minimum."""
    import numbers

    from codabench_kit.api import BuildError, OptionError

    if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 0:
        raise OptionError(f"{family}.size expects an int >= 0 (0 keeps the images' size); "
                          f"received {size!r}")
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise BuildError(f"{family} ({variant}) expected RGB images of shape (H, W, 3); "
                         f"received {tuple(input_shape)}")
    _check_image_size(family, variant, input_shape, size)
    return (size, size, 3) if size else tuple(input_shape)


def _minus_one_to_one(images):
    """0..255 -> [-1, 1]: ``preprocess_input`` mode ``"tf"``."""
    import keras

    return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(images)


def _torch(images):
    """0..255 RGB -> ``(x / 255 - mean) / std``: ``preprocess_input`` mode ``"torch"``."""
    import keras

    return keras.layers.Normalization(
        mean=[255.0 * m for m in TORCH_MEAN_RGB],
        variance=[(255.0 * s) ** 2 for s in TORCH_STD_RGB])(images)


def _caffe(images):
    """0..255 RGB -> BGR minus the ImageNet mean: ``preprocess_input`` mode ``"caffe"``."""
    import keras

    bgr = _reverse_channels(images)
    return keras.layers.Normalization(mean=list(CAFFE_MEAN_BGR), variance=[1.0, 1.0, 1.0])(bgr)


def _reverse_channels(images):
    """RGB -> BGR in weight-free layers: the image as (H, W, 3, 1), each channel cropped
    out, concatenated in reverse. Not a fixed 1x1 Conv2D: its kernel would be a variable,
    and unfreezing the backbone for fine-tuning (``backbone.trainable = True`` reaches
    every sublayer) would let training change the preprocessing."""
    from keras import layers

    height, width, channels = images.shape[1:]
    stacked = layers.Reshape((height, width, channels, 1))(images)
    single = [layers.Cropping3D(((0, 0), (0, 0), (c, channels - 1 - c)))(stacked)
              for c in reversed(range(channels))]
    return layers.Reshape((height, width, channels))(layers.Concatenate(axis=3)(single))


def _efficientnet_base(constructor, weights, name, input_shape):
    """An EfficientNet (V1) application whose graph is the same for every ``weights``.

    With ``weights="imagenet"`` keras.applications adds a ``Rescaling`` by
    1/sqrt(ImageNet std) after its ``Normalization`` (the ImageNet file stores the std
    where the variance belongs); with ``weights=None`` it does not. Packaging rebuilds
    the classifier with ``weights=None``, so that graph is the one used: the ImageNet
    weights are copied into it and the ``Normalization``'s variance multiplied by the
    std, which gives the same outputs. A weights file whose variance is the ImageNet std
    (keras' ImageNet file, given as a path) is corrected the same way.
    """
    import numpy as np

    from codabench_kit.training.weights import build_application

    base = build_application(constructor, weights, name, input_shape=input_shape)
    if weights == "imagenet":
        plain = constructor(include_top=False, weights=None, input_shape=input_shape)
        plain.set_weights(base.get_weights())
        base = plain
    normalization = next(layer for layer in base.layers
                         if layer.__class__.__name__ == "Normalization")
    std = np.asarray(TORCH_STD_RGB, "float32")  # keras' IMAGENET_STDDEV_RGB
    variance = np.asarray(normalization.adapt_variance)
    if weights == "imagenet" or (weights is not None and np.allclose(variance, std, atol=1e-4)):
        normalization.adapt_variance.assign(variance * std)
        normalization.finalize_state()
    return base
