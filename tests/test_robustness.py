"""Held-out policies, the robustness report and chart, and ``cbk evaluate``.

Fast tests use fake predict functions and numpy-only submission zips; one tiny real build
(module-scoped, about 15 s on 2 CPU cores) checks the report end to end.
"""

from __future__ import annotations

import json
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from codabench_kit.cli import cli
from codabench_kit.errors import OutputExistsError
from codabench_kit.evaluation.corruptions import FAMILIES
from codabench_kit.evaluation.heldout import (CORRUPTIONS, HELDOUT_SEED, SEVERITIES, PolicyError,
                                   corrupt, make_augmented_test_set, make_heldout_set,
                                   parse_policy)
from codabench_kit.evaluation.robustness import (blocks, report_from_predictions, robustness_inputs,
                                      robustness_report, table_lines)
from codabench_kit.packaging.paths import SubmissionPaths
from codabench_kit.report.chart import write_chart

RNG = np.random.default_rng(11)
IMAGES = RNG.integers(0, 256, (10, 96, 96, 3), dtype=np.uint8)
LABELS = np.arange(10) % 8


# --- policies ------------------------------------------------------------------------


@pytest.mark.parametrize("text, canonical, copies", [
    ("mixed", "mixed:n=2", 1),
    ("mixed:n=2", "mixed:n=2", 1),
    (" mixed:n=5 ", "mixed:n=5", 1),
    ("ops:blur,jpeg@3", "ops:blur,jpeg@3", 1),
    ("ops: d4 , contrast", "ops:d4,contrast", 1),
    ("corruptions", "corruptions", 95),
])
def test_good_policies_parse_to_a_canonical_spec(text, canonical, copies):
    policy = parse_policy(text)
    assert str(policy) == canonical and policy.copies == copies
    assert parse_policy(str(policy)) == policy


@pytest.mark.parametrize("text, expected", [
    ("", "expected a held-out policy 'mixed:n=N' (N 1-19), 'ops:NAME,NAME[@SEVERITY]'"),
    ("random", "or 'corruptions'; received 'random'"),
    ("mixed:n=0", "'mixed:n=N' with N an integer 1-19 (corruptions per image); received 'mixed:n=0'"),
    ("mixed:n=20", "received 'mixed:n=20'"),
    ("mixed:k=2", "received 'mixed:k=2'"),
    ("ops:", "received 'ops:'"),
    ("ops:blurr@2", "received 'blurr' in 'ops:blurr@2'. Did you mean 'blur'?"),
    ("ops:blur@6", "one SEVERITY 1-5 after the last name"),
    ("ops:blur@2,jpeg@3", "one SEVERITY 1-5 after the last name"),
    ("corruptions:all", "received 'corruptions:all'"),
    (None, "received None"),
])
def test_bad_policies_say_what_was_expected_and_received(text, expected):
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    assert "expected" in str(info.value) and expected in str(info.value)


def test_build_rejects_a_bad_policy_before_any_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["build", "--heldout-policy", "ops:nois@2"])
    assert result.exit_code == 2
    assert "--heldout-policy" in result.stderr and "received 'nois'" in result.stderr
    assert "data:" not in result.stderr and list(tmp_path.iterdir()) == []


def test_mixed_policy_is_make_augmented_test_set_with_pinned_draws():
    images = np.random.default_rng(5).integers(0, 256, (6, 96, 96, 3), dtype=np.uint8)
    held = make_heldout_set(images, "mixed:n=2")
    direct, applied = make_augmented_test_set(images, seed=HELDOUT_SEED)
    assert np.array_equal(held.images, direct) and held.applied == applied
    # The default policy's draws are pinned: every build of the same test split gets
    # these corruptions (HELDOUT_SEED), so augmented accuracies of zips stay comparable.
    # (They changed once, when the 8 corruptions became 19 in families.)
    assert applied == ["impulse_noise@4+jpeg@4", "saturate@4+motion_blur@2",
                       "speckle_noise@1+saturate@4", "pixelate@3+defocus@4",
                       "motion_blur@5+jpeg@4", "pixelate@5+blur@1"]
    assert np.array_equal(held.source, np.arange(6))
    # The default build's pool: the held-out family microscopy.
    microscopy = make_heldout_set(images, "mixed:n=2", names=list(FAMILIES["microscopy"]))
    assert microscopy.applied == ["bubbles@4+deposits@3", "uneven_light@1+dust@5",
                                  "uneven_light@4+deposits@2", "deposits@3+uneven_light@1",
                                  "deposits@5+uneven_light@1", "uneven_light@3+bubbles@1"]


