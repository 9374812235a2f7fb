"""The ``cbk`` command line. Core errors (:class:`CbkError`) become click errors here.

Imports of TensorFlow/Keras happen inside command bodies, so ``cbk --help`` and
``cbk plugins`` answer at once. Plugins are loaded in :func:`main`, not at import.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from codabench_kit import __version__
from codabench_kit.errors import CbkError, OptionError


class _Progress:
    """The running command's :class:`~codabench_kit.progress.TerminalProgress` (set up by
    ``cbk``'s ``--quiet``/``--verbose``), callable with a line and with a ``bar``."""

    @staticmethod
    def current():
        from codabench_kit.progress import TerminalProgress

        context = click.get_current_context(silent=True)
        root = context.find_root() if context is not None else None
        if root is None:
            return TerminalProgress()
        return root.meta.setdefault("cbk.progress", TerminalProgress())

    def __call__(self, line: str) -> None:
        self.current()(line)

    def bar(self, label: str, total: int):
        return self.current().bar(label, total)


echo_progress = _Progress()


def core_errors(command):
    """Turn the project's own exceptions into click errors (exit code 1, one line)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except OptionError as exc:
            raise click.UsageError(str(exc)) from exc
        except CbkError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


def plugin_manager():
    """The plugin manager :func:`main` loaded (click's context object), so plugins are
    loaded once per run; a new one when ``cli`` is invoked without ``main`` (tests)."""
    from codabench_kit.components.plugin_manager import PluginManager, get_plugin_manager

    context = click.get_current_context(silent=True)
    loaded = context.find_object(PluginManager) if context is not None else None
    return loaded if loaded is not None else get_plugin_manager()


def load_registry():
    from codabench_kit.components.registry import Registry

    return Registry.from_plugin_manager(plugin_manager())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cbk")
@click.option("-q", "--quiet", is_flag=True, help="Print results and errors only: no "
              "progress lines or bars (a build's log still has them).")
@click.option("-v", "--verbose", is_flag=True, help="Also print TensorFlow's own messages "
              "(hidden by default).")
@click.pass_context
def cli(ctx, quiet, verbose):
    """codabench-kit: from a competition's training file to a Codabench submission
    that is proven to run.

    \b
    Examples:
      cbk build                                  # offline demo -> submissions/*.zip
      cbk build --plugins mobilenet,augmix --data training_set.npz --weights imagenet
      cbk validate submissions/cbk-cnn-20261122-101500.zip
      cbk plugins --json
      cbk -q build --config cbk.toml                # the zip's path only
    """
    import os

    from codabench_kit.progress import TerminalProgress

    ctx.meta["cbk.progress"] = TerminalProgress(quiet=quiet)
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:  # TensorFlow's C++ and Python chatter (tracing warnings, oneDNN notes)
        import logging

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if quiet else "2")
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


@cli.command()
@click.option("--data", type=click.Path(), default=None,
              help="Training .npz (AN2DL layout) or a folder with one subfolder per class. "
                   "Default: the built-in demo data.")
@click.option("--plugins", "plugin_names", default="",
              help="Comma-separated components, e.g. effnet,augmix,flip-tta (see `cbk plugins`).")
@click.option("--set", "assignments", multiple=True, metavar="NAME.KEY=VALUE",
              help="A component option, e.g. --set effnet.variant=s, or a recipe option: "
                   "head.dense, head.dropout, head.norm, head.l2, train.optimizer, "
                   "train.learning_rate, train.finetune_learning_rate, train.weight_decay, "
                   "train.schedule, train.label_smoothing, train.loss, train.focal_gamma, "
                   "train.ema, train.unfreeze, train.unfreeze_stages, train.mixed_precision "
                   "(see codabench_kit.training.recipe). Repeatable.")
@click.option("--config", type=click.Path(), default=None,
              help="A cbk.toml (`cbk init` writes one) with `plugins = [...]`, [build] for "
                   "these options, [head] and [train] for the recipe, and one [component] "
                   "table each. Default: ./cbk.toml if present. Command-line values win.")
@click.option("--out", type=click.Path(), default=None,
              help="Zip to write (never overwritten). Default: submissions/cbk-<backbone>-<time>.zip")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--weights", default="none", show_default=True,
              help="Backbone weights: imagenet, none, or a weights file path.")
@click.option("--epochs", type=click.IntRange(min=0), default=30, show_default=True,
              help="Most epochs of fine-tuning (or of training from scratch).")
@click.option("--head-epochs", type=click.IntRange(min=0), default=5, show_default=True,
              help="Most epochs of head-only training on a frozen pretrained backbone.")
@click.option("--patience", type=click.IntRange(min=0), default=8, show_default=True,
              help="Early stopping: epochs without validation gain.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--demo-size", type=click.IntRange(min=3), default=200, show_default=True,
              help="Images per class of the built-in demo data.")
@click.option("--keep-run", type=click.Path(), default=None,
              help="Also keep the trained run (weights, recipe, held-out sets) in this folder.")
@click.option("--max-removed", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Stop if one cleaner would remove more than this share of the data.")
@click.option("--no-validate", is_flag=True, help="Skip validating the zip before publishing.")
@click.option("--heldout-policy", default="mixed:n=2", show_default=True,
              callback=lambda ctx, param, value: _check_policy(value),
              help="How the held-out augmented test set is corrupted: mixed:n=N (N random "
                   "corruptions per image at random severities), ops:NAME,NAME[@SEVERITY] "
                   "(those, in order; SEVERITY 1-5, random if left out) or corruptions "
                   "(every corruption at every severity: 40 copies of the test split).")
@core_errors
def build(data, plugin_names, assignments, config, out, seed, weights, epochs, head_epochs,
          patience, batch_size, demo_size, keep_run, max_removed, no_validate, heldout_policy):
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
      cbk build --set train.optimizer=lion --set train.learning_rate=3e-4 --set head.dense=256
    """
    from codabench_kit.build.run import BuildConfig, run_build
    from codabench_kit.cli.config_file import BUILD_TABLE, apply_build_table

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
        max_removed_share=p["max_removed"], heldout_policy=p["heldout_policy"])
    result = run_build(build_config, load_registry(), progress=echo_progress)
    if result.zip_path is not None:
        _write_log(Path(result.zip_path).with_suffix(".log"))
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


