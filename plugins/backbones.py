"""Built-in backbones: ``cnn`` (small baseline), ``mobilenet`` and ``effnet``.

Each factory returns a ``keras.Model`` from float32 images in 0..255 to pooled
features, with its preprocessing inside the graph, so the submission feeds raw pixels.
"""

from codabench_kit import hookimpl
from codabench_kit.options import check_choice

MOBILENET_VARIANTS = ("v2", "v3small", "v3large")
EFFNET_VARIANTS = ("b0", "b1", "b2", "b3", "s", "m", "l")


@hookimpl
def register_backbones(register):
    register("cnn", make_cnn, description="Small baseline CNN trained from scratch; fast on CPU.",
             options={"width": 32, "blocks": 3, "norm": "batch"}, pretrained=False)
    register("mobilenet", make_mobilenet,
             description="MobileNet (V2 default; v3small, v3large) from keras.applications.",
             options={"variant": "v2", "alpha": 1.0}, pretrained=True)
    register("effnet", make_effnet,
             description="EfficientNetV2 (b0 default; b1-b3, s, m, l) from keras.applications.",
             options={"variant": "b0"}, pretrained=True)


def make_cnn(input_shape, weights=None, width=32, blocks=3, norm="batch"):
    """A stride-2 stem, then ``blocks`` of two 3x3 convolutions and a 2x2 pool, doubling
    the width each block: about 0.1 GMAC per 96x96 image, so it trains fast on CPU.

    ``norm``: ``"batch"`` (default; momentum 0.9, because with Keras' 0.99 the moving
    averages lag so far behind a network trained from scratch for a few hundred steps
    that validation accuracy stays at chance), ``"group"`` or ``"none"``; on the demo
    data both of the latter learned several times slower."""
    import keras
    from keras import layers

    from codabench_kit.errors import BuildError

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


def make_mobilenet(input_shape, weights=None, variant="v2", alpha=1.0):
    import keras
    from keras import layers

    from codabench_kit.training.weights import build_application

    check_choice("mobilenet", "variant", variant, MOBILENET_VARIANTS)
    inputs = keras.Input(input_shape, name="images")
    if variant == "v2":
        base = build_application(keras.applications.MobileNetV2, weights, "mobilenet (v2)",
                                 input_shape=input_shape, alpha=alpha)
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)  # MobileNetV2 expects [-1, 1]
    else:
        constructor = (keras.applications.MobileNetV3Small if variant == "v3small"
                       else keras.applications.MobileNetV3Large)
        base = build_application(constructor, weights, f"mobilenet ({variant})",
                                 input_shape=input_shape, alpha=alpha,
                                 include_preprocessing=True)
        x = inputs
    x = base(x)
    outputs = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, outputs, name=f"mobilenet_{variant}")


def make_effnet(input_shape, weights=None, variant="b0"):
    import keras
    from keras import layers

    from codabench_kit.training.weights import build_application

    check_choice("effnet", "variant", variant, EFFNET_VARIANTS)
    constructor = getattr(keras.applications, f"EfficientNetV2{variant.upper()}")
    inputs = keras.Input(input_shape, name="images")
    base = build_application(constructor, weights, f"effnet ({variant})",
                             input_shape=input_shape, include_preprocessing=True)
    outputs = layers.GlobalAveragePooling2D()(base(inputs))
    return keras.Model(inputs, outputs, name=f"effnet_{variant}")
