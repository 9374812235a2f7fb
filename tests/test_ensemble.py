"""`cbk package RUN RUN --out ZIP`: several trained runs as one averaging submission."""

import json
import shutil
import zipfile

import pytest
from click.testing import CliRunner

from codabench_kit.cli import cli

TINY = ["--demo-size", "12", "--epochs", "1", "--set", "cnn.width=8", "--no-validate"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ensemble")
    made = []
    for seed, extra in ((1, ["--plugins", "cnn,flip-tta"]), (1, ["--set", "head.dense=8"]),
                        (2, [])):
        run = folder / f"seed{seed}-{len(made)}.run"
        result = CliRunner().invoke(cli, ["build", *TINY, *extra, "--seed", str(seed),
                                          "--out", str(folder / f"{run.stem}.zip"),
                                          "--keep-run", str(run)])
        assert result.exit_code == 0, result.output + str(result.exception)
        made.append(run)
    return folder, made


def test_an_ensemble_zip_averages_its_members_and_validates(runs):
    folder, (first, second, _) = runs
    out = folder / "ensemble.zip"
    result = CliRunner().invoke(cli, ["package", str(first), str(second), "--out", str(out)])
    assert result.exit_code == 0, result.output + str(result.exception)
    assert "rebuilding the 2 members of the ensemble" in result.stderr
    assert "ok    answer" in result.stderr  # validated as Codabench runs it
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    ensemble = manifest["ensemble"]
    assert [m["run"] for m in ensemble["members"]] == [first.name, second.name]
    assert ensemble["same_split"] is True
    assert manifest["fidelity"]["labels_equal"] == manifest["fidelity"]["n"] > 0
    assert 0.0 <= manifest["metrics"]["clean_test"]["accuracy"] <= 1.0


def test_members_split_differently_are_flagged(runs):
    folder, (first, _, other_seed) = runs
    out = folder / "mixed.zip"
    result = CliRunner().invoke(cli, ["package", str(first), str(other_seed), "--out", str(out),
                                      "--no-validate"])
    assert result.exit_code == 0, result.output + str(result.exception)
    assert "members were split differently" in result.stderr
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read("manifest.json"))["ensemble"]["same_split"] is False


def test_incompatible_members_are_refused_before_any_work(runs, tmp_path):
    _, (first, _, _) = runs
    changed = tmp_path / "renamed.run"
    shutil.copytree(first, changed)
    recipe = json.loads((changed / "run.json").read_text())
    recipe["class_names"] = [f"class {i}" for i in range(len(recipe["class_names"]))]
    (changed / "run.json").write_text(json.dumps(recipe))
    out = tmp_path / "bad.zip"
    result = CliRunner().invoke(cli, ["package", str(first), str(changed), "--out", str(out)])
    assert result.exit_code == 1
    assert "must share their class_names" in result.stderr and "received" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["renamed.run"]
