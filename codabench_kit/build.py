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
from codabench_kit.packaging.package import heldout_path_for

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
    epochs: int = 20
    head_epochs: int = 5
    patience: int = 4
    batch_size: int = 64
    dropout: float = 0.2
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    demo_per_class: int = 200
    max_removed_share: float = 0.5
    validate: bool = True
    keep_run: str | None = None
    """Also keep the trained run (weights, recipe, held-out sets) in this folder."""


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


def run_build(config: BuildConfig, registry, progress: Progress = lambda s: None) -> BuildResult:
    from codabench_kit.data import demo_dataset, load_dataset
    from codabench_kit.options import select
    from codabench_kit.training.weights import normalize_weights

    # ---- preflight: every input is checked before any work -------------------------
    selection = select(registry, config.plugins, config.settings, config.file_settings)
    backbone_component = selection.one("backbone")
    weights = normalize_weights(config.weights)
    if weights is not None and not backbone_component.metadata.get("pretrained", False):
        raise BuildError(
            f"backbone {backbone_component.name!r} has no pretrained weights; expected "
            f"--weights none with it, received {config.weights!r}"
        )
    for name, value in (("--epochs", config.epochs), ("--head-epochs", config.head_epochs),
                        ("--patience", config.patience)):
        if value < 0:
            raise BuildError(f"expected {name} >= 0; received {value}")
    if config.batch_size < 1:
        raise BuildError(f"expected --batch-size >= 1; received {config.batch_size}")
    out_path = Path(config.out) if config.out else (
        Path(config.submissions_dir) / default_zip_name(backbone_component.name))
    if out_path.suffix != ".zip":
        raise BuildError(f"expected --out to end in .zip; received {str(out_path)!r}")
    ensure_absent(out_path)
    ensure_absent(heldout_path_for(out_path))
    from codabench_kit.backend import choose_backend

    exports_here = choose_backend() == "tensorflow"
    keep_run = config.keep_run
    if not exports_here and not keep_run:
        keep_run = str(out_path.with_suffix(".run"))
    if keep_run:
        ensure_absent(Path(keep_run))
    if config.data is None:
        dataset = demo_dataset(seed=config.seed, per_class=config.demo_per_class)
    else:
        dataset = load_dataset(config.data)
    progress(f"data: {len(dataset.labels)} images, {dataset.num_classes} classes from "
             f"{dataset.source}")

    started = time.perf_counter()
    # ---- backbone first: fetching ImageNet weights is the likeliest early failure ----
    from codabench_kit.backend import device_summary, import_keras
    from codabench_kit.training.model import assemble_classifier

    keras = import_keras()
    keras.utils.set_random_seed(config.seed)
    progress(f"backend: keras {keras.__version__} on {keras.backend.backend()}, "
             f"device {device_summary()}")
    backbone = backbone_component.create(input_shape=dataset.image_shape, weights=weights,
                                         **selection.options_for(backbone_component.name))
    if backbone_component.metadata.get("pretrained") and weights is None:
        progress(f"note: {backbone_component.name} starts from random weights (--weights none); "
                 f"pass --weights imagenet or a weights file for transfer learning")
    classifier = assemble_classifier(backbone, dataset.num_classes, dropout=config.dropout)

    # ---- clean -------------------------------------------------------------------------
    from codabench_kit.cleaning import run_cleaners

    cleaners = [(c.name, c.create(**selection.options_for(c.name)))
                for c in selection.of("cleaner")]
    kept, clean_reports = run_cleaners(cleaners, dataset,
                                       max_removed_share=config.max_removed_share)
    for report in clean_reports:
        detail = ", ".join(f"{n} {why}" for why, n in report.reasons.items()) or "nothing"
        progress(f"clean {report.name}: removed {report.removed} of {report.seen} ({detail})")
    clean = dataset.subset(kept)

    # ---- split and the held-out augmented test set ------------------------------------
    from codabench_kit.heldout import HELDOUT_SEED, make_augmented_test_set
    from codabench_kit.split import stratified_split

    train_idx, val_idx, test_idx = stratified_split(
        clean.labels, val_fraction=config.val_fraction, test_fraction=config.test_fraction,
        seed=config.seed, class_names=clean.class_names)
    progress(f"split: {len(train_idx)} train, {len(val_idx)} validation, {len(test_idx)} test")
    test_images, test_labels = clean.images[test_idx], clean.labels[test_idx]
    augmented_images, corruptions = make_augmented_test_set(test_images, seed=HELDOUT_SEED)
    progress(f"held-out augmented test set: {len(augmented_images)} images, 2 corruptions each")

    # ---- train ------------------------------------------------------------------------
    from codabench_kit.training.batches import TrainingBatches, one_hot
    from codabench_kit.training.trainer import TrainingPlan, train

    augmenters = [c.create(seed=config.seed + i, **selection.options_for(c.name))
                  for i, c in enumerate(selection.of("augmenter"))]
    batches = TrainingBatches(clean.images[train_idx], clean.labels[train_idx],
                              clean.num_classes, batch_size=config.batch_size,
                              augmenters=augmenters, seed=config.seed)
    validation = (clean.images[val_idx].astype("float32"),
                  one_hot(clean.labels[val_idx], clean.num_classes))
    plan = TrainingPlan(head_epochs=config.head_epochs, epochs=config.epochs,
                        patience=config.patience)
    pretrained = weights is not None
    train_started = time.perf_counter()
    history = train(classifier, backbone, batches, validation, pretrained=pretrained,
                    plan=plan, progress=progress)
    train_seconds = time.perf_counter() - train_started

    # ---- evaluate the model as it will ship (with TTA) ------------------------------
    from codabench_kit.evaluation import classification_metrics
    from codabench_kit.training.model import inference_model

    tta_component = selection.one("tta")
    model = inference_model(classifier, tta_component.create(
        **selection.options_for(tta_component.name)))
    probabilities = model.predict(test_images.astype("float32"), verbose=0,
                                  batch_size=config.batch_size)
    probabilities_aug = model.predict(augmented_images.astype("float32"), verbose=0,
                                      batch_size=config.batch_size)
    metrics = {
        "clean_test": classification_metrics(test_labels, probabilities.argmax(-1),
                                             clean.num_classes),
        "augmented_test": classification_metrics(test_labels, probabilities_aug.argmax(-1),
                                                 clean.num_classes),
    }
    progress(f"test accuracy: clean {metrics['clean_test']['accuracy']:.3f}, "
             f"augmented {metrics['augmented_test']['accuracy']:.3f} "
             f"(macro F1 {metrics['clean_test']['macro_f1']:.3f} / "
             f"{metrics['augmented_test']['macro_f1']:.3f})")

    recipe = {
        "cbk_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": config.seed,
        "components": selection.describe(),
        "num_classes": clean.num_classes,
        "class_names": list(clean.class_names),
        "image_shape": list(dataset.image_shape),
        "data": {"source": dataset.source, "fingerprint": dataset.fingerprint(),
                 "images": int(len(dataset.labels)),
                 "class_counts": dataset.class_counts().tolist(),
                 "after_cleaning": int(len(clean.labels))},
        "cleaning": [r.to_dict() for r in clean_reports],
        "split": {"train": int(len(train_idx)), "validation": int(len(val_idx)),
                  "test": int(len(test_idx)), "val_fraction": config.val_fraction,
                  "test_fraction": config.test_fraction},
        "heldout": {"seed": HELDOUT_SEED, "ops_per_image": 2},
        "training": {"weights": config.weights or "none", "pretrained": pretrained,
                     "plan": vars(plan), "batch_size": config.batch_size,
                     "dropout": config.dropout, "history": history,
                     "seconds": round(train_seconds, 1),
                     "backend": keras.backend.backend(), "device": device_summary()},
        "metrics": metrics,
        "libraries": library_versions(),
    }
    heldout = {"images": test_images, "labels": test_labels,
               "images_augmented": augmented_images,
               "corruptions": np.array(corruptions),
               "probabilities": probabilities.astype("float32"),
               "probabilities_augmented": probabilities_aug.astype("float32")}

    # ---- save the run, then package it ------------------------------------------------
    from codabench_kit.packaging.package import package_run
    from codabench_kit.run_record import save_run

    with tempfile.TemporaryDirectory(prefix="cbk-run-") as scratch:
        run_dir = Path(keep_run) if keep_run else Path(scratch) / "run"
        run = save_run(run_dir, recipe, classifier, heldout)
        if keep_run:
            progress(f"run saved in {run_dir}")
        if not exports_here:
            progress(f"Keras runs on {keras.backend.backend()}, and the SavedModel export needs "
                     f"TensorFlow: on a machine with TensorFlow run "
                     f"`cbk package {run_dir} --out {out_path}`")
            progress(f"build finished in {time.perf_counter() - started:.0f} s")
            return BuildResult(zip_path=None, manifest=recipe, run_path=run_dir)
        manifest = package_run(run, out_path, registry, validate=config.validate,
                               progress=progress)
    progress(f"build finished in {time.perf_counter() - started:.0f} s")
    return BuildResult(zip_path=out_path, manifest=manifest, run_path=run_dir if keep_run else None)
