"""``cbk build``: clean -> split -> held-out augmented test set -> train -> evaluate -> package.

:func:`run_build` checks every input before doing any work
(:func:`codabench_kit.build.inputs.check_inputs`), then runs each stage below in turn.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from codabench_kit.build.config import BuildConfig, BuildResult
from codabench_kit.build.inputs import BuildInputs, check_inputs
from codabench_kit.evaluation.heldout_sets import HeldoutSets, TestSet
from codabench_kit.packaging.manifest import RunManifest, data_section, split_section

Progress = Callable[[str], None]


def run_build(config: BuildConfig, registry, progress: Progress = lambda s: None) -> BuildResult:
    """Run every stage; see the module docstring. Returns the published zip's path."""
    inputs = check_inputs(config, registry)
    dataset = inputs.dataset
    progress(f"data: {len(dataset.labels)} images, {dataset.num_classes} classes from "
             f"{dataset.source}")
    started = time.perf_counter()
    device, precision = _start_backend(config, inputs, progress)
    try:
        # The backbone first: fetching ImageNet weights is the likeliest early failure.
        classifier, backbone = _build_classifier(inputs, progress)
        clean, outcome = _clean(config, inputs, progress)
        parts, heldout = _split(config, inputs, clean, progress)
        training = _train(config, inputs, clean, outcome, parts, classifier, backbone,
                          progress)
    finally:
        use_precision(None, device)
    training.update(precision=precision, device=device)
    if precision != "float32":  # evaluate and ship what packaging rebuilds: float32
        classifier = _float32_copy(inputs, classifier)
    metrics, robustness, heldout = _evaluate(config, inputs, clean, classifier, heldout,
                                             progress)
    manifest = RunManifest(
        seed=config.seed, components=inputs.selection.describe(),
        num_classes=clean.num_classes, class_names=list(clean.class_names),
        image_shape=list(dataset.image_shape), data=data_section(dataset, len(clean.labels)),
        cleaning=[r.to_dict() for r in outcome.reports],
        split=split_section(parts, val_fraction=config.val_fraction,
                            test_fraction=config.test_fraction),
        heldout=heldout.describe(), training=training, metrics=metrics,
        robustness=robustness)
    result = _save_and_package(config, inputs, manifest, classifier, heldout, registry,
                               progress)
    if result.zip_path is not None:  # after the zip is published, like the robustness chart
        _report(result, inputs, outcome, heldout, classifier, progress)
    progress(f"build finished in {time.perf_counter() - started:.0f} s")
    return result


def _start_backend(config: BuildConfig, inputs: BuildInputs, progress) -> tuple[str, str]:
    """Seed Keras, say which backend and device train, set the recipe's precision;
    ``(device, precision)``."""
    from codabench_kit.backend import device_summary, import_keras

    keras = import_keras()
    keras.utils.set_random_seed(config.seed)
    device = device_summary()
    progress(f"backend: keras {keras.__version__} on {keras.backend.backend()}, device {device}")
    precision = use_precision(inputs.recipe, device)
    progress(f"recipe: {inputs.recipe.describe()}, {precision} precision")
    return device, precision


def use_precision(recipe, device: str) -> str:
    """Set Keras' global dtype policy for the recipe (``None``: back to float32); return
    ``"mixed_float16"`` or ``"float32"``. ``auto`` mixes on a GPU only: on CPU float16
    is slower. The classifier's softmax stays float32 (see ``assemble_classifier``)."""
    from codabench_kit.backend import import_keras

    keras = import_keras()
    wanted = "off" if recipe is None else recipe.train["mixed_precision"]
    mixed = wanted == "on" or (wanted == "auto" and device.startswith("GPU"))
    policy = "mixed_float16" if mixed else "float32"
    keras.config.set_dtype_policy(policy)
    return policy


def _build_classifier(inputs: BuildInputs, progress):
    component = inputs.selection.one("backbone")
    classifier, backbone = _make_classifier(inputs, inputs.weights)
    if component.metadata.get("pretrained") and inputs.weights is None:
        progress(f"note: {component.name} starts from random weights (--weights none); "
                 f"pass --weights imagenet or a weights file for transfer learning")
    return classifier, backbone


def _make_classifier(inputs: BuildInputs, weights):
    """``(classifier, backbone)``: the selected backbone with ``weights`` and the recipe's head."""
    from codabench_kit.training.model import classifier_for

    component = inputs.selection.one("backbone")
    backbone = component.create(input_shape=inputs.dataset.image_shape, weights=weights,
                                **inputs.selection.options_for(component.name))
    return classifier_for(backbone, inputs.dataset.num_classes, inputs.recipe), backbone


def _float32_copy(inputs: BuildInputs, classifier):
    """The trained classifier rebuilt under the float32 policy, with its weights: the
    graph ``cbk package`` rebuilds, so the exported model reproduces the evaluated one."""
    copy, _ = _make_classifier(inputs, None)
    copy.set_weights(classifier.get_weights())
    return copy


def _clean(config: BuildConfig, inputs: BuildInputs, progress):
    from codabench_kit.cleaning.run import report_lines, run_cleaners

    outcome = run_cleaners(inputs.cleaners, inputs.dataset,
                           max_removed_share=config.max_removed_share)
    for line in report_lines(outcome.reports):
        progress(line)
    return inputs.dataset.subset(outcome.index), outcome