def _check_policy(value):
    from codabench_kit.evaluation.heldout import PolicyError, parse_policy

    try:
        return str(parse_policy(value))
    except PolicyError as exc:
        raise click.BadParameter(str(exc), param_hint="'--heldout-policy'") from None


@cli.command()
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


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell):
    """Print the shell completion script for cbk (commands, options, choices).

    \b
    Examples:
      cbk completion bash >> ~/.bashrc
      cbk completion zsh > ~/.zfunc/_cbk
      cbk completion fish > ~/.config/fish/completions/cbk.fish
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)(cli, {}, "cbk", "_CBK_COMPLETE")
    click.echo(completer.source())


def component_choices(plugin_names, assignments, config):
    """``--plugins``, ``--set`` and the config file (``--config`` or ./cbk.toml) as
    ``(names, settings, file_settings)``; command-line names win over the file's."""
    from codabench_kit.components.selection import parse_set, read_config, split_names

    file_config = {"plugins": [], "options": {}}
    config_path = config or ("cbk.toml" if Path("cbk.toml").is_file() else None)
    if config_path:
        file_config = read_config(config_path)
    names = split_names(plugin_names) or file_config["plugins"]
    return names, parse_set(assignments), file_config["options"]


@cli.command()
@click.option("--data", type=click.Path(), required=True,
              help="Training .npz (AN2DL layout) or a folder with one subfolder per class.")
