"""Each default is defined once, in the library: the command line's options show the
library's values (BuildConfig, Budget, the functions the commands call)."""

import dataclasses
import inspect

import click
import pytest

from codabench_kit.build.config import DEFAULTS, BuildConfig
from codabench_kit.cleaning.clean_file import clean_file
from codabench_kit.cleaning.run import run_cleaners
from codabench_kit.cli import cli
from codabench_kit.evaluation.submission import evaluate_zip
from codabench_kit.training.augment_file import augment_file
from codabench_kit.training.trainer import TrainingPlan
from codabench_kit.validation.fidelity import Budget
from codabench_kit.validation.runner import validate_zip
from codabench_kit.validation.submission import validate_submission


def option_defaults(command: str) -> dict:
    return {p.name: p.default for p in cli.commands[command].params
            if isinstance(p, click.Option)}


def signature_default(function, name):
    return inspect.signature(function).parameters[name].default


def test_build_options_default_to_the_build_config():
    cli_defaults = option_defaults("build")
    library = {"data": DEFAULTS.data, "out": DEFAULTS.out, "seed": DEFAULTS.seed,
               "weights": DEFAULTS.weights, "epochs": DEFAULTS.epochs,
               "head_epochs": DEFAULTS.head_epochs, "patience": DEFAULTS.patience,
               "batch_size": DEFAULTS.batch_size, "demo_size": DEFAULTS.demo_per_class,
               "keep_run": DEFAULTS.keep_run, "max_removed": DEFAULTS.max_removed_share,
               "no_validate": not DEFAULTS.validate,
               "heldout_policy": DEFAULTS.heldout_policy}
    assert {k: cli_defaults[k] for k in library} == library


def test_the_build_config_is_the_library_default_of_each_stage():
    assert DEFAULTS == BuildConfig()
    assert DEFAULTS.max_removed_share == signature_default(run_cleaners, "max_removed_share")
    fields = {f.name for f in dataclasses.fields(TrainingPlan)}
    plan_defaults = {f.name for f in dataclasses.fields(TrainingPlan)
                     if f.default is not dataclasses.MISSING}
    assert {"head_epochs", "epochs", "patience"} <= fields - plan_defaults  # no second default


def test_validate_and_evaluate_default_to_the_budget_and_the_runner():
    budget = Budget()
    validate = option_defaults("validate")
    assert (validate["time_limit"], validate["hidden_images"], validate["max_zip_mb"],
            validate["max_memory_mb"]) == (budget.time_limit_s, budget.hidden_images,
                                           budget.max_zip_mb, budget.max_memory_mb)
    for command, function in (("validate", validate_submission), ("evaluate", evaluate_zip)):
        defaults = option_defaults(command)
        assert defaults["timeout"] == signature_default(function, "timeout") \
            == signature_default(validate_zip, "timeout")
        assert defaults["num_classes"] == signature_default(function, "num_classes") \
            == signature_default(validate_zip, "num_classes")


@pytest.mark.parametrize("command, function, names", [
    ("augment", augment_file, {"seed": "seed", "batch_size": "batch_size"}),
    ("clean", clean_file, {"max_removed": "max_removed_share"}),
])
def test_data_commands_default_to_their_library_function(command, function, names):
    defaults = option_defaults(command)
    for option, argument in names.items():
        assert defaults[option] == signature_default(function, argument), option


def test_history_reads_where_builds_write():
    assert option_defaults("history")["directory"] == DEFAULTS.submissions_dir
