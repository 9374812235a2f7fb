"""``cbk build`` and ``cbk init``: a submission from a training file, and the cbk.toml
that holds every build option."""

from __future__ import annotations

from pathlib import Path

import click

from codabench_kit.build.config import DEFAULTS
from codabench_kit.cli.shared import (batch_size_option, core_errors, echo_progress,
                                      load_registry, max_removed_option, plugins_option,
                                      seed_option, set_option)
from codabench_kit.errors import CbkError


def _check_policy(ctx, param, value):
    from codabench_kit.evaluation.heldout import PolicyError, parse_policy

    try:
        return str(parse_policy(value))
    except PolicyError as exc:
        raise click.BadParameter(str(exc), param_hint="'--heldout-policy'") from None


def _check_families(ctx, param, value):
    from codabench_kit.evaluation.families import check_families

    try:
        return list(check_families(value or ()))
    except CbkError as exc:
        raise click.BadParameter(str(exc), param_hint="'--holdout-family'") from None


@click.command()
@click.option("--data", type=click.Path(), default=None,
              help="Training .npz (AN2DL layout) or a folder with one subfolder per class. "
                   "Default: the built-in demo data.")
@plugins_option("Comma-separated components, e.g. effnet,augmix,flip-tta (see `cbk plugins`).")
@set_option("A component option, e.g. --set effnet.variant=s, or a recipe option: "
            "head.dense, head.dropout, head.norm, head.l2, train.optimizer, "
            "train.learning_rate, train.finetune_learning_rate, train.weight_decay, "
            "train.schedule, train.label_smoothing, train.loss, train.focal_gamma, "
            "train.ema, train.unfreeze, train.unfreeze_stages, train.mixed_precision "
            "(see codabench_kit.training.recipe). Repeatable.")
@click.option("--config", type=click.Path(), default=None,
              help="A cbk.toml (`cbk init` writes one) with `plugins = [...]`, [build] for "
                   "these options, [head] and [train] for the recipe, and one [component] "
                   "table each. Default: ./cbk.toml if present. Command-line values win.")
@click.option("--out", type=click.Path(), default=DEFAULTS.out,
              help="Zip to write (never overwritten). Default: submissions/cbk-<backbone>-<time>.zip")
@seed_option(DEFAULTS.seed)
@click.option("--weights", default=DEFAULTS.weights, show_default=True,
              help="Backbone weights: imagenet, none, or a weights file path.")
@click.option("--epochs", type=click.IntRange(min=0), default=DEFAULTS.epochs,
              show_default=True, help="Most epochs of fine-tuning (or of training from scratch).")
@click.option("--head-epochs", type=click.IntRange(min=0), default=DEFAULTS.head_epochs,
              show_default=True,
              help="Most epochs of head-only training on a frozen pretrained backbone.")
@click.option("--patience", type=click.IntRange(min=0), default=DEFAULTS.patience,
              show_default=True, help="Early stopping: epochs without validation gain.")
@batch_size_option(DEFAULTS.batch_size)
@click.option("--demo-size", type=click.IntRange(min=3), default=DEFAULTS.demo_per_class,
              show_default=True, help="Images per class of the built-in demo data.")
@click.option("--keep-run", type=click.Path(), default=DEFAULTS.keep_run,
              help="Also keep the trained run (weights, recipe, held-out sets) in this folder.")
@max_removed_option(DEFAULTS.max_removed_share,
                    "Stop if one cleaner would remove more than this share of the data.")
@click.option("--no-validate", is_flag=True, default=not DEFAULTS.validate,
              help="Skip validating the zip before publishing.")
@click.option("--heldout-policy", default=DEFAULTS.heldout_policy, show_default=True,
              callback=_check_policy,
              help="How the held-out augmented test set is corrupted: mixed:n=N (N random "
                   "corruptions per image at random severities), ops:NAME,NAME[@SEVERITY] "
                   "(those, in order; SEVERITY 1-5, random if left out) or corruptions "
                   "(every corruption at every severity: 95 copies of the test split).")