@pytest.mark.parametrize("policy", ["mixed:n=3", "ops:blur,gaussian_noise@4", "ops:d4"])
def test_policies_are_deterministic(policy):
    first, again = make_heldout_set(IMAGES, policy), make_heldout_set(IMAGES, policy)
    assert first.images.dtype == np.uint8 and first.images.shape == IMAGES.shape
    assert np.array_equal(first.images, again.images) and first.applied == again.applied
    other = make_heldout_set(IMAGES, policy, seed=HELDOUT_SEED + 1)
    assert other.applied != first.applied or not np.array_equal(other.images, first.images)


def test_ops_policy_applies_the_named_ops_in_order():
    held = make_heldout_set(IMAGES, "ops:blur,gaussian_noise@4")
    assert held.applied == ["blur@4+gaussian_noise@4"] * len(IMAGES)
    random = make_heldout_set(IMAGES, "ops:pixelate,jpeg")
    assert all(a.startswith("pixelate@") and "+jpeg@" in a for a in random.applied)
    assert len({a for a in random.applied}) > 1  # random severities


def test_corruptions_policy_is_every_corruption_at_every_severity():
    held = make_heldout_set(IMAGES[:3], "corruptions")
    assert held.images.shape == (3 * 95, 96, 96, 3)
    assert np.array_equal(held.source, np.tile(np.arange(3), 95))
    assert held.applied[:3] == ["gaussian_noise@1"] * 3 and held.applied[-1] == "d4@5"
    # Each block is corrupt(), whose stream depends on (seed, name, severity) only.
    assert np.array_equal(held.images[3 * 22:3 * 23], corrupt(IMAGES[:3], "blur", 3))
    assert np.array_equal(corrupt(IMAGES[:3], "gaussian_noise", 2),
                          corrupt(IMAGES[:3], "gaussian_noise", 2))
    assert not np.array_equal(corrupt(IMAGES[:3], "gaussian_noise", 2),
                              corrupt(IMAGES[:3], "gaussian_noise", 2, seed=1))
    with pytest.raises(PolicyError, match="expected a severity 1-5; received 6"):
        corrupt(IMAGES, "blur", 6)


def test_split_keeps_the_policy_and_labels_of_a_larger_augmented_set():
    from codabench_kit.build.config import BuildConfig
    from codabench_kit.build.run import _split
    from codabench_kit.data import demo_dataset

    from types import SimpleNamespace

    from codabench_kit.evaluation.families import HoldoutPlan

    clean = demo_dataset(seed=0, per_class=12)
    lines = []
    inputs = SimpleNamespace(holdout=HoldoutPlan(("microscopy",), ("color",), False))
    _, heldout = _split(BuildConfig(heldout_policy="corruptions"), inputs, clean, lines.append)
    n = len(heldout.clean)
    assert heldout.policy == "corruptions" and len(heldout.augmented.images) == 95 * n
    assert np.array_equal(heldout.augmented.labels, np.tile(heldout.clean.labels, 95))
    assert heldout.families == ("microscopy",)
    assert heldout.describe()["holdout"]["trained_families"] == ["color"]
    assert any("held-out augmented test set (corruptions)" in line for line in lines)


# --- the report ----------------------------------------------------------------------


def right_on_clean_only(images_clean, labels):
    """A fake model: the right label for an unchanged clean image, a wrong one otherwise."""
    table = {image.tobytes(): int(label) for image, label in zip(images_clean, labels)}
    seen = []

    def predict(images):
        seen.append(len(images))
        return np.array([table.get(image.tobytes(), -1) for image in images])

    return predict, seen


