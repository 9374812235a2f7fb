"""``cbk build``: clean -> split -> held-out augmented test set -> train -> evaluate -> package.

:func:`run_build` checks every input before doing any work (data, component names and
options, weights, output path), so a bad input costs nothing and leaves nothing behind.
"""

from __future__ import annotations

import platform
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from codabench_kit import __version__
from codabench_kit.errors import BuildError
from codabench_kit.packaging.bundle import ensure_absent
from codabench_kit.packaging.package import build_record_path_for, heldout_path_for
from codabench_kit.report.html import report_dir_for, report_path_for, write_build_report
from codabench_kit.report.chart import chart_path_for

Progress = Callable[[str], None]


@dataclass
class BuildConfig:
    data: str | None = None
    """Training file (.npz) or class-folder tree; ``None`` uses the built-in demo data."""
    plugins: list[str] = field(default_factory=list)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    file_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    out: str | None = None
    submissions_dir: str = "submissions"
    seed: int = 0
    weights: str | None = None
    epochs: int = 30
    head_epochs: int = 5
    patience: int = 8
    batch_size: int = 64
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    demo_per_class: int = 200
    max_removed_share: float = 0.5
    validate: bool = True
    keep_run: str | None = None
    """Also keep the trained run (weights, recipe, held-out sets) in this folder."""
    heldout_policy: str = "mixed:n=2"
    """How the held-out augmented test set is drawn (see :func:`codabench_kit.evaluation.heldout.parse_policy`)."""


@dataclass
class BuildResult:
    zip_path: Path | None
    """The published submission; ``None`` when this backend cannot export (see run_path)."""
    manifest: dict
    run_path: Path | None = None


