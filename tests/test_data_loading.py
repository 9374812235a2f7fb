"""load_dataset: every bad-data case is a DataError that says what was expected and received."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from codabench_kit.data import AN2DL_CLASS_NAMES, Dataset, load_dataset
from codabench_kit.errors import DataError

N = 16  # two images per AN2DL class


def _images(n=N, shape=(96, 96, 3), seed=0, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *shape)).astype(dtype)


def _labels(n=N, num_classes=8):
    return np.arange(n) % num_classes


def _save(tmp_path, name="training_set.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def _expect_error(path, *fragments, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(path, **kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def _write_folder(root, counts, size=(96, 96), suffix=".png"):
    rng = np.random.default_rng(1)
    for name, count in counts.items():
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03d}{suffix}")
    return root


# ------------------------------------------------------------------ bad paths and files


def test_missing_path(tmp_path):
    path = tmp_path / "nope.npz"
    _expect_error(path, "Expected a training set", f"{path} does not exist")


def test_neither_npz_nor_directory(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n")
    _expect_error(path, "Expected a .npz file", str(path), "'.csv'")


def test_not_an_npz(tmp_path):
    path = tmp_path / "training_set.npz"
    path.write_text("images,labels\n1,2\n")
    _expect_error(path, "Expected an .npz archive with keys 'images'",
                  f"{path} is not a readable .npz archive (truncated or not an npz)",
                  "b'images,labels")


def test_empty_file(tmp_path):
    path = tmp_path / "training_set.npz"
    path.write_bytes(b"")
    _expect_error(path, "Expected an .npz archive", "not a readable .npz archive", "empty (0 bytes)")


def test_truncated_npz(tmp_path):
    path = _save(tmp_path, images=_images(), labels=_labels())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _expect_error(path, "Expected an .npz archive", str(path),
                  "not a readable .npz archive (truncated or not an npz)")


def test_single_npy_renamed_to_npz(tmp_path):
    path = tmp_path / "training_set.npz"
    with open(path, "wb") as fh:
        np.save(fh, _images())
    _expect_error(path, "Expected an .npz archive", "a single .npy array")


def test_missing_key_lists_keys_found(tmp_path):
    path = _save(tmp_path, x_train=_images(), y_train=_labels())
    _expect_error(path, "Expected an .npz archive with keys 'images'", "is missing 'images' and 'labels'",
                  "keys found: ['x_train', 'y_train']", str(path))


# ------------------------------------------------------------------ bad images


def test_wrong_image_size(tmp_path):
    path = _save(tmp_path, images=_images(shape=(64, 64, 3)), labels=_labels())
    _expect_error(path, "Expected images of shape (N, 96, 96, 3)", "Received: shape=(16, 64, 64, 3)",
                  str(path))


def test_image_size_argument_is_used(tmp_path):
    path = _save(tmp_path, images=_images(shape=(64, 64, 3)), labels=_labels())
    assert load_dataset(path, image_size=64).image_shape == (64, 64, 3)


def test_channels_first(tmp_path):
    path = _save(tmp_path, images=_images(shape=(3, 96, 96)), labels=_labels())
    message = _expect_error(path, "Expected images of shape (N, 96, 96, 3)",
                            "Received: shape=(16, 3, 96, 96)", "channels-first")
    assert "np.transpose(images, (0, 2, 3, 1))" in message


def test_grayscale(tmp_path):
    path = _save(tmp_path, images=_images(shape=(96, 96)), labels=_labels())
    _expect_error(path, "Expected images of shape (N, 96, 96, 3)", "Received: shape=(16, 96, 96)",
                  "grayscale")


def test_float_images(tmp_path):
    images = (_images() / 255.0).astype(np.float32)
    images[0, 0, 0, 0], images[1, 0, 0, 0] = 0.0, 1.0
    path = _save(tmp_path, images=images, labels=_labels())
    message = _expect_error(path, "Expected uint8 images in 0..255",
                            "Received: dtype=float32 with values in [0.0, 1.0]")
    assert "(images * 255).round().astype(np.uint8)" in message


def test_int_images_that_fit_are_converted(tmp_path):
    path = _save(tmp_path, images=_images(dtype=np.int32), labels=_labels())
    ds = load_dataset(path)
    assert ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.images, _images())


def test_int_images_out_of_uint8_range(tmp_path):
    images = _images(dtype=np.int16)
    images[0, 0, 0, 0] = 300
    path = _save(tmp_path, images=images, labels=_labels())
    _expect_error(path, "Expected uint8 images in 0..255", "dtype=int16", "300")


def test_zero_images(tmp_path):
    path = _save(tmp_path, images=_images(n=0), labels=_labels(n=0))
    _expect_error(path, "Expected at least one image", "Received: shape=(0, 96, 96, 3)")


# ------------------------------------------------------------------ bad labels


def test_labels_out_of_range(tmp_path):
    labels = _labels()
    labels[3] = 8
    path = _save(tmp_path, images=_images(), labels=labels)
    _expect_error(path, "Expected labels in 0..7 (num_classes=8", "labels out of range: max=8",
                  str(path))


def test_labels_out_of_range_with_num_classes_argument(tmp_path):
    path = _save(tmp_path, images=_images(), labels=_labels())
    _expect_error(path, "Expected labels in 0..4 (num_classes=5)", "labels out of range: max=7",
                  num_classes=5)


def test_negative_labels(tmp_path):
    labels = _labels()
    labels[0] = -1
    path = _save(tmp_path, images=_images(), labels=labels)
    _expect_error(path, "Expected labels >= 0", "labels out of range: min=-1", str(path))


def test_label_length_mismatch(tmp_path):
    path = _save(tmp_path, images=_images(), labels=_labels(n=N - 1))
    _expect_error(path, "Expected one label per image (16 images)", "Received: 15 labels", str(path))


def test_fractional_float_labels(tmp_path):
    path = _save(tmp_path, images=_images(), labels=_labels() + 0.5)
    _expect_error(path, "Expected integer class labels", "dtype=float64", "non-integer values (e.g. 0.5)")


def test_whole_number_float_labels_are_accepted(tmp_path):
    path = _save(tmp_path, images=_images(), labels=_labels().astype(np.float32))
    ds = load_dataset(path)
    assert ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.labels, _labels())


def test_not_one_hot_2d_labels(tmp_path):
    onehot = np.eye(8)[_labels()]
    onehot[2] = 0.0
    onehot[2, :2] = 0.5
    path = _save(tmp_path, images=_images(), labels=onehot)
    _expect_error(path, "Expected one-hot labels of shape (N, C): each row a single 1",
                  "1 of 16 rows are not one-hot", "row 2 = [0.5, 0.5")


def test_class_with_no_images(tmp_path):
    labels = _labels()
    labels[labels == 3] = 2
    path = _save(tmp_path, images=_images(), labels=labels)
    _expect_error(path, "Expected at least one image of every class (num_classes=8)",
                  "no images for class 3 ('immature granulocyte')", str(path))


def test_class_names_disagree_with_one_hot_width(tmp_path):
    path = _save(tmp_path, images=_images(), labels=np.eye(8)[_labels()],
                 class_names=np.array(["a", "b", "c"]))
    _expect_error(path, "to match the 3 entries of 'class_names'", "Received: one-hot labels of width 8")


def test_object_class_names_are_refused(tmp_path):
    path = _save(tmp_path, images=_images(), labels=_labels(2 * 8),
                 class_names=np.array(list(AN2DL_CLASS_NAMES), dtype=object))
    _expect_error(path, "Expected 'class_names'", "an object array")


# ------------------------------------------------------------------ happy paths (.npz)


def test_npz_with_integer_labels(tmp_path):
    images = _images()
    path = _save(tmp_path, images=images, labels=_labels().astype(np.uint8))
    ds = load_dataset(path)
    assert isinstance(ds, Dataset)
    assert ds.images.dtype == np.uint8 and ds.images.flags.c_contiguous
    assert ds.labels.dtype == np.int64 and ds.labels.shape == (N,)
    assert ds.class_names == AN2DL_CLASS_NAMES
    assert ds.num_classes == 8 and ds.image_shape == (96, 96, 3)
    assert ds.source == str(path)
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.class_counts(), [2] * 8)


def test_npz_with_one_hot_labels(tmp_path):
    labels = _labels(num_classes=4)
    path = _save(tmp_path, images=_images(), labels=np.eye(4, dtype=np.float32)[labels])
    ds = load_dataset(path)
    assert ds.num_classes == 4
    assert ds.class_names == ("class_0", "class_1", "class_2", "class_3")
    np.testing.assert_array_equal(ds.labels, labels)


def test_extra_keys_are_ignored(tmp_path):
    path = tmp_path / "training_set.npz"
    np.savez(path, images=_images(), labels=_labels(),
             filenames=np.array([f"img_{i}.png" for i in range(N)]),
             meta=np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    ds = load_dataset(path)
    assert len(ds) == N and ds.num_classes == 8


def test_class_names_key(tmp_path):
    names = ["cat", "dog", "fox", "owl"]
    path = _save(tmp_path, images=_images(), labels=_labels(num_classes=4), class_names=np.array(names))
    ds = load_dataset(path)
    assert ds.class_names == tuple(names)
    assert ds.num_classes == 4


def test_num_classes_argument(tmp_path):
    path = _save(tmp_path, images=_images(), labels=_labels(num_classes=4))
    ds = load_dataset(path, num_classes=4)
    assert ds.class_names == ("class_0", "class_1", "class_2", "class_3")


def test_compressed_npz(tmp_path):
    path = tmp_path / "training_set.npz"
    np.savez_compressed(path, images=_images(), labels=_labels())
    assert len(load_dataset(path)) == N


# ------------------------------------------------------------------ folders


def test_folder_round_trip(tmp_path):
    names = ["alpha", "beta", "gamma"]
    root = tmp_path / "train"
    rng = np.random.default_rng(2)
    expected = {}
    for name in names:
        (root / name).mkdir(parents=True)
        for i in range(2):
            pixels = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
            expected[(name, i)] = pixels
    (root / ".cache").mkdir()  # hidden folders are ignored
    (root / "beta" / "notes.txt").write_text("not an image")  # other files too
    ds = load_dataset(root)
    assert ds.class_names == tuple(names)
    np.testing.assert_array_equal(ds.labels, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(ds.images[2], expected[("beta", 0)])
    np.testing.assert_array_equal(ds.images[5], expected[("gamma", 1)])
    assert ds.source == str(root)


def test_folder_grayscale_png_converted_to_rgb(tmp_path):
    root = _write_folder(tmp_path / "train", {"a": 1, "b": 1})
    Image.fromarray(np.full((96, 96), 7, dtype=np.uint8), mode="L").save(root / "a" / "gray.png")
    ds = load_dataset(root)
    assert ds.images.shape == (3, 96, 96, 3)


def test_folder_with_wrongly_sized_image(tmp_path):
    root = _write_folder(tmp_path / "train", {"a": 2, "b": 2})
    bad = root / "b" / "big.png"
    Image.fromarray(np.zeros((128, 100, 3), dtype=np.uint8)).save(bad)
    _expect_error(root, "Expected every image to be 96x96 pixels", f"{bad} is 128x100")


def test_folder_with_unreadable_image(tmp_path):
    root = _write_folder(tmp_path / "train", {"a": 2, "b": 2})
    bad = root / "a" / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    _expect_error(root, "Expected a readable image file", f"{bad} could not be read")


def test_folder_with_empty_class_folder(tmp_path):
    root = _write_folder(tmp_path / "train", {"a": 2, "c": 2})
    (root / "b").mkdir()
    _expect_error(root, "Expected at least one image", "in every class folder",
                  "no images for class 1 ('b'")


def test_folder_without_subfolders(tmp_path):
    root = tmp_path / "train"
    root.mkdir()
    Image.fromarray(np.zeros((96, 96, 3), dtype=np.uint8)).save(root / "loose.png")
    _expect_error(root, "Expected a folder with one subfolder per class",
                  f"no class subfolders in {root}", "loose.png")


# ------------------------------------------------------------------ fingerprint and helpers


def test_fingerprint_stable_and_sensitive(tmp_path):
    images, labels = _images(), _labels()
    path = _save(tmp_path, images=images, labels=labels)
    first = load_dataset(path).fingerprint()
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 64
    assert load_dataset(path).fingerprint() == first

    pixel = images.copy()
    pixel[5, 10, 10, 1] ^= 1
    assert load_dataset(_save(tmp_path, "pixel.npz", images=pixel, labels=labels)).fingerprint() != first

    label = labels.copy()
    label[0], label[1] = label[1], label[0]
    assert load_dataset(_save(tmp_path, "label.npz", images=images, labels=label)).fingerprint() != first

    # the label dtype on disk does not matter, the content does
    same = _save(tmp_path, "same.npz", images=images, labels=labels.astype(np.uint8))
    assert load_dataset(same).fingerprint() == first


def test_subset_and_class_counts(tmp_path):
    ds = load_dataset(_save(tmp_path, images=_images(), labels=_labels()))
    part = ds.subset(np.array([0, 1, 8]))
    assert len(part) == 3 and part.class_names == ds.class_names and part.source == ds.source
    np.testing.assert_array_equal(part.labels, [0, 1, 0])
    np.testing.assert_array_equal(part.images[2], ds.images[8])
    np.testing.assert_array_equal(part.class_counts(), [2, 1, 0, 0, 0, 0, 0, 0])
    with pytest.raises(DataError, match="Received: indices in"):
        ds.subset([0, N])