def test_report_values_from_a_model_right_on_clean_images_only():
    predict, seen = right_on_clean_only(IMAGES, LABELS)
    report = robustness_report(predict, IMAGES, LABELS)
    assert report["clean"] == 1.0 and report["mixed"] == 0.0
    assert report["severities"] == [1, 2, 3, 4, 5] and report["n"] == len(IMAGES)
    assert report["corruptions"] == list(CORRUPTIONS)
    assert sum(seen) == len(blocks()) * len(IMAGES)  # every block predicted once
    for name in CORRUPTIONS:
        # Right exactly where the corruption left the image as it was (d4 may: rotation 0).
        expected = [float(np.mean(np.all(corrupt(IMAGES, name, s) == IMAGES, axis=(1, 2, 3))))
                    for s in SEVERITIES]
        assert report["accuracy"][name] == expected, name
        assert report["mean"][name] == pytest.approx(np.mean(expected))
    assert all(a == 0.0 for name in CORRUPTIONS if name != "d4" for a in report["accuracy"][name])
    grid = np.array([report["accuracy"][name] for name in CORRUPTIONS])
    assert report["severity_mean"] == pytest.approx(grid.mean(axis=0).tolist())
    assert report["corrupted_mean"] == pytest.approx(grid.mean())
    json.dumps(report)  # goes into the manifest


def test_report_reuses_known_predictions_and_matches_the_all_at_once_path():
    predict, seen = right_on_clean_only(IMAGES, LABELS)
    report = robustness_report(predict, IMAGES, LABELS, known={"clean": LABELS.copy()})
    assert sum(seen) == (len(blocks()) - 1) * len(IMAGES)
    # The cbk evaluate path: all images at once, predictions sliced per block.
    inputs = robustness_inputs(IMAGES)
    assert inputs.shape == (97 * len(IMAGES), 96, 96, 3)
    again = report_from_predictions(predict(inputs), LABELS)
    for key in ("clean", "mixed", "accuracy", "mean", "severity_mean", "corrupted_mean"):
        assert again[key] == report[key], key
    with pytest.raises(ValueError, match="expected 970 predictions"):
        report_from_predictions(np.zeros(5, int), LABELS)


def test_table_has_one_row_per_corruption_then_the_references():
    predict, _ = right_on_clean_only(IMAGES, LABELS)
    lines = table_lines(robustness_report(predict, IMAGES, LABELS))
    assert lines[0].startswith("robustness: accuracy on 10 test images")
    assert lines[1].split() == ["corruption", "1", "2", "3", "4", "5", "mean"]
    rows = [line.split()[0] for line in lines[2:-3]]
    assert rows == [name for family, members in FAMILIES.items()
                    for name in (family, *members)]
    assert lines[3].split() == ["gaussian_noise", *["0.000"] * 6]
    assert lines[-3].startswith("all corruptions")
    assert lines[-2].split() == ["clean", "1.000"]
    assert lines[-1].split() == ["mixed:n=2", "0.000"]


# --- the chart -----------------------------------------------------------------------