def _split(config: BuildConfig, inputs: BuildInputs, clean, progress
           ) -> tuple[tuple, HeldoutSets]:
    """Stratified split, and the held-out sets (clean and augmented test images, these
    corrupted by the held-out families)."""
    from codabench_kit.data.split import stratified_split
    from codabench_kit.evaluation.families import heldout_corruptions
    from codabench_kit.evaluation.heldout import HELDOUT_SEED, make_heldout_set, parse_policy

    policy = parse_policy(config.heldout_policy)
    parts = stratified_split(clean.labels, val_fraction=config.val_fraction,
                             test_fraction=config.test_fraction, seed=config.seed,
                             class_names=clean.class_names)
    progress(f"split: {len(parts[0])} train, {len(parts[1])} validation, {len(parts[2])} test")
    images, labels = clean.images[parts[2]], clean.labels[parts[2]]
    holdout = inputs.holdout
    for line in holdout.lines():
        progress(line)
    augmented = make_heldout_set(images, policy, seed=HELDOUT_SEED,
                                 names=heldout_corruptions(holdout.heldout))
    progress(f"held-out augmented test set ({policy}): {len(augmented.images)} images, "
             f"{policy.describe()}")
    heldout = HeldoutSets(clean=TestSet(images, labels),
                          augmented=TestSet(augmented.images, labels[augmented.source]),
                          corruptions=np.array(augmented.applied), seed=HELDOUT_SEED,
                          policy=str(policy), ops_per_image=policy.ops_per_image,
                          families=holdout.heldout, holdout=holdout.describe())
    return parts, heldout


def _train(config: BuildConfig, inputs: BuildInputs, clean, outcome, parts, classifier,
           backbone, progress) -> dict:
    """Train; the manifest's ``training`` section (but precision and device)."""
    from codabench_kit.backend import import_keras
    from codabench_kit.training.batches import TrainingBatches, one_hot
    from codabench_kit.training.trainer import TrainingPlan, train

    train_idx, val_idx, _ = parts
    augmenters = [c.create(seed=config.seed + i, **inputs.selection.options_for(c.name))
                  for i, c in enumerate(inputs.selection.of("augmenter"))]
    # Balancing (repeats, weights) applies to the training split only.
    rows = np.repeat(train_idx, outcome.repeats[train_idx])
    weights = np.repeat(outcome.weights[train_idx], outcome.repeats[train_idx])
    batches = TrainingBatches(clean.images[rows], clean.labels[rows], clean.num_classes,
                              batch_size=config.batch_size, augmenters=augmenters,
                              seed=config.seed,
                              sample_weights=None if np.all(weights == 1) else weights)
    validation = (clean.images[val_idx].astype("float32"),
                  one_hot(clean.labels[val_idx], clean.num_classes))
    plan = TrainingPlan(head_epochs=config.head_epochs, epochs=config.epochs,
                        patience=config.patience)
    started = time.perf_counter()
    history = train(classifier, backbone, batches, validation,
                    pretrained=inputs.weights is not None, plan=plan, recipe=inputs.recipe,
                    progress=progress)
    return {"weights": config.weights or "none", "pretrained": inputs.weights is not None,
            "plan": vars(plan), "batch_size": config.batch_size,
            "recipe": inputs.recipe.to_dict(), "history": history,
            "seconds": round(time.perf_counter() - started, 1),
            "backend": import_keras().backend.backend()}


def _evaluate(config: BuildConfig, inputs: BuildInputs, clean, classifier,
              heldout: HeldoutSets, progress):
    """Metrics and robustness of the model as it ships (with its TTA strategy)."""
    from codabench_kit.evaluation.shipped_model import evaluate_shipped_model
    from codabench_kit.training.model import inference_model

    component = inputs.selection.one("tta")
    strategy = component.create(**inputs.selection.options_for(component.name))
    model = inference_model(classifier, strategy)
    views = len(strategy(np.zeros((1, *clean.images.shape[1:]), dtype="float32")))
    return evaluate_shipped_model(model, classifier, heldout, clean.num_classes,
                                  tta=component.name, batch_size=config.batch_size,
                                  views=views, progress=progress)


def _save_and_package(config: BuildConfig, inputs: BuildInputs, manifest: RunManifest,
                      classifier, heldout: HeldoutSets, registry, progress) -> BuildResult:
    from codabench_kit.packaging.package import package_run
    from codabench_kit.packaging.run_record import save_run

    out_path = inputs.paths.zip
    with tempfile.TemporaryDirectory(prefix="cbk-run-") as scratch:
        run_dir = Path(inputs.keep_run) if inputs.keep_run else Path(scratch) / "run"
        run = save_run(run_dir, manifest, classifier, heldout)
        if inputs.keep_run:
            progress(f"run saved in {run_dir}")
        if not inputs.exports_here:
            progress(f"Keras does not run on TensorFlow here, and the SavedModel export needs "
                     f"it: on a machine with TensorFlow run "
                     f"`cbk package {run_dir} --out {out_path}`")
            return BuildResult(zip_path=None, manifest=manifest.to_dict(), run_path=run_dir)
        published = package_run(run, out_path, registry, validate=config.validate,
                                progress=progress)
    return BuildResult(zip_path=out_path, manifest=published,
                       run_path=run_dir if inputs.keep_run else None)


def _report(result: BuildResult, inputs: BuildInputs, outcome, heldout: HeldoutSets,
            classifier, progress) -> None:
    from codabench_kit.report.html import write_build_report

    report = write_build_report(result.zip_path, result.manifest, dataset=inputs.dataset,
                                outcome=outcome, heldout=heldout, classifier=classifier,
                                progress=progress)
    progress(f"report: {report}")
