"""`cbk augment`: an augmented copy of a labelled set, for looking at or testing on."""

import numpy as np
from click.testing import CliRunner

from codabench_kit.cli import cli


def small_npz(path, n=24):
    rng = np.random.default_rng(0)
    np.savez(path, images=rng.integers(0, 256, (n, 96, 96, 3)).astype("uint8"),
             labels=np.arange(n) % 8)
    return path


def test_corrupted_copy_keeps_labels_and_layout(tmp_path):
    source = small_npz(tmp_path / "in.npz")
    out = tmp_path / "s3.npz"
    result = CliRunner().invoke(cli, ["augment", "--data", str(source), "--out", str(out),
                                      "--plugins", "corrupt", "--set", "corrupt.severity=3",
                                      "--set", "corrupt.probability=1", "--batch-size", "8"])
    assert result.exit_code == 0, result.output + str(result.exception)
    with np.load(source) as before, np.load(out) as after:
        assert after["images"].dtype == np.uint8 and after["images"].shape == before["images"].shape
        np.testing.assert_array_equal(after["labels"], before["labels"])
        changed = np.any(after["images"] != before["images"], axis=(1, 2, 3))
        assert changed.all()  # probability 1: every image corrupted
        assert "soft_labels" not in after.files
    again = tmp_path / "again.npz"
    CliRunner().invoke(cli, ["augment", "--data", str(source), "--out", str(again),
                             "--plugins", "corrupt", "--set", "corrupt.severity=3",
                             "--set", "corrupt.probability=1", "--batch-size", "8"])
    with np.load(out) as first, np.load(again) as second:
        np.testing.assert_array_equal(first["images"], second["images"])  # seeded


def test_mixing_augmenters_write_soft_labels(tmp_path):
    source = small_npz(tmp_path / "in.npz")
    out = tmp_path / "mixed.npz"
    result = CliRunner().invoke(cli, ["augment", "--data", str(source), "--out", str(out),
                                      "--plugins", "mixup", "--set", "mixup.probability=1"])
    assert result.exit_code == 0, result.output + str(result.exception)
    with np.load(out) as after:
        assert after["soft_labels"].shape == (24, 8)
        np.testing.assert_allclose(after["soft_labels"].sum(axis=1), 1.0, atol=1e-5)


def test_bad_inputs_fail_before_any_work_and_write_nothing(tmp_path):
    source = small_npz(tmp_path / "in.npz")
    existing = tmp_path / "kept.npz"
    existing.write_bytes(b"precious")
    cases = [
        (["--plugins", "cnn"], "cbk augment runs augmenters only; received cnn (backbone)"),
        (["--plugins", ""], "expected one or more augmenter names; received ''"),
        (["--plugins", "corupt"], "Did you mean 'corrupt'"),
        (["--plugins", "corrupt", "--set", "corrupt.severity=9"], "corrupt.severity must be"),
        (["--plugins", "corrupt", "--out", str(tmp_path / "x.png")], "expected --out to end in .npz"),
        (["--plugins", "corrupt", "--out", str(existing)], "already exists"),
    ]
    for args, message in cases:
        if "--out" not in args:
            args = [*args, "--out", str(tmp_path / "new.npz")]
        result = CliRunner().invoke(cli, ["augment", "--data", str(source), *args])
        assert result.exit_code in (1, 2), (args, result.output)
        assert message in result.output, (args, result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npz", "kept.npz"]
    assert existing.read_bytes() == b"precious"