def test_chart_is_a_png_written_atomically_and_never_overwritten(tmp_path):
    predict, _ = right_on_clean_only(IMAGES, LABELS)
    report = robustness_report(predict, IMAGES, LABELS)
    path = SubmissionPaths(tmp_path / "sub.zip").chart
    assert path.name == "sub.robustness.png"
    write_chart(report, path)
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (980, 600)
        pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # lines, colours, text
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="never overwrites"):
        write_chart(report, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub.robustness.png"]


# --- cbk evaluate on numpy-only zips -------------------------------------------------

MEAN_COLOUR_MODEL = textwrap.dedent("""\
    import numpy as np

    class Model:
        def __init__(self):
            pass

        def predict(self, X):
            return np.clip(X.reshape(len(X), -1).mean(axis=1) // 32, 0, 7).astype(np.int64)
    """)


def mean_colour_predict(images):
    return np.clip(images.reshape(len(images), -1).mean(axis=1) // 32, 0, 7).astype(np.int64)


@pytest.fixture
def colour_data(tmp_path):
    """Flat grey images whose level (16 + 32 * label, plus noise) gives the label."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(8), 3)
    images = (16 + 32 * labels[:, None, None, None]
              + rng.integers(-4, 5, (len(labels), 96, 96, 3))).astype(np.uint8)
    path = tmp_path / "test.npz"
    np.savez(path, images=images, labels=labels)
    return path, images, labels


def numpy_zip(path: Path, source: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.py", source)
    return path


def test_evaluate_a_numpy_zip_gives_the_in_process_report(tmp_path, colour_data):
    data, images, labels = colour_data
    sub = numpy_zip(tmp_path / "sub.zip", MEAN_COLOUR_MODEL)
    chart = tmp_path / "out" / "chart.png"
    result = CliRunner().invoke(cli, ["evaluate", str(sub), "--data", str(data),
                                      "--out-chart", str(chart), "--timeout", "60"])
    assert result.exit_code == 0, result.output
    expected = robustness_report(mean_colour_predict, images, labels)
    assert expected["clean"] == 1.0 and expected["accuracy"]["d4"] == [1.0] * 5
    assert expected["accuracy"]["brightness"][-1] < 0.5  # +-80 moves the level 2-3 classes
    table = table_lines(expected)
    assert result.stdout.splitlines()[:len(table)] == table
    assert result.stdout.splitlines()[-1] == f"robustness chart: {chart}"
    assert "ok    predict: 2328 images" in result.stderr  # 97 blocks of 24, one run
    with Image.open(chart) as image:
        assert image.format == "PNG"


def test_evaluate_a_zip_that_does_not_run_exits_1_with_the_validate_lines(tmp_path, colour_data):
    data, _, _ = colour_data
    sub = numpy_zip(tmp_path / "bad.zip", MEAN_COLOUR_MODEL.replace("pass", "raise ValueError('no weights')"))
    result = CliRunner().invoke(cli, ["evaluate", str(sub), "--data", str(data),
                                      "--out-chart", str(tmp_path / "c.png"), "--timeout", "60"])
    assert result.exit_code == 1
    assert "FAIL  load: Model() failed: ValueError: no weights" in result.stdout
    assert result.stdout.splitlines()[-1] == f"not evaluated: {sub} did not run"
    assert not (tmp_path / "c.png").exists()


def test_evaluate_refuses_an_existing_chart_before_any_work(tmp_path, colour_data):
    data, _, _ = colour_data
    chart = tmp_path / "c.png"
    chart.write_bytes(b"precious")
    result = CliRunner().invoke(cli, ["evaluate", str(numpy_zip(tmp_path / "s.zip", MEAN_COLOUR_MODEL)),
                                      "--data", str(data), "--out-chart", str(chart)])
    assert result.exit_code == 1 and "already exists" in result.stderr
    assert "robustness:" not in result.stderr and chart.read_bytes() == b"precious"


# --- a real tiny build ---------------------------------------------------------------

TINY = ["--demo-size", "12", "--epochs", "1", "--seed", "3", "--set", "cnn.width=8"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("robust") / "tiny.zip"
    result = CliRunner().invoke(cli, ["build", *TINY, "--out", str(out)])
    assert result.exit_code == 0, result.output + str(result.exception)
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    return out, result, manifest


def test_build_stores_prints_and_charts_the_report(built):
    out, result, manifest = built
    assert manifest["heldout"]["policy"] == "mixed:n=2"
    assert manifest["heldout"]["ops_per_image"] == 2
    assert manifest["heldout"]["families"] == ["microscopy"]
    assert manifest["heldout"]["holdout"]["trained_families"] == [
        "noise", "blur", "digital", "color", "geometry"]
    report = manifest["robustness"]
    n = manifest["split"]["test"]
    assert report["n"] == n and report["seed"] == HELDOUT_SEED
    assert sorted(report["accuracy"]) == sorted(CORRUPTIONS)
    assert report["heldout_families"] == ["microscopy"]
    assert report["heldout_mean"] == pytest.approx(
        np.mean([report["mean"][name] for name in FAMILIES["microscopy"]]))
    assert "microscopy (held out)" in result.stderr
    assert all(len(row) == 5 and all(0 <= a <= 1 for a in row)
               for row in report["accuracy"].values())
    assert report["clean"] == manifest["metrics"]["clean_test"]["accuracy"]
    assert report["mixed"] == manifest["metrics"]["augmented_test"]["accuracy"]
    assert "robustness" not in manifest["metrics"]
    for line in table_lines(report):
        assert line in result.stderr
    assert "robustness report in " in result.stderr
    chart = SubmissionPaths(out).chart
    assert f"robustness chart: {chart}" in result.stderr
    with Image.open(chart) as image:
        image.verify()
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "tiny.build.json", "tiny.heldout.npz", "tiny.log", "tiny.report", "tiny.report.html",
        "tiny.robustness.png", "tiny.zip"]


def test_build_refuses_an_existing_chart_before_any_work(tmp_path):
    chart = SubmissionPaths(tmp_path / "sub.zip").chart
    chart.write_bytes(b"precious")
    result = CliRunner().invoke(cli, ["build", *TINY, "--out", str(tmp_path / "sub.zip")])
    assert result.exit_code == 1 and "already exists" in result.stderr
    assert "data:" not in result.stderr and chart.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub.robustness.png"]


def test_evaluate_the_built_zip_reproduces_the_build_report(built):
    out, _, manifest = built
    heldout = out.with_name("tiny.heldout.npz")
    result = CliRunner().invoke(cli, ["evaluate", str(out), "--data", str(heldout)])
    assert result.exit_code == 0, result.output
    n = manifest["split"]["test"]
    printed = {line.split()[0]: [float(v) for v in line.split()[1:]]
               for line in result.stdout.splitlines() if line.startswith("  ")}
    build = manifest["robustness"]
    assert sorted(printed) == sorted(CORRUPTIONS)
    for name, row in printed.items():
        # The SavedModel matches the trained model within 1e-4: at most a near-tie differs.
        assert np.allclose(row[:5], build["accuracy"][name], atol=1 / n + 1e-3), name
    references = {line.split()[0]: float(line.split()[1]) for line in result.stdout.splitlines()
                  if line.split()[0] in ("clean", "mixed:n=2")}
    assert references["clean"] == pytest.approx(build["clean"], abs=1 / n + 1e-3)
    assert references["mixed:n=2"] == pytest.approx(build["mixed"], abs=1 / n + 1e-3)
    # The held-out families come from the zip's manifest.
    assert "held-out families: microscopy (recorded in the zip's manifest)" in result.stderr
    assert "microscopy (held out)" in result.stdout


def test_a_tta_model_is_reported_on_a_fixed_subset_that_keeps_the_cost():
    """With V views per image the build's report is on 2000 // V test images at most."""
    from codabench_kit.evaluation.heldout_sets import HeldoutSets, TestSet
    from codabench_kit.evaluation.shipped_model import shipped_robustness

    images = np.random.default_rng(2).integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(30) % 3
    table = {image.tobytes(): int(label) for image, label in zip(images, labels)}
    calls = []

    class RightOnCleanOnly:
        def predict(self, batch, verbose=0, batch_size=64):
            calls.append(len(batch))
            found = [table.get(image.astype(np.uint8).tobytes(), 2) for image in batch]
            return np.eye(3)[found]

    augmented = 255 - images  # one per test image, in its order
    heldout = HeldoutSets(
        clean=TestSet(images, labels, np.eye(3)[labels]),
        augmented=TestSet(augmented, labels, np.eye(3)[(labels + 1) % 3]),
        corruptions=np.array(["x"] * 30), seed=4, policy="mixed:n=2", ops_per_image=2,
        families=("microscopy",))
    lines = []
    report = shipped_robustness(RightOnCleanOnly(), heldout, 64, lines.append, views=100)
    assert report["n"] == 20 and report["clean"] == 1.0
    assert "robustness: on 20 of the 30 test images (a fixed random subset: 100 TTA views " \
           "per image)" in lines
    assert sum(calls) == (len(blocks()) - 1) * 20  # clean reused, every other block drawn
    again = shipped_robustness(RightOnCleanOnly(), heldout, 64, lines.append, views=100)
    assert again["accuracy"] == report["accuracy"]  # the same subset each time
    whole = shipped_robustness(RightOnCleanOnly(), heldout, 64, lines.append, views=1)
    assert whole["n"] == 30 and whole["mixed"] == 0.0  # the held-out set's predictions