def library_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version(), "codabench_kit": __version__}
    for name in ("numpy", "keras", "tensorflow", "tensorflow-cpu", "jax", "torch",
                 "scikit-learn"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def default_zip_name(backbone: str, now: datetime | None = None) -> str:
    now = now or datetime.now()
    return f"cbk-{backbone}-{now:%Y%m%d-%H%M%S}.zip"


@dataclass
class _Inputs:
    """Everything :func:`_check_inputs` resolved before any work."""

    selection: Any
    cleaners: list
    weights: str | None
    out_path: Path
    keep_run: str | None
    exports_here: bool
    dataset: Any
    recipe: Any


def run_build(config: BuildConfig, registry, progress: Progress = lambda s: None) -> BuildResult:
    """Run every stage; see the module docstring. Returns the published zip's path."""
    inputs = _check_inputs(config, registry)
    dataset = inputs.dataset
    progress(f"data: {len(dataset.labels)} images, {dataset.num_classes} classes from "
             f"{dataset.source}")
    started = time.perf_counter()

    from codabench_kit.backend import device_summary, import_keras

    keras = import_keras()
    keras.utils.set_random_seed(config.seed)
    device = device_summary()
    progress(f"backend: keras {keras.__version__} on {keras.backend.backend()}, device {device}")
    precision = use_precision(inputs.recipe, device)
    progress(f"recipe: {inputs.recipe.describe()}, {precision} precision")
    try:
        # The backbone first: fetching ImageNet weights is the likeliest early failure.
        classifier, backbone = _build_classifier(config, inputs, progress)
        clean, outcome = _clean(config, inputs, progress)
        parts, heldout = _split(config, clean, progress)
        history, plan, seconds = _train(config, inputs, clean, outcome, parts, classifier,
                                        backbone, progress)
    finally:
        use_precision(None, device)
    if precision != "float32":  # evaluate and ship what packaging rebuilds: float32
        classifier = _float32_copy(inputs, classifier)
    metrics = _evaluate(config, inputs, clean, classifier, heldout, progress)

    recipe = {
        "cbk_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": config.seed,
        "components": inputs.selection.describe(),
        "num_classes": clean.num_classes,
        "class_names": list(clean.class_names),
        "image_shape": list(dataset.image_shape),
        "data": {"source": dataset.source, "fingerprint": dataset.fingerprint(),
                 "images": int(len(dataset.labels)),
                 "class_counts": dataset.class_counts().tolist(),
                 "after_cleaning": int(len(clean.labels))},
        "cleaning": [r.to_dict() for r in outcome.reports],
        "split": {"train": int(len(parts[0])), "validation": int(len(parts[1])),
                  "test": int(len(parts[2])), "val_fraction": config.val_fraction,
                  "test_fraction": config.test_fraction},
        "heldout": {"seed": heldout["seed"], "policy": heldout["policy"],
                    "ops_per_image": heldout["ops_per_image"],
                    "images": int(len(heldout["images_augmented"]))},
        "training": {"weights": config.weights or "none", "pretrained": inputs.weights is not None,
                     "plan": vars(plan), "batch_size": config.batch_size,
                     "recipe": inputs.recipe.to_dict(), "precision": precision,
                     "history": history, "seconds": round(seconds, 1),
                     "backend": keras.backend.backend(), "device": device},
        "metrics": {k: v for k, v in metrics.items() if k != "robustness"},
        "robustness": metrics.get("robustness"),
        "libraries": library_versions(),
    }
    result = _save_and_package(config, inputs, recipe, classifier, heldout, registry, progress)
    if result.zip_path is not None:  # after the zip is published, like the robustness chart
        report = write_build_report(result.zip_path, result.manifest, dataset=dataset,
                                    outcome=outcome, heldout=heldout, classifier=classifier,
                                    progress=progress)
        progress(f"report: {report}")
    progress(f"build finished in {time.perf_counter() - started:.0f} s")
    return result


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


def _check_inputs(config: BuildConfig, registry) -> _Inputs:
    """Check every input and resolve the selection, paths and data; no work is done."""
    from codabench_kit.backend import choose_backend
    from codabench_kit.data import demo_dataset, load_dataset
    from codabench_kit.components.selection import select
    from codabench_kit.training.weights import normalize_weights

    from codabench_kit.training.recipe import Recipe, split_recipe_settings

    settings, recipe_settings = split_recipe_settings(config.settings)
    file_settings, recipe_file_settings = split_recipe_settings(config.file_settings)
    selection = select(registry, config.plugins, settings, file_settings)
    recipe = Recipe.from_settings(recipe_settings, recipe_file_settings)
    backbone = selection.one("backbone")
    weights = normalize_weights(config.weights)
    if weights is not None and not backbone.metadata.get("pretrained", False):
        raise BuildError(
            f"backbone {backbone.name!r} has no pretrained weights; expected "
            f"--weights none with it, received {config.weights!r}"
        )
    for name, value in (("--epochs", config.epochs), ("--head-epochs", config.head_epochs),
                        ("--patience", config.patience)):
        if value < 0:
            raise BuildError(f"expected {name} >= 0; received {value}")
    if config.batch_size < 1:
        raise BuildError(f"expected --batch-size >= 1; received {config.batch_size}")
    out_path = Path(config.out) if config.out else (
        Path(config.submissions_dir) / default_zip_name(backbone.name))
    if out_path.suffix != ".zip":
        raise BuildError(f"expected --out to end in .zip; received {str(out_path)!r}")
    ensure_absent(out_path)
    ensure_absent(heldout_path_for(out_path))
    ensure_absent(chart_path_for(out_path))
    ensure_absent(report_path_for(out_path))
    ensure_absent(report_dir_for(out_path))
    ensure_absent(build_record_path_for(out_path))
    ensure_absent(out_path.with_suffix(".log"))  # the CLI's log of this build
    exports_here = choose_backend() == "tensorflow"
    keep_run = config.keep_run
    if not exports_here and not keep_run:
        keep_run = str(out_path.with_suffix(".run"))
    if keep_run:
        ensure_absent(Path(keep_run))
    cleaners = [(c.name, c.create(**selection.options_for(c.name)))
                for c in selection.of("cleaner")]
    tta = selection.one("tta")
    tta.create(**selection.options_for(tta.name))  # a bad TTA option fails before training
    from codabench_kit.evaluation.heldout import parse_policy

    parse_policy(config.heldout_policy)  # a bad policy string fails before any work
    if config.data is None:
        dataset = demo_dataset(seed=config.seed, per_class=config.demo_per_class)
    else:
        dataset = load_dataset(config.data)
    return _Inputs(selection, cleaners, weights, out_path, keep_run, exports_here, dataset,
                   recipe)


def _build_classifier(config, inputs, progress):
    component = inputs.selection.one("backbone")
    classifier, backbone = _make_classifier(inputs, inputs.weights)
    if component.metadata.get("pretrained") and inputs.weights is None:
        progress(f"note: {component.name} starts from random weights (--weights none); "
                 f"pass --weights imagenet or a weights file for transfer learning")
    return classifier, backbone


def _make_classifier(inputs, weights):
    """``(classifier, backbone)``: the selected backbone with ``weights`` and the recipe's head."""
    from codabench_kit.training.model import classifier_for

    component = inputs.selection.one("backbone")
    backbone = component.create(input_shape=inputs.dataset.image_shape, weights=weights,
                                **inputs.selection.options_for(component.name))
    return classifier_for(backbone, inputs.dataset.num_classes, inputs.recipe), backbone


def _float32_copy(inputs, classifier):
    """The trained classifier rebuilt under the float32 policy, with its weights: the
    graph ``cbk package`` rebuilds, so the exported model reproduces the evaluated one."""
    copy, _ = _make_classifier(inputs, None)
    copy.set_weights(classifier.get_weights())
    return copy


def _clean(config, inputs, progress):
    from codabench_kit.cleaning.run import report_lines, run_cleaners

    outcome = run_cleaners(inputs.cleaners, inputs.dataset,
                           max_removed_share=config.max_removed_share)
    for line in report_lines(outcome.reports):
        progress(line)
    return inputs.dataset.subset(outcome.index), outcome


def _split(config, clean, progress):
    """Stratified split, and the held-out sets (clean and augmented test images)."""
    from codabench_kit.evaluation.heldout import HELDOUT_SEED, make_heldout_set, parse_policy
    from codabench_kit.data.split import stratified_split

    policy = parse_policy(config.heldout_policy)

    parts = stratified_split(clean.labels, val_fraction=config.val_fraction,
                             test_fraction=config.test_fraction, seed=config.seed,
                             class_names=clean.class_names)
    progress(f"split: {len(parts[0])} train, {len(parts[1])} validation, {len(parts[2])} test")
    test = parts[2]
    augmented = make_heldout_set(clean.images[test], policy, seed=HELDOUT_SEED)
    progress(f"held-out augmented test set ({policy}): {len(augmented.images)} images, "
             f"{policy.describe()}")
    heldout = {"images": clean.images[test], "labels": clean.labels[test],
               "images_augmented": augmented.images,
               "corruptions": np.array(augmented.applied),
               "seed": HELDOUT_SEED, "ops_per_image": policy.ops_per_image,
               "policy": str(policy)}
    if policy.copies != 1:
        heldout["labels_augmented"] = clean.labels[test][augmented.source]
    return parts, heldout


def _train(config, inputs, clean, outcome, parts, classifier, backbone, progress):
    from codabench_kit.training.batches import TrainingBatches, one_hot
    from codabench_kit.training.trainer import TrainingPlan, train

    selection = inputs.selection
    train_idx, val_idx, _ = parts
    augmenters = [c.create(seed=config.seed + i, **selection.options_for(c.name))
                  for i, c in enumerate(selection.of("augmenter"))]
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
    return history, plan, time.perf_counter() - started


def _evaluate(config, inputs, clean, classifier, heldout, progress):
    """Metrics of the model as it ships (with TTA); adds its probabilities to ``heldout``.

    Also the robustness report (``metrics["robustness"]``): accuracy per corruption and
    severity, reusing the predictions already made where the images are the same."""
    from codabench_kit.evaluation.metrics import heldout_metrics
    from codabench_kit.evaluation.heldout import CORRUPTIONS, SEVERITIES
    from codabench_kit.evaluation.robustness import CLEAN, MIXED, robustness_report, table_lines
    from codabench_kit.training.model import inference_model

    component = inputs.selection.one("tta")
    model = inference_model(classifier, component.create(
        **inputs.selection.options_for(component.name)))
    metrics = heldout_metrics(model, heldout, clean.num_classes, batch_size=config.batch_size,
                              progress=progress, label=f"evaluate ({component.name})")
    clean_m, aug_m = metrics["clean_test"], metrics["augmented_test"]
    progress(f"test accuracy: clean {clean_m['accuracy']:.3f}, augmented "
             f"({heldout['policy']}) {aug_m['accuracy']:.3f} "
             f"(macro F1 {clean_m['macro_f1']:.3f} / {aug_m['macro_f1']:.3f})")
    if component.name != "no-tta":
        metrics["tta_gain"] = tta_gain(component.name, metrics, heldout_metrics(
            classifier, dict(heldout), clean.num_classes, batch_size=config.batch_size,
            progress=progress, label="evaluate (no TTA)"))
        progress(tta_gain_line(metrics["tta_gain"]))

    # Robustness: the held-out sets' predictions are reused when they are the same images.
    known = {CLEAN: heldout["probabilities"].argmax(-1)}
    augmented = heldout["probabilities_augmented"].argmax(-1)
    n = len(heldout["labels"])
    if heldout["policy"] == MIXED:
        known[MIXED] = augmented
    elif heldout["policy"] == "corruptions":
        keys = [(name, s) for name in CORRUPTIONS for s in SEVERITIES]
        known.update({key: augmented[i * n:(i + 1) * n] for i, key in enumerate(keys)})

    def predict(images):
        return model.predict(images.astype("float32"), verbose=0,
                             batch_size=config.batch_size).argmax(-1)

    started = time.perf_counter()
    report = robustness_report(predict, heldout["images"], heldout["labels"], known=known,
                               seed=heldout["seed"], progress=progress)
    for line in table_lines(report):
        progress(line)
    progress(f"robustness report in {time.perf_counter() - started:.1f} s")
    metrics["robustness"] = report
    return metrics


def tta_gain(strategy: str, with_tta: dict, without: dict) -> dict:
    """Accuracy on the clean and augmented test sets with the TTA strategy and without
    (the classifier alone), and the difference."""
    gain = {"strategy": strategy}
    for split in ("clean_test", "augmented_test"):
        a, b = with_tta[split]["accuracy"], without[split]["accuracy"]
        gain[split] = {"with": a, "without": b, "gain": a - b}
    return gain


def tta_gain_line(gain: dict) -> str:
    """One line that says whether the TTA helped on the augmented test set."""
    aug, clean = gain["augmented_test"], gain["clean_test"]
    verdict = ("it helps" if aug["gain"] > 0 else "it hurts" if aug["gain"] < 0
               else "it does not help")
    return (f"TTA {gain['strategy']}: augmented test {aug['with']:.3f} against "
            f"{aug['without']:.3f} without ({aug['gain']:+.3f}), clean {clean['with']:.3f} "
            f"against {clean['without']:.3f} ({clean['gain']:+.3f}): {verdict}")


def _save_and_package(config, inputs, recipe, classifier, heldout, registry, progress):
    from codabench_kit.packaging.package import package_run
    from codabench_kit.packaging.run_record import save_run

    arrays = {k: v for k, v in heldout.items() if isinstance(v, np.ndarray)}
    with tempfile.TemporaryDirectory(prefix="cbk-run-") as scratch:
        run_dir = Path(inputs.keep_run) if inputs.keep_run else Path(scratch) / "run"
        run = save_run(run_dir, recipe, classifier, arrays)
        if inputs.keep_run:
            progress(f"run saved in {run_dir}")
        if not inputs.exports_here:
            progress(f"Keras does not run on TensorFlow here, and the SavedModel export needs "
                     f"it: on a machine with TensorFlow run "
                     f"`cbk package {run_dir} --out {inputs.out_path}`")
            return BuildResult(zip_path=None, manifest=recipe, run_path=run_dir)
        manifest = package_run(run, inputs.out_path, registry, validate=config.validate,
                               progress=progress)
    return BuildResult(zip_path=inputs.out_path, manifest=manifest,
                       run_path=run_dir if inputs.keep_run else None)
