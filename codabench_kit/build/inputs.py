"""Everything ``cbk build`` needs, checked and resolved before any work is done, so a bad
input costs nothing and leaves nothing behind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from codabench_kit.build.config import BuildConfig
from codabench_kit.errors import BuildError
from codabench_kit.packaging.paths import SubmissionPaths


@dataclass
class BuildInputs:
    """What :func:`check_inputs` resolved."""

    selection: Any
    """The components (codabench_kit.components.selection.Selection)."""
    cleaners: list
    """``(name, cleaner)`` pairs, built."""
    weights: str | None
    """The backbone's weights: ``None``, ``"imagenet"`` or a file path."""
    paths: SubmissionPaths
    keep_run: str | None
    exports_here: bool
    """Whether Keras runs on TensorFlow here, which the SavedModel export needs."""
    dataset: Any
    recipe: Any
    """The head and training recipe (codabench_kit.training.recipe.Recipe)."""
    holdout: Any = None
    """The held-out corruption families (codabench_kit.evaluation.families.HoldoutPlan)."""


def default_zip_name(backbone: str, now: datetime | None = None) -> str:
    now = now or datetime.now()
    return f"cbk-{backbone}-{now:%Y%m%d-%H%M%S}.zip"


def check_inputs(config: BuildConfig, registry) -> BuildInputs:
    """Check every input and resolve the selection, paths and data; no work is done."""
    from codabench_kit.backend import choose_backend
    from codabench_kit.components.selection import select
    from codabench_kit.evaluation.families import plan_holdout
    from codabench_kit.evaluation.heldout import parse_policy
    from codabench_kit.training.recipe import Recipe, split_recipe_settings

    settings, recipe_settings = split_recipe_settings(config.settings)
    file_settings, recipe_file_settings = split_recipe_settings(config.file_settings)
    selection = select(registry, config.plugins, settings, file_settings)
    holdout = plan_holdout(selection, config.holdout_families)
    recipe = Recipe.from_settings(recipe_settings, recipe_file_settings,
                                  backbone=selection.one("backbone"))
    weights = _check_weights(config, selection.one("backbone"))
    _check_numbers(config)
    paths = _check_paths(config, selection.one("backbone").name)
    exports_here = choose_backend() == "tensorflow"
    keep_run = config.keep_run or (None if exports_here else str(paths.run))
    if keep_run:
        from codabench_kit.packaging.bundle import ensure_absent

        ensure_absent(Path(keep_run))
    cleaners = [(c.name, c.create(**selection.options_for(c.name)))
                for c in selection.of("cleaner")]
    tta = selection.one("tta")
    tta.create(**selection.options_for(tta.name))  # a bad TTA option fails before training
    parse_policy(config.heldout_policy)  # a bad policy string fails before any work
    return BuildInputs(selection, cleaners, weights, paths, keep_run, exports_here,
                       _load_data(config), recipe, holdout)


def _check_weights(config: BuildConfig, backbone) -> str | None:
    from codabench_kit.training.weights import normalize_weights

    weights = normalize_weights(config.weights)
    if weights is not None and not backbone.metadata.get("pretrained", False):
        raise BuildError(
            f"backbone {backbone.name!r} has no pretrained weights; expected "
            f"--weights none with it, received {config.weights!r}"
        )
    return weights


def _check_numbers(config: BuildConfig) -> None:
    for name, value in (("--epochs", config.epochs), ("--head-epochs", config.head_epochs),
                        ("--patience", config.patience)):
        if value < 0:
            raise BuildError(f"expected {name} >= 0; received {value}")
    if config.batch_size < 1:
        raise BuildError(f"expected --batch-size >= 1; received {config.batch_size}")


def _check_paths(config: BuildConfig, backbone: str) -> SubmissionPaths:
    out_path = Path(config.out) if config.out else (
        Path(config.submissions_dir) / default_zip_name(backbone))
    if out_path.suffix != ".zip":
        raise BuildError(f"expected --out to end in .zip; received {str(out_path)!r}")
    paths = SubmissionPaths(out_path)
    paths.ensure_absent()
    return paths


def _load_data(config: BuildConfig):
    from codabench_kit.data import demo_dataset, load_dataset

    if config.data is None:
        return demo_dataset(seed=config.seed, per_class=config.demo_per_class)
    return load_dataset(config.data)
