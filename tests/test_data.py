"""Loading training data: every bad input is a DataError saying what was expected and
what was received; good layouts load; the demo data is deterministic and learnable."""

import numpy as np
import pytest
from PIL import Image

from codabench_kit.data import AN2DL_CLASS_NAMES, demo_dataset, load_dataset
from codabench_kit.errors import DataError


def images(n=16, seed=0, shape=(96, 96, 3), dtype=np.uint8):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape)).astype(dtype)


def labels(n=16):
    return np.arange(n) % 8


def npz(tmp_path, name="train.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def expect_error(path, *fragments, **kwargs):
    with pytest.raises(DataError) as info:
        load_dataset(path, **kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# ---- bad npz content ------------------------------------------------------------------

@pytest.mark.parametrize("array, fragments", [
    (images(shape=(3, 96, 96)), ["(N, 96, 96, 3)", "shape=(16, 3, 96, 96)"]),
    (images(shape=(96, 96)), ["(N, 96, 96, 3)", "shape=(16, 96, 96)"]),
    (images(shape=(64, 64, 3)), ["(N, 96, 96, 3)", "64x64"]),
    (images(shape=(96, 96, 4)), ["3 (RGB) channels", "shape=(16, 96, 96, 4)"]),
    (images(dtype=np.float32) / 255, ["uint8", "float32", "[0.0"]),
])
def test_bad_images(tmp_path, array, fragments):
    expect_error(npz(tmp_path, images=array, labels=labels()), *fragments)


@pytest.mark.parametrize("bad_labels, fragments", [
    (np.r_[labels(15), 8], ["8", "out of range"]),
    (np.r_[labels(15), -1], ["-1"]),
    (labels(12), ["16", "12"]),
    (np.eye(8)[labels()] * 2, ["one-hot"]),
    (labels() + 0.5, ["integer"]),
])
def test_bad_labels(tmp_path, bad_labels, fragments):
    expect_error(npz(tmp_path, images=images(), labels=bad_labels), *fragments)


def test_a_class_with_no_images(tmp_path):
    message = expect_error(npz(tmp_path, images=images(), labels=np.arange(16) % 7))
    assert "7" in message and "platelet" in message


def test_missing_key_lists_the_keys_found(tmp_path):
    expect_error(npz(tmp_path, x=images(), y=labels()), "'images'", "keys found", "'x'")


def test_zero_images(tmp_path):
    expect_error(npz(tmp_path, images=images(0), labels=labels(0)), "at least one image")


# ---- files that are not an npz ----------------------------------------------------------

def test_not_an_npz(tmp_path):
    path = tmp_path / "train.npz"
    path.write_text("images,labels\n1,2\n")
    expect_error(path, "not a readable .npz archive", str(path))


def test_empty_file(tmp_path):
    path = tmp_path / "train.npz"
    path.write_bytes(b"")
    expect_error(path, "not a readable .npz archive")


def test_truncated_npz(tmp_path):
    path = npz(tmp_path, images=images(), labels=labels())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    expect_error(path, "not a readable .npz archive")


def test_missing_path_and_wrong_kind(tmp_path):
    expect_error(tmp_path / "nope.npz", "does not exist")
    other = tmp_path / "train.csv"
    other.write_text("x")
    expect_error(other, ".npz", ".csv")


# ---- good npz ----------------------------------------------------------------------------

def test_an2dl_layout_with_extra_keys(tmp_path):
    path = npz(tmp_path, images=images(), labels=labels().astype(np.uint8),
               filenames=np.array([f"f{i}.jpg" for i in range(16)]))
    data = load_dataset(path)
    assert data.images.shape == (16, 96, 96, 3) and data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64 and data.labels.tolist() == labels().tolist()
    assert data.class_names == AN2DL_CLASS_NAMES


def test_object_array_extra_key_is_ignored(tmp_path):
    path = tmp_path / "train.npz"
    np.savez(path, images=images(), labels=labels(),
             meta=np.array([{"a": 1}, None], dtype=object))
    assert len(load_dataset(path).labels) == 16


def test_one_hot_labels_and_class_names(tmp_path):
    names = np.array(["a", "b", "c", "d"])
    path = npz(tmp_path, images=images(8), labels=np.eye(4)[np.arange(8) % 4],
               class_names=names)
    data = load_dataset(path)
    assert data.labels.tolist() == (np.arange(8) % 4).tolist()
    assert data.class_names == ("a", "b", "c", "d") and data.num_classes == 4


def test_fingerprint_is_stable_and_sensitive(tmp_path):
    base = images()
    first = load_dataset(npz(tmp_path, "a.npz", images=base, labels=labels()))
    again = load_dataset(npz(tmp_path, "b.npz", images=base, labels=labels()))
    assert first.fingerprint() == again.fingerprint()
    pixel = base.copy()
    pixel[3, 10, 10, 1] ^= 1
    relabel = labels().copy()
    relabel[0], relabel[1] = relabel[1], relabel[0]
    assert load_dataset(npz(tmp_path, "c.npz", images=pixel, labels=labels())).fingerprint() \
        != first.fingerprint()
    assert load_dataset(npz(tmp_path, "d.npz", images=base, labels=relabel)).fingerprint() \
        != first.fingerprint()


# ---- class folders ------------------------------------------------------------------------

def write_folder(root, per_class=2, classes=("ant", "bee", "cat")):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(images(1, seed=c * 10 + i)[0]).save(root / name / f"{i}.png")
    return root


def test_folder_round_trip(tmp_path):
    data = load_dataset(write_folder(tmp_path / "train"))
    assert data.class_names == ("ant", "bee", "cat")
    assert data.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert np.array_equal(data.images[0], images(1, seed=0)[0])


def test_folder_with_a_wrongly_sized_image(tmp_path):
    root = write_folder(tmp_path / "train")
    Image.fromarray(images(1, shape=(64, 80, 3))[0]).save(root / "bee" / "big.png")
    expect_error(root, "96x96", "64x80", "big.png")


def test_folder_with_an_unreadable_image(tmp_path):
    root = write_folder(tmp_path / "train")
    (root / "cat" / "broken.png").write_bytes(b"not a png")
    expect_error(root, "readable image", "broken.png")


def test_folder_with_an_empty_class(tmp_path):
    root = write_folder(tmp_path / "train")
    (root / "dog").mkdir()
    expect_error(root, "no images", "dog")


def test_folder_without_class_subfolders(tmp_path):
    (tmp_path / "flat").mkdir()
    Image.fromarray(images(1)[0]).save(tmp_path / "flat" / "x.png")
    expect_error(tmp_path / "flat", "one subfolder per class", "no class subfolders")


# ---- the built-in demo data ------------------------------------------------------------------

def test_demo_shape_classes_and_determinism():
    demo = demo_dataset(seed=0, per_class=10)
    assert demo.images.shape == (80, 96, 96, 3) and demo.images.dtype == np.uint8
    assert demo.class_counts().tolist() == [10] * 8
    assert demo.class_names == AN2DL_CLASS_NAMES
    again = demo_dataset(seed=0, per_class=10)
    assert np.array_equal(demo.images, again.images) and np.array_equal(demo.labels, again.labels)
    assert not np.array_equal(demo.images, demo_dataset(seed=1, per_class=10).images)
    assert demo.images.std() > 10  # drawn scenes, not flat colour


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_demo_classes_are_learnable_far_above_chance():
    """A linear model on 24x24 thumbnails: measured 0.68 (shuffled labels: 0.11; chance 0.125)."""
    from sklearn.linear_model import LogisticRegression

    train, test = demo_dataset(seed=0, per_class=60), demo_dataset(seed=1, per_class=30)

    def thumbnails(data):
        small = data.images.reshape(-1, 24, 4, 24, 4, 3).mean(axis=(2, 4))
        return small.reshape(len(data.images), -1) / 255.0

    model = LogisticRegression(max_iter=300).fit(thumbnails(train), train.labels)
    accuracy = model.score(thumbnails(test), test.labels)
    assert accuracy > 0.4, accuracy
