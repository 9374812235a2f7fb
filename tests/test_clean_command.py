"""`cbk clean` on data dirtied the AN2DL way, and the command's own contract."""

import numpy as np
import pytest
from click.testing import CliRunner

from codabench_kit.cli import cli
from conftest import shared_file
from dirty_data import make_dirty, score


def dirty_npz(tmp_path, images, labels, **extra):
    dirty = make_dirty(images, labels, seed=1)
    path = tmp_path / "dirty.npz"
    np.savez(path, images=dirty.images, labels=dirty.labels.astype(np.uint8),
             filenames=np.array([f"img{i}.jpg" for i in range(len(dirty.labels))]), **extra)
    return dirty, path


def run_clean(*args):
    return CliRunner().invoke(cli, ["clean", *args])


def check_default_cleaning(tmp_path, images, labels, max_real_loss=0.005):
    dirty, path = dirty_npz(tmp_path, images, labels)
    out = tmp_path / "clean.npz"
    result = run_clean("--data", str(path), "--out", str(out))
    assert result.exit_code == 0, result.output + str(result.exception)
    with np.load(out) as cleaned:
        figures = score(dirty, cleaned["index"])
        assert np.array_equal(cleaned["images"], dirty.images[cleaned["index"]])
        assert cleaned["filenames"][0] == f"img{cleaned['index'][0]}.jpg"
    print(figures)
    assert figures["contaminants_removed"] == figures["contaminants"]
    assert figures["exact_pairs_resolved"] == figures["exact_pairs"]
    assert figures["conflicts_resolved"] == figures["conflicts"]
    assert figures["near_pairs_resolved"] >= 0.95 * figures["near_pairs"]
    assert figures["real_lost"] <= max_real_loss * figures["real"]
    assert (tmp_path / "clean.removed.png").stat().st_size > 10_000
    return figures, result


def test_default_cleaners_on_dirty_demo_data(tmp_path):
    from codabench_kit.data import demo_dataset

    demo = demo_dataset(seed=5, per_class=100)
    # Synthetic lymphocytes and erythroblasts (a dark disc among red cells) are drawn so
    # alike that a few distinct ones lie within pHash distance 6: 4 of 780 (0.51%) go.
    # Real cells are held to 0.5% (the default max_real_loss) in the test below.
    _, result = check_default_cleaning(tmp_path, demo.images, demo.labels, max_real_loss=0.01)
    for cleaner in ("contaminants", "conflicts", "dedupe", "phash"):
        assert cleaner in result.stdout


@pytest.mark.shared
def test_default_cleaners_on_dirty_real_cells(tmp_path):
    with np.load(shared_file("data/pbc96_mini_800.npz")) as data:
        images, labels = data["images"], data["labels"]
    check_default_cleaning(tmp_path, images, labels)


@pytest.fixture
def small_dirty(tmp_path):
    from codabench_kit.data import demo_dataset

    demo = demo_dataset(seed=6, per_class=20)
    return dirty_npz(tmp_path, demo.images, demo.labels)


def test_dry_run_writes_nothing(tmp_path, small_dirty):
    _, path = small_dirty
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_clean("--data", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "total" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_cleaner_removing_too_much_writes_nothing(tmp_path, small_dirty):
    _, path = small_dirty
    out = tmp_path / "clean.npz"
    result = run_clean("--data", str(path), "--out", str(out), "--plugins", "contaminants",
                       "--max-removed", "0.1")
    assert result.exit_code == 1
    assert "would remove" in result.stderr and "nothing was written" in result.stderr
    assert not out.exists() and not (tmp_path / "clean.removed.png").exists()
    assert not list(tmp_path.glob(".*partial*"))


def test_existing_output_is_never_overwritten(tmp_path, small_dirty):
    _, path = small_dirty
    out = tmp_path / "clean.npz"
    out.write_bytes(b"precious")
    result = run_clean("--data", str(path), "--out", str(out))
    assert result.exit_code == 1 and "already exists" in result.stderr
    assert out.read_bytes() == b"precious"


def test_one_hot_labels_keep_their_layout_and_balance_adds_weights(tmp_path):
    from codabench_kit.data import demo_dataset

    demo = demo_dataset(seed=7, per_class=10)
    keep = np.r_[np.flatnonzero(demo.labels != 0), np.flatnonzero(demo.labels == 0)[:3]]
    path = tmp_path / "onehot.npz"
    np.savez(path, images=demo.images[keep], labels=np.eye(8)[demo.labels[keep]])
    out = tmp_path / "clean.npz"
    result = run_clean("--data", str(path), "--out", str(out), "--plugins", "dedupe,balance")
    assert result.exit_code == 0, result.output
    with np.load(out) as cleaned:
        assert cleaned["labels"].shape == (len(cleaned["index"]), 8)
        weights = cleaned["sample_weights"]
        assert weights[cleaned["labels"].argmax(1) == 0].min() > weights.max() / 2
    assert "class weights set" in result.stdout


def test_clean_takes_cleaners_only(tmp_path, small_dirty):
    _, path = small_dirty
    result = run_clean("--data", str(path), "--dry-run", "--plugins", "dedupe,effnet")
    assert result.exit_code == 2
    assert "cbk clean runs cleaners only; received effnet (backbone)" in result.stderr
