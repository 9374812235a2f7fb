"""build -> zip -> validate, end to end, on a tiny demo set (about 30 s on 2 CPU cores)."""

import json
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from codabench_kit.cli import cli

TINY = ["--demo-size", "12", "--epochs", "1", "--seed", "3", "--set", "cnn.width=8",
        "--set", "head.dense=16", "--set", "train.optimizer=lion",
        "--plugins", "cnn,flips,augmix,flip-tta"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("build")
    out = out_dir / "tiny.zip"
    result = CliRunner().invoke(cli, ["build", *TINY, "--out", str(out),
                                      "--keep-run", str(out_dir / "tiny.run")])
    assert result.exit_code == 0, result.output + str(result.exception)
    return out, result


def test_build_prints_the_zip_path_last_and_leaves_no_partial_files(built):
    out, result = built
    assert result.stdout.strip().splitlines()[-1] == str(out)
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "tiny.build.json", "tiny.heldout.npz", "tiny.log", "tiny.report", "tiny.report.html",
        "tiny.robustness.png", "tiny.run", "tiny.zip"]
    for stage in ("data:", "clean dedupe", "split:", "held-out augmented", "train epoch 1/1",
                  "test accuracy", "TTA flip-tta: augmented test", "labels equal",
                  "ok    answer", "ok    parity: probe of", "ok    budget: 2000 hidden images"):
        assert stage in result.stderr


def test_zip_layout_and_manifest(built):
    out, _ = built
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        model_py = archive.read("model.py").decode()
    assert "model.py" in names and "artifact/saved_model.pb" in names and "probe.npz" in names
    assert not any(name.endswith(".keras") for name in names)
    assert "import tensorflow" in model_py and "codabench_kit" not in model_py
    assert manifest["components"]["backbone"][0] == {
        "name": "cnn", "provider": "backbones",
        "options": {"width": 8, "blocks": 3, "norm": "batch"}}
    assert [c["name"] for c in manifest["components"]["augmenter"]] == ["flips", "augmix"]
    assert manifest["components"]["tta"][0]["name"] == "flip-tta"
    assert manifest["seed"] == 3
    recipe = manifest["training"]["recipe"]
    assert recipe["head"]["dense"] == "16" and recipe["train"]["optimizer"] == "lion"
    assert manifest["training"]["precision"] == "float32"  # mixed precision is for GPUs
    assert manifest["data"]["fingerprint"].startswith("sha256:")
    assert manifest["data"]["source"] == "demo(seed=3)"
    for split in ("clean_test", "augmented_test"):
        metrics = manifest["metrics"][split]
        assert set(metrics) >= {"accuracy", "macro_precision", "macro_recall", "macro_f1",
                                "confusion_matrix"}
        assert np.array(metrics["confusion_matrix"]).sum() == manifest["split"]["test"]
    gain = manifest["metrics"]["tta_gain"]
    assert gain["strategy"] == "flip-tta"
    for split in ("clean_test", "augmented_test"):
        assert gain[split]["with"] == manifest["metrics"][split]["accuracy"]
        assert gain[split]["gain"] == pytest.approx(gain[split]["with"] - gain[split]["without"])
    assert manifest["fidelity"]["labels_equal"] == manifest["fidelity"]["n"]
    assert manifest["fidelity"]["max_abs_probability_difference"] <= 1e-4
    assert {"python", "numpy", "keras", "codabench_kit"} <= set(manifest["libraries"])
    assert manifest["training"]["history"]["scratch"]["accuracy"]


def test_validate_accepts_the_zip_and_reproduces_build_predictions(built):
    out, _ = built
    heldout = out.with_name("tiny.heldout.npz")
    result = CliRunner().invoke(cli, ["validate", str(out), "--data", str(heldout)])
    assert result.exit_code == 0, result.output
    with np.load(heldout) as data:
        n = len(data["labels"])
    assert f"agreement: {n}/{n} predictions equal the build's" in result.output
    assert result.output.strip().splitlines()[-1] == f"valid: {out}"


def test_second_build_to_the_same_path_is_refused(built):
    out, _ = built
    before = out.read_bytes()
    result = CliRunner().invoke(cli, ["build", *TINY, "--out", str(out)])
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert out.read_bytes() == before


def test_packaging_a_run_again_gives_an_equivalent_zip(built, tmp_path):
    out, _ = built
    again = tmp_path / "again.zip"
    result = CliRunner().invoke(cli, ["package", str(out.with_name("tiny.run")), "--out", str(again)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as first, zipfile.ZipFile(again) as second:
        assert first.namelist() == second.namelist()
        assert first.read("model.py") == second.read("model.py")


def test_a_failed_validation_publishes_nothing(built, tmp_path, monkeypatch):
    """The zip is validated before it is published; on failure no zip, partial or not."""
    import codabench_kit.validation as validation
    from codabench_kit.validation import Check, ValidationReport

    def failing(*args, **kwargs):
        return ValidationReport(checks=(Check("load", False, "Model() failed: boom"),))

    monkeypatch.setattr(validation, "validate_zip", failing)
    out, _ = built
    target = tmp_path / "never.zip"
    result = CliRunner().invoke(cli, ["package", str(out.with_name("tiny.run")), "--out", str(target)])
    assert result.exit_code == 1
    assert "failed validation; no zip was written" in result.stderr
    assert "FAIL  load: Model() failed: boom" in result.stderr
    assert list(tmp_path.iterdir()) == []
