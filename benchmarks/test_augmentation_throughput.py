"""Training throughput with the default augmentation against none (issue 4's target).

MobileNetV2 with its default options (96x96 images resized to 128 inside the model),
batch 64, on CPU: images/s of ``fit`` over the same batches with and without the
default augmenters, measured alternately in one run; the ratio goes to ``extra_info``
and must be at least 0.9.

Run: ``python -m pytest benchmarks/test_augmentation_throughput.py -s``.

Measured here (2 cores, TF 2.21), with the built-in augmenters compiled
(``codabench_kit.training.compiled``) and AugMix on level maps, five runs of the former
default ``flips,augmix`` (AugMix 3 chains): ratio 0.939, 0.873, 0.962, 1.012, 0.965
(none 153-191 img/s). Before (eager ops, ``keras.layers.AugMix`` at 1.3 ms per image):
0.79 and 0.89. The default since, ``flips,augmix,color,noise`` with AugMix at 1 chain,
costs 0.70x the former's time per image (one alternating run); five runs on a machine
with nothing else running: 1.097, 0.959, 0.830, 1.212, 0.908 (median 0.959). The
machine is shared and switches between a slow state (about 150 img/s) and a fast one
(about 180-200) within a run, as the printed rounds show: that, not augmentation, makes
a single figure move by 10-20%. The rounds alternate to cancel drift.
"""

import time

import numpy as np

TARGET_RATIO = 0.9
STEPS = 12
ROUNDS = 6


def images_per_second(classifier, batches):
    started = time.perf_counter()
    classifier.fit(batches, epochs=1, steps_per_epoch=STEPS, verbose=0)
    return STEPS * batches.batch_size / (time.perf_counter() - started)


def test_default_augmentation_keeps_training_speed(benchmark):
    from codabench_kit.data import demo_dataset
    from codabench_kit.components.selection import DEFAULTS
    from codabench_kit.components.plugin_manager import get_plugin_manager
    from codabench_kit.components.registry import Registry
    from codabench_kit.training.batches import TrainingBatches
    from codabench_kit.training.model import assemble_classifier

    import keras

    registry = Registry.from_plugin_manager(get_plugin_manager())
    data = demo_dataset(seed=0, per_class=100)
    mobilenet = registry.get("mobilenet")
    backbone_size = mobilenet.options["size"]
    backbone = mobilenet.create(input_shape=(96, 96, 3), weights=None)  # its default options
    classifier = assemble_classifier(backbone, 8)
    classifier.compile(optimizer="adam", loss="categorical_crossentropy")
    augmenters = [registry.get(name).create(seed=i)
                  for i, name in enumerate(DEFAULTS["augmenter"])]
    plain = TrainingBatches(data.images, data.labels, 8, batch_size=64)
    augmented = TrainingBatches(data.images, data.labels, 8, batch_size=64,
                                augmenters=augmenters)
    images_per_second(classifier, plain)  # warm up both paths (graph tracing)
    images_per_second(classifier, augmented)
    speeds = {"none": [], "default": []}

    def alternate():
        for _ in range(ROUNDS):
            speeds["none"].append(images_per_second(classifier, plain))
            speeds["default"].append(images_per_second(classifier, augmented))

    benchmark.pedantic(alternate, rounds=1, iterations=1)
    none, default = np.median(speeds["none"]), np.median(speeds["default"])
    ratio = default / none
    benchmark.extra_info.update(none_images_per_s=round(none, 1),
                                default_images_per_s=round(default, 1),
                                ratio=round(ratio, 3), augmenters=DEFAULTS["augmenter"],
                                backend=keras.backend.backend())
    paired = np.median(np.array(speeds["default"]) / np.array(speeds["none"]))
    benchmark.extra_info.update(paired_ratio=round(float(paired), 3))
    print(f"\nMobileNetV2 96x96 (resized to {backbone_size} in the model) training: none "
          f"{none:.1f} img/s, default "
          f"{DEFAULTS['augmenter']} {default:.1f} img/s, ratio {ratio:.3f} (median of the "
          f"rounds' own ratios {paired:.3f}; rounds: none "
          f"{[round(s) for s in speeds['none']]}, default "
          f"{[round(s) for s in speeds['default']]})")
    assert ratio >= TARGET_RATIO