@click.option("--out", type=click.Path(), default=None,
              help="Cleaned .npz to write (never overwritten): the input's keys, row-selected, "
                   "plus `index`, the input rows kept. Required unless --dry-run.")
@click.option("--plugins", "plugin_names", default="",
              help="Comma-separated cleaners, in order. Default: "
                   "contaminants,conflicts,dedupe,phash.")
@click.option("--set", "assignments", multiple=True, metavar="NAME.KEY=VALUE",
              help="A cleaner option, e.g. --set phash.max_distance=6. Repeatable.")
@click.option("--config", type=click.Path(), default=None,
              help="A cbk.toml (default: ./cbk.toml if present); only its cleaners are used.")
@click.option("--picture", type=click.Path(), default=None,
              help="PNG of the removed images. Default: OUT with .removed.png "
                   "(with --dry-run, only when given).")
@click.option("--max-removed", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Stop, writing nothing, if one cleaner would remove more than this share.")
@click.option("--dry-run", is_flag=True, help="Report what would be removed; write no .npz.")
@core_errors
def clean(data, out, plugin_names, assignments, config, picture, max_removed, dry_run):
    """Run the cleaners alone: report what each removes and why, draw the removed images,
    and write the cleaned data.

    \b
    Examples:
      cbk clean --data training_set.npz --out clean.npz
      cbk clean --data training_set.npz --dry-run --picture removed.png
      cbk clean --data training_set.npz --out clean.npz --plugins contaminants,phash,balance \\
                --set balance.method=oversample
    """
    from codabench_kit.cleaning.run import report_table, run_cleaners
    from codabench_kit.cleaning.cleaned_file import cleaned_arrays, write_npz_atomically
    from codabench_kit.data import load_dataset
    from codabench_kit.components.selection import select
    from codabench_kit.packaging.bundle import ensure_absent, write_new_file
    from codabench_kit.report.removed_grid import removed_grid

    names, settings, file_settings = component_choices(plugin_names, assignments, config)
    registry = load_registry()
    others = [n for n in names if n in registry and registry.get(n).kind != "cleaner"]
    if others:
        raise OptionError(f"cbk clean runs cleaners only; received {', '.join(others)} "
                           f"({', '.join(registry.get(n).kind for n in others)})")
    file_settings = {k: v for k, v in file_settings.items()
                     if k in registry and registry.get(k).kind == "cleaner"}
    selection = select(registry, names, settings, file_settings)
    if out is None and not dry_run:
        raise click.UsageError("expected --out OUT.npz (or --dry-run); received neither")
    out_path = Path(out) if out else None
    if out_path is not None and out_path.suffix != ".npz":
        raise click.BadParameter(f"expected a path ending in .npz; received {out!r}",
                                 param_hint="--out")
    picture_path = Path(picture) if picture else (
        None if dry_run else out_path.with_suffix(".removed.png"))
    for path in (out_path if not dry_run else None, picture_path):
        if path is not None:
            ensure_absent(path)
    cleaners = [(c.name, c.create(**selection.options_for(c.name)))
                for c in selection.of("cleaner")]
    dataset = load_dataset(data)
    echo_progress(f"cleaning {len(dataset.labels)} images with "
                  f"{', '.join(name for name, _ in cleaners)}")
    outcome = run_cleaners(cleaners, dataset, max_removed_share=max_removed)
    for line in report_table(outcome, len(dataset.labels)):
        click.echo(line)
    if picture_path is not None:
        write_new_file(picture_path, lambda partial: removed_grid(
            dataset.images, dataset.labels, dataset.class_names, outcome.removed, partial))
        click.echo(f"picture of the removed images: {picture_path}")
    if not dry_run:
        write_npz_atomically(out_path, cleaned_arrays(data, dataset, outcome))
        click.echo(f"cleaned data: {out_path}")


@cli.command()
@click.option("--data", type=click.Path(), required=True,
              help="Labelled .npz (AN2DL layout) or a folder with one subfolder per class.")
@click.option("--out", type=click.Path(), required=True,
              help="The augmented .npz to write (never overwritten).")
@click.option("--plugins", "plugin_names", required=True,
              help="Augmenters to apply, in order, e.g. corrupt or flips,color.")
@click.option("--set", "assignments", multiple=True, metavar="NAME.KEY=VALUE",
              help="An augmenter option, e.g. --set corrupt.severity=3. Repeatable.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@core_errors
def augment(data, out, plugin_names, assignments, seed, batch_size):
    """Apply augmenters to a labelled set and write the result: to look at them, or to
    test a submission on corrupted images.

    \b
    Examples:
      cbk augment --data mini.npz --out mini-s3.npz --plugins corrupt \\
                  --set corrupt.severity=3 --set corrupt.probability=1
      cbk validate submissions/cbk-mobilenet.zip --data mini-s3.npz
    """
    from codabench_kit.training.augment_file import augmented_arrays
    from codabench_kit.cleaning.cleaned_file import write_npz_atomically
    from codabench_kit.data import load_dataset
    from codabench_kit.components.selection import parse_set, select, split_names
    from codabench_kit.packaging.bundle import ensure_absent

    registry = load_registry()
    names = split_names(plugin_names)
    if not names:
        raise click.BadParameter(f"expected one or more augmenter names; received "
                                 f"{plugin_names!r}", param_hint="--plugins")
    others = [n for n in names if n in registry and registry.get(n).kind != "augmenter"]
    if others:
        raise OptionError(f"cbk augment applies augmenters only; received {', '.join(others)} "
                          f"({', '.join(registry.get(n).kind for n in others)})")
    selection = select(registry, names, parse_set(assignments))
    out_path = Path(out)
    if out_path.suffix != ".npz":
        raise click.BadParameter(f"expected a path ending in .npz; received {out!r}",
                                 param_hint="--out")
    ensure_absent(out_path)
    augmenters = [c.create(seed=seed + i, **selection.options_for(c.name))
                  for i, c in enumerate(selection.of("augmenter"))]
    dataset = load_dataset(data)
    echo_progress(f"augmenting {len(dataset.labels)} images with "
                  f"{', '.join(c.name for c in selection.of('augmenter'))}")
    write_npz_atomically(out_path, augmented_arrays(dataset, augmenters, batch_size=batch_size))
    click.echo(f"augmented data: {out_path}")


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--out", type=click.Path(), required=True, help="Zip to write (never overwritten).")
@click.option("--no-validate", is_flag=True, help="Skip validating the zip before publishing.")
@core_errors
def package(run_dirs, out, no_validate):
    """Package a trained run (from `cbk build --keep-run`, or a build on a backend
    without TensorFlow) into a submission zip. Needs TensorFlow.

    Several runs make an ensemble: one artifact that averages their probabilities (each
    with its own TTA). They must share the image shape and classes; its metrics are
    measured on the first run's test set.

    \b
    Examples:
      cbk package submissions/cbk-effnet-20261122-101500.run --out submissions/effnet.zip
      cbk package effnet.run mobilenet.run --out submissions/ensemble.zip
    """
    from codabench_kit.packaging.package import package_run
    from codabench_kit.packaging.run_record import load_run

    runs = [load_run(run_dir) for run_dir in run_dirs]
    package_run(runs, Path(out), load_registry(), validate=not no_validate,
                progress=echo_progress)
    click.echo(out)


@cli.command()
@click.argument("zip_path", type=click.Path())
@click.option("--data", type=click.Path(), default=None,
              help="Labelled .npz or class folders to predict on (reports accuracy). An npz "
                   "with a `predictions` key (the .heldout.npz a build writes) also reports "
                   "agreement with those predictions.")
@click.option("--timeout", type=click.FloatRange(min=1), default=600.0, show_default=True,
              help="Seconds allowed for Model() plus predict().")
@click.option("--num-classes", type=click.IntRange(min=2), default=8, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Predict on at most this many images of --data.")
@click.option("--target", default=None,
              help="Environment to run it in: codabench (TF 2.17.0 + Keras 3.4.1, a venv made "
                   "once and cached) or current (this interpreter). Default: $CBK_TARGET, "
                   "else codabench.")
@click.option("--python", "python", type=click.Path(), default=None,
              help="Python interpreter to run the submission with, instead of a --target.")
@click.option("--time-limit", type=click.FloatRange(min=1), default=600.0, show_default=True,
              help="Budget: seconds the server allows for Model() plus predicting the hidden "
                   "test set (projected from this run).")
@click.option("--hidden-images", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Budget: images in the hidden test set.")
@click.option("--max-zip-mb", type=click.FloatRange(min=0, min_open=True), default=500.0,
              show_default=True, help="Budget: largest zip the server accepts.")
@click.option("--max-memory-mb", type=click.FloatRange(min=0, min_open=True), default=8192.0,
              show_default=True, help="Budget: most memory the model may use.")
@core_errors
def validate(zip_path, data, timeout, num_classes, limit, target, python, time_limit,
             hidden_images, max_zip_mb, max_memory_mb):
    """Prove that a submission zip runs as Codabench runs it.

    Unpacks it safely into a temporary folder, imports model.py in a separate process
    (cwd = the submission) in the target environment, calls Model() and predict(X) on
    uint8 (n, 96, 96, 3) images, and checks the answer; for a cbk zip, that
    predict_proba on its probe matches the trained model within 1e-4 (parity); and that
    the run fits the budget. Exit status 0 only when every check holds.

    \b
    Examples:
      cbk validate submissions/cbk-cnn-20261122-101500.zip
      cbk validate sub.zip --data submissions/cbk-cnn-20261122-101500.heldout.npz
      cbk validate sub.zip --target current --hidden-images 5000 --time-limit 300
      cbk validate sub.zip --python ~/venv-tf217/bin/python
    """
    import numpy as np

    from codabench_kit.validation import validate_zip
    from codabench_kit.validation.fidelity import Budget

    make_interpreter = _interpreter_for(target, python)
    budget = Budget(time_limit_s=time_limit, hidden_images=hidden_images,
                    max_zip_mb=max_zip_mb, max_memory_mb=max_memory_mb)

    labels = expected = None
    if data:
        from codabench_kit.data import load_dataset

        dataset = load_dataset(data, num_classes=num_classes)
        images, labels = dataset.images[:limit], dataset.labels[:limit]
        if str(data).endswith(".npz"):
            with np.load(data, allow_pickle=False) as archive:
                if "predictions" in archive.files:
                    expected = archive["predictions"][:limit]
    else:
        from codabench_kit.data import demo_dataset

        images = demo_dataset(seed=1, per_class=8).images[:limit]
    report = validate_zip(zip_path, images=images, labels=labels, num_classes=num_classes,
                          timeout=timeout, python=make_interpreter(), progress=echo_progress,
                          budget=budget)
    for line in report.lines():
        click.echo(line)
    ok = report.ok
    if expected is not None and report.predictions is not None:
        same = int(np.sum(report.predictions == expected))
        agree = same == len(expected)
        ok = ok and agree
        click.echo(f"{'ok  ' if agree else 'FAIL'}  agreement: {same}/{len(expected)} "
                   f"predictions equal the build's")
    click.echo(f"{'valid' if ok else 'INVALID'}: {zip_path}")
    sys.exit(0 if ok else 1)


def _interpreter_for(target, python):
    """A function giving the interpreter ``cbk validate`` runs the submission with:
    ``--python``, else the ``--target``'s (``$CBK_TARGET``, else the default target), its
    venv made once if need be. The names are checked now; the venv is made when called,
    after the other inputs are checked."""
    import os

    from codabench_kit.validation.targets import DEFAULT_TARGET, get_target, target_python

    if python and target:
        raise click.UsageError(f"expected --target or --python, not both; received "
                               f"--target {target} and --python {python}")
    if python:
        return lambda: python
    name = target or os.environ.get("CBK_TARGET") or DEFAULT_TARGET
    get_target(name)
    return lambda: str(target_python(name, progress=echo_progress))


@cli.command()
@click.argument("zip_path", type=click.Path())
@click.option("--data", type=click.Path(), required=True,
              help="Labelled .npz or class folders: the clean test images (e.g. the "
                   ".heldout.npz a build writes).")
@click.option("--out-chart", type=click.Path(), default=None,
              help="Also draw the report as a PNG here (never overwritten).")
@click.option("--timeout", type=click.FloatRange(min=1), default=600.0, show_default=True,
              help="Seconds allowed for Model() plus predict() on all the images.")
@click.option("--num-classes", type=click.IntRange(min=2), default=8, show_default=True)
@click.option("--python", "python", type=click.Path(), default=None,
              help="Python interpreter to run the submission with. Default: this one.")
@core_errors
def evaluate(zip_path, data, out_chart, timeout, num_classes, python):
    """Robustness report of any submission zip: accuracy per corruption and severity.

    Applies every corruption at every severity 1-5 to the labelled images (fixed seed),
    runs the zip on all of them at once exactly as `cbk validate` does (unpacked safely,
    in a separate process), and prints the table with the clean and the mixed held-out
    (mixed:n=2) accuracy. Exit status 0 when the zip ran, 1 (with the validation lines)
    when it did not.

    \b
    Examples:
      cbk evaluate sub.zip --data submissions/cbk-cnn-20261122-101500.heldout.npz
      cbk evaluate sub.zip --data test.npz --out-chart sub.robustness.png
      cbk evaluate sub.zip --data test.npz --python ~/venv-tf217/bin/python
    """
    from codabench_kit.data import load_dataset
    from codabench_kit.packaging.bundle import ensure_absent
    from codabench_kit.evaluation.robustness import report_from_predictions, robustness_inputs, table_lines
    from codabench_kit.validation import validate_zip

    if out_chart:
        ensure_absent(Path(out_chart))
    dataset = load_dataset(data, num_classes=num_classes)
    echo_progress(f"evaluate: {len(dataset.labels)} labelled images from {data}")
    images = robustness_inputs(dataset.images, progress=echo_progress)
    report = validate_zip(zip_path, images=images, num_classes=num_classes, timeout=timeout,
                          python=python, progress=echo_progress)
    if not report.ok or report.predictions is None:
        for line in report.lines():
            click.echo(line)
        click.echo(f"not evaluated: {zip_path} did not run")
        sys.exit(1)
    for line in report.lines():
        echo_progress(line)
    robustness = report_from_predictions(report.predictions, dataset.labels)
    for line in table_lines(robustness):
        click.echo(line)
    if out_chart:
        from codabench_kit.report.chart import write_chart

        write_chart(robustness, Path(out_chart), title=(
            f"Robustness of {Path(zip_path).name} ({robustness['n']} images, "
            f"seed {robustness['seed']})"))
        click.echo(f"robustness chart: {out_chart}")


@cli.command(name="plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--kind", type=click.Choice(["cleaner", "augmenter", "backbone", "tta"]),
              default=None, help="Only components of this kind.")
@core_errors
def plugins_command(as_json, kind):
    """List installed plugins and the components each provides.

    \b
    Examples:
      cbk plugins
      cbk plugins --json --kind backbone
    """
    from codabench_kit.components.selection import DEFAULTS
    from codabench_kit.components.registry import Registry

    pm = plugin_manager()
    registry = Registry.from_plugin_manager(pm)
    components = registry.components(kind)
    if as_json:
        payload = {
            "plugins": [
                {"name": name, "distribution": pm.distributions.get(name, "?"),
                 "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or []),
                 "components": [c.name for c in registry.components() if c.provider == name]}
                for name, plugin in sorted(pm.list_name_plugin())
            ],
            "components": [c.to_dict() for c in components],
            "defaults": DEFAULTS,
            "failed": [vars(f) for f in pm.load_failures],
        }
        click.echo(json.dumps(payload, indent=2, default=str))
        return
    for component in components:
        default = " (default)" if component.name in DEFAULTS[component.kind] else ""
        options = ", ".join(f"{k}={v!r}" for k, v in component.options.items())
        click.echo(f"{component.kind:<10} {component.name:<12} [{component.provider}]"
                   f"{default} {component.description}")
        if options:
            click.echo(f"{'':<24}options: {options}")
    for failure in pm.load_failures:
        click.echo(f"FAILED     plugin {failure.name!r} ({failure.distribution}, "
                   f"{failure.value}): {failure.error}", err=True)


@cli.command(name="new-plugin")
@click.argument("name")
@click.option("--kind", required=True,
              type=click.Choice(["cleaner", "augmenter", "backbone", "tta"]),
              help="The kind of component the plugin registers.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=".",
              show_default=True, help="Existing folder to create the plugin's folder in.")
@core_errors
def new_plugin_command(name, kind, directory):
    """Create an installable plugin package NAME that registers one working component:
    pyproject.toml with the codabench_kit entry point, the module, a test, a README.

    NAME is a distribution name: cbk-example gives the module cbk_example and the
    component example. Nothing is written if NAME's folder exists or NAME clashes with
    an installed plugin. docs/writing-plugins.md goes on from there.

    \b
    Examples:
      cbk new-plugin cbk-example --kind augmenter
      cbk new-plugin cbk-blank-frames --kind cleaner --dir ~/src
      cd cbk-example && pip install -e . && pytest && cbk build --plugins example
    """
    import shlex

    from codabench_kit.components.scaffold import new_plugin

    plugin = new_plugin(name, kind, directory)
    click.echo(f"created {plugin.path}: the {kind} {plugin.names.component!r} in "
               f"{plugin.names.module}.py")
    click.echo("next:")
    for line in (f"cd {shlex.quote(str(plugin.path))}",
                 "pip install -e .                # then `cbk plugins` lists it",
                 "pytest                          # its own tests",
                 f"cbk build --plugins {plugin.names.component}"):
        click.echo(f"  {line}")


@cli.command()
@click.option("--dir", "directory", type=click.Path(), default="submissions",
              show_default=True, help="Folder of submission zips (not its subfolders).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@core_errors
def history(directory, as_json):
    """The local leaderboard: every submission zip of a folder, best augmented-test
    accuracy first.

    One row per zip, read from its manifest.json (backbone, augmenters, TTA, clean and
    augmented-test accuracy) and from the build record beside it (<name>.build.json:
    the build date; without it, the zip's file date, marked *). Zips that are not cbk
    submissions are listed as skipped, with the reason.

    \b
    Examples:
      cbk history
      cbk history --dir runs/effnet --json
    """
    from codabench_kit.packaging.history import read_history, table_lines

    board = read_history(directory)
    if as_json:
        click.echo(json.dumps(board.to_dict(), indent=2))
        return
    if not board.submissions:
        click.echo(f"no readable submission zips in {directory}" if board.skipped else
                   f"no submission zips in {directory}: build one with `cbk build`")
    for line in table_lines(board):
        click.echo(line)


def main(argv=None):
    """Entry point: load plugin commands, then run the CLI."""
    from codabench_kit.components.plugin_manager import get_plugin_manager

    pm = get_plugin_manager()
    try:
        pm.hook.register_commands(cli=cli)
    except Exception as exc:  # a broken plugin command must not take the CLI down
        click.echo(f"warning: a plugin failed to add its commands: {exc}", err=True)
    return cli.main(args=argv, prog_name="cbk", obj=pm)
