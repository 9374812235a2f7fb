"""``cbk package``, ``cbk validate``, ``cbk repack``, ``cbk evaluate`` and ``cbk history``: what happens
to a submission zip once a run is trained."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from codabench_kit.build.config import DEFAULTS
from codabench_kit.cli.shared import core_errors, echo_progress, load_registry, run_options
from codabench_kit.validation.fidelity import Budget

BUDGET = Budget()


@click.command()
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


@click.command()
@click.argument("zip_path", type=click.Path())
@click.option("--data", type=click.Path(), default=None,
              help="Labelled .npz or class folders to predict on (reports accuracy). An npz "
                   "with a `predictions` key (the .heldout.npz a build writes) also reports "
                   "agreement with those predictions.")
@run_options("Seconds allowed for Model() plus predict().")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Predict on at most this many images of --data.")
@click.option("--target", default=None,
              help="Environment to run it in: codabench (TF 2.17.0 + Keras 3.4.1, a venv made "
                   "once and cached, run as the AN2DL ingestion: inside the submission folder), "
                   "codabench-example (the same venv, run as Codabench's example ingestion: "
                   "working directory elsewhere, submission last on sys.path) or current (this "
                   "interpreter). Default: $CBK_TARGET, else codabench.")
@click.option("--python", "python", type=click.Path(), default=None,
              help="Python interpreter to run the submission with, instead of a --target.")
@click.option("--conditions", type=click.Choice(["an2dl", "codabench-example"]), default=None,
              help="How the ingestion runs the zip, whatever the interpreter: an2dl (working "
                   "directory = the submission, first on sys.path) or codabench-example "
                   "(working directory elsewhere, submission appended to sys.path). "
                   "Default: the target's.")
@click.option("--time-limit", type=click.FloatRange(min=1), default=BUDGET.time_limit_s,
              show_default=True,
              help="Budget: seconds the server allows for Model() plus predicting the hidden "
                   "test set (projected from this run).")
@click.option("--hidden-images", type=click.IntRange(min=1), default=BUDGET.hidden_images,
              show_default=True, help="Budget: images in the hidden test set.")
@click.option("--max-zip-mb", type=click.FloatRange(min=0, min_open=True),
              default=BUDGET.max_zip_mb, show_default=True,
              help="Budget: largest zip the server accepts.")
@click.option("--max-memory-mb", type=click.FloatRange(min=0, min_open=True),
              default=BUDGET.max_memory_mb, show_default=True,
              help="Budget: most memory the model may use.")
@core_errors
def validate(zip_path, data, timeout, num_classes, limit, target, python, conditions,
             time_limit, hidden_images, max_zip_mb, max_memory_mb):
    """Prove that a submission zip runs as Codabench runs it.

    Unpacks it safely into a temporary folder, imports model.py in a separate process
    (cwd = the submission) in the target environment, calls Model() and predict(X) on
    uint8 (n, 96, 96, 3) images, and checks the answer; for a cbk zip, that
    predict_proba on its probe matches the trained model within 1e-4 (parity); and that
    the run fits the budget. Exit status 0 only when every check holds. A failure says
    its exception's type and cause (`cbk -v validate` prints the whole traceback), and
    why when it can tell: a .keras/.h5 saved by a newer Keras than the target's, a
    TypeError from the call Model() itself or from deeper, a file opened by a path
    relative to the working directory (a `warn` line where the target runs inside the
    submission folder, FAIL where it does not).

    \b
    Examples:
      cbk validate submissions/cbk-cnn-20261122-101500.zip
      cbk validate sub.zip --data submissions/cbk-cnn-20261122-101500.heldout.npz
      cbk validate sub.zip --target current --hidden-images 5000 --time-limit 300
      cbk validate sub.zip --python ~/venv-tf217/bin/python
    """
    from codabench_kit.validation.submission import validate_submission
    from codabench_kit.validation.targets import conditions_for, interpreter_for

    interpreter = interpreter_for(target, python, progress=echo_progress)
    chosen = conditions_for(target, python, conditions)
    budget = Budget(time_limit_s=time_limit, hidden_images=hidden_images,
                    max_zip_mb=max_zip_mb, max_memory_mb=max_memory_mb)
    report = validate_submission(zip_path, data=data, limit=limit, num_classes=num_classes,
                                 timeout=timeout, python=interpreter, budget=budget,
                                 progress=echo_progress, conditions=chosen.name)
    for line in report.lines():
        click.echo(line)
    if report.traceback and _verbose():
        click.echo("traceback of the failure, as the submission's process printed it:", err=True)
        click.echo(report.traceback.rstrip(), err=True)
    click.echo(f"{'valid' if report.ok else 'INVALID'}: {zip_path}")
    sys.exit(0 if report.ok else 1)


@click.command()
@click.argument("zip_path", type=click.Path())
@click.option("--out", type=click.Path(), required=True, help="Zip to write (never overwritten).")
@click.option("--target", default=None,
              help="Environment to validate the new zip in (as `cbk validate --target`). "
                   "Default: $CBK_TARGET, else codabench.")
@click.option("--python", "python", type=click.Path(), default=None,
              help="Python interpreter to validate the new zip with, instead of a --target.")
@click.option("--conditions", type=click.Choice(["an2dl", "codabench-example"]), default=None,
              help="How the ingestion runs the new zip (as `cbk validate --conditions`). "
                   "Default: the target's.")
@click.option("--no-validate", is_flag=True, help="Skip validating the new zip.")
@click.option("--timeout", type=click.FloatRange(min=1), default=None,
              help="Seconds allowed for Model() plus predict() when validating.")
@core_errors
def repack(zip_path, out, target, python, conditions, no_validate, timeout):
    """Repack a zip whose model file the target cannot load (a .keras or .h5 saved by a
    newer Keras than the server's, say) as a SavedModel that it can. Needs TensorFlow.

    Finds the zip's one model file (.keras, .h5/.hdf5 or a SavedModel folder), loads it
    here with this interpreter's Keras, exports it as a SavedModel with cbk's model.py
    (predict = argmax of the model's output on float32(X)), checks that both give the same
    outputs on a probe batch (max |dp| within 1e-4, kept in probe.npz), and validates the
    new zip in the target. Whatever else the original model.py did (preprocessing such as
    X / 255, TTA, ensembles) is not carried over: it warns where its predict does more than
    run the model. Load only zips you trust: the model is loaded in this process.

    \b
    Examples:
      cbk repack student.zip --out student-savedmodel.zip
      cbk repack student.zip --out fixed.zip --target codabench-example
    """
    from codabench_kit.packaging.repack import repack_zip
    from codabench_kit.validation.targets import conditions_for, interpreter_for

    interpreter = None if no_validate else interpreter_for(target, python, progress=echo_progress)
    chosen = conditions_for(target, python, conditions)
    result = repack_zip(zip_path, out, validate=not no_validate, python=interpreter,
                        conditions=chosen.name, timeout=timeout, progress=echo_progress)
    for line in result.warnings:
        click.echo(f"warning: {line}", err=True)
    click.echo(f"repacked {result.model_file} (parity max |dp| {result.max_dp:.1e}"
               f"{'' if no_validate else ', valid in the target'}): {result.out}")


def _verbose() -> bool:
    """Whether ``cbk -v`` was given."""
    context = click.get_current_context(silent=True)
    return bool(context is not None and context.find_root().params.get("verbose"))


@click.command()
@click.argument("zip_path", type=click.Path())
@click.option("--data", type=click.Path(), required=True,
              help="Labelled .npz or class folders: the clean test images (e.g. the "
                   ".heldout.npz a build writes).")
@click.option("--out-chart", type=click.Path(), default=None,
              help="Also draw the report as a PNG here (never overwritten).")
@run_options("Seconds allowed for Model() plus predict() on all the images.")
@click.option("--python", "python", type=click.Path(), default=None,
              help="Python interpreter to run the submission with. Default: this one.")
@click.option("--holdout-family", "holdout_families", multiple=True,
              help="A corruption family the model never trained on (noise, blur, digital, "
                   "color, microscopy, geometry): marked held out, with its mean apart, and "
                   "the mixed set drawn from it. Repeatable or comma-separated. Default: "
                   "what a cbk zip's manifest records.")
@core_errors
def evaluate(zip_path, data, out_chart, timeout, num_classes, python, holdout_families):
    """Robustness report of any submission zip: accuracy per corruption and severity.

    Applies every corruption at every severity 1-5 to the labelled images (fixed seed),
    runs the zip on all of them at once exactly as `cbk validate` does (unpacked safely,
    in a separate process), and prints the table with the clean and the mixed held-out
    (mixed:n=2) accuracy. Families the model never trained on are marked "held out" with
    their mean apart: leave-one-family-out when the zip was built with
    `cbk build --holdout-family F`. Exit status 0 when the zip ran, 1 (with the
    validation lines) when it did not.

    \b
    Examples:
      cbk evaluate sub.zip --data submissions/cbk-cnn-20261122-101500.heldout.npz
      cbk evaluate sub.zip --data test.npz --out-chart sub.robustness.png
      cbk evaluate sub.zip --data test.npz --python ~/venv-tf217/bin/python
      cbk evaluate sub.zip --data test.npz --holdout-family noise
    """
    from codabench_kit.evaluation.robustness import table_lines
    from codabench_kit.evaluation.submission import evaluate_zip

    result = evaluate_zip(zip_path, data, num_classes=num_classes, timeout=timeout,
                          python=python, chart=out_chart, progress=echo_progress,
                          holdout_families=list(holdout_families) or None)
    if result.robustness is None:
        for line in result.validation.lines():
            click.echo(line)
        click.echo(f"not evaluated: {zip_path} did not run")
        sys.exit(1)
    for line in result.validation.lines():
        echo_progress(line)
    for line in table_lines(result.robustness):
        click.echo(line)
    if result.chart is not None:
        click.echo(f"robustness chart: {result.chart}")


@click.command()
@click.option("--dir", "directory", type=click.Path(), default=DEFAULTS.submissions_dir,
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