@click.option("--holdout-family", "holdout_families", multiple=True, callback=_check_families,
              help="A corruption family to keep out of training and test on: noise, blur, "
                   "digital, color, microscopy or geometry (augmenters that simulate it "
                   "drop it, or are left out). Repeatable or comma-separated. Default: "
                   "every family no augmenter simulates.")
@core_errors
def build(data, plugin_names, assignments, config, out, seed, weights, epochs, head_epochs,
          patience, batch_size, demo_size, keep_run, max_removed, no_validate, heldout_policy,
          holdout_families):
    """Clean, split, train, evaluate and package a submission zip.

    Prints the zip's path as the last line on stdout; progress goes to stderr. Beside the
    zip, <name>.heldout.npz keeps the test sets and <name>.robustness.png charts the
    accuracy per corruption and severity (also in the manifest's "robustness").

    \b
    Examples:
      cbk build
      cbk build --plugins effnet,augmix --data training_set.npz --weights imagenet
      cbk build --plugins mobilenet --set mobilenet.variant=v3small --epochs 10
      cbk build --heldout-policy ops:blur,jpeg@3
      cbk build --holdout-family noise --holdout-family blur
      cbk build --set train.optimizer=lion --set train.learning_rate=3e-4 --set head.dense=256
    """
    from codabench_kit.build import BuildConfig, run_build
    from codabench_kit.cli.config_file import BUILD_TABLE, apply_build_table
    from codabench_kit.components.selection import component_choices
    from codabench_kit.packaging.paths import SubmissionPaths

    names, settings, file_settings = component_choices(plugin_names, assignments, config)
    ctx = click.get_current_context()
    table = file_settings.pop(BUILD_TABLE, None)
    if table:  # [build] in cbk.toml: where the command line left the default
        apply_build_table(ctx, table, str(config or "cbk.toml"))
    p = ctx.params  # the arguments, with the [build] table applied
    build_config = BuildConfig(
        data=p["data"], plugins=names, settings=settings, file_settings=file_settings,
        out=p["out"], seed=p["seed"], weights=p["weights"], epochs=p["epochs"],
        head_epochs=p["head_epochs"], patience=p["patience"], batch_size=p["batch_size"],
        demo_per_class=p["demo_size"], validate=not p["no_validate"], keep_run=p["keep_run"],
        max_removed_share=p["max_removed"], heldout_policy=p["heldout_policy"],
        holdout_families=p["holdout_families"])
    result = run_build(build_config, load_registry(), progress=echo_progress)
    if result.zip_path is not None:
        _write_log(SubmissionPaths(result.zip_path).log)
    click.echo(result.zip_path if result.zip_path is not None else result.run_path)


def _write_log(path: Path) -> None:
    """The build's progress lines, with their times, in ``path`` beside the zip (never
    overwritten; the build refused an existing one up front). A failed build writes no
    log: it writes nothing, and its error is the last line on the screen."""
    from codabench_kit.packaging.bundle import write_new_file

    text = echo_progress.current().log_text()
    try:
        write_new_file(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))
    except (CbkError, OSError) as exc:
        click.echo(f"warning: the build's log was not written: {exc}", err=True)
        return
    click.echo(f"log: {path}", err=True)


@click.command()
@click.option("--out", type=click.Path(), default="cbk.toml", show_default=True,
              help="File to write (never overwritten).")
@core_errors
def init(out):
    """Write a commented starter cbk.toml with every option of `cbk build` at its default.

    `cbk build` reads ./cbk.toml (or --config FILE); the command line wins over it.

    \b
    Examples:
      cbk init
      cbk init --out configs/effnet.toml && cbk build --config configs/effnet.toml
    """
    from codabench_kit.cli.config_file import starter_config, write_starter

    path = write_starter(Path(out), starter_config(build, load_registry()))
    click.echo(f"wrote {path}: uncomment what you change, then run `cbk build`")
