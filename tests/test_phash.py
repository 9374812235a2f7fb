"""The vectorised pHash gives imagehash's bits, hex strings and distances exactly."""

import numpy as np
import pytest

from codabench_kit.cleaning.phash import hamming, phash, phash_bits, to_hex
from conftest import shared_file

imagehash = pytest.importorskip("imagehash")
Image = pytest.importorskip("PIL.Image")


def reference_bits(images):
    """imagehash.phash on each image, as a bool (N, 64) array."""
    return np.array([imagehash.phash(Image.fromarray(image)).hash.flatten()
                     for image in images]).reshape(len(images), 64)


def assert_same_as_imagehash(images, **kwargs):
    bits = phash_bits(images, **kwargs)
    expected = reference_bits(images)
    differing = np.flatnonzero((bits != expected).any(axis=1))
    assert differing.size == 0, (f"{differing.size} of {len(images)} hashes differ from "
                                 f"imagehash, first rows {differing[:10].tolist()}")


def random_images(n, height, width, channels=3, seed=0):
    shape = (n, height, width) + ((channels,) if channels else ())
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_matches_imagehash_on_random_96x96_images():
    assert_same_as_imagehash(random_images(1000, 96, 96))


@pytest.mark.parametrize("height, width", [
    (64, 80),    # both shrink, wider than tall
    (96, 40),    # tall: Pillow 13 resizes vertically first
    (150, 97),   # tall, both passes shrinking
    (40, 96),
    (32, 32),    # no resampling at all
    (32, 96),    # horizontal pass only
    (96, 32),    # vertical pass only
    (20, 28),    # upscaling
    (31, 97),    # upscaling one way, shrinking the other
])
def test_matches_imagehash_on_other_sizes(height, width):
    assert_same_as_imagehash(random_images(40, height, width, seed=height * 1000 + width))


@pytest.mark.parametrize("channels", [0, 1, 4])
def test_matches_imagehash_on_grey_and_rgba(channels):
    images = random_images(60, 96, 96, channels=channels, seed=channels)
    expected = reference_bits(images[..., 0] if channels == 1 else images)
    assert np.array_equal(phash_bits(images), expected)


def test_matches_imagehash_on_flat_images():
    grey_levels = np.broadcast_to(np.arange(256, dtype=np.uint8)[:, None, None, None],
                                  (256, 96, 96, 3))
    colours = np.broadcast_to(random_images(100, 1, 1, seed=1), (100, 96, 96, 3))
    assert_same_as_imagehash(np.ascontiguousarray(grey_levels))
    assert_same_as_imagehash(np.ascontiguousarray(colours))


def test_matches_imagehash_on_strong_edges():
    rng = np.random.default_rng(2)
    images = np.empty((200, 96, 96, 3), np.uint8)
    yy, xx = np.mgrid[:96, :96]
    for i in range(len(images)):
        low, high = rng.integers(0, 256, 2)
        at = int(rng.integers(1, 95))
        period = int(rng.integers(1, 12))
        mask = [xx >= at, yy >= at, (yy // period) % 2 == 0,
                ((xx + yy) // period) % 2 == 0, (xx // period + yy // period) % 2 == 0][i % 5]
        images[i] = np.where(mask[..., None], high, low)
    assert_same_as_imagehash(images)
    assert_same_as_imagehash(random_images(100, 96, 96, seed=3) // 255 * 255)  # 0 or 255


def test_matches_imagehash_on_mirrored_images():
    # Mirror symmetry makes some DCT coefficients zero up to rounding noise, so the bits
    # hang on that noise being the same as in imagehash's per-image DCT.
    half = random_images(100, 96, 48, seed=10)
    across = np.concatenate([half, half[:, :, ::-1]], axis=2)
    both = np.concatenate([across[:, :48], across[:, :48][:, ::-1]], axis=1)
    assert_same_as_imagehash(np.concatenate([across, both]))


@pytest.mark.shared
def test_matches_imagehash_on_the_real_images():
    images = np.load(shared_file("data/pbc96_mini_800.npz"))["images"]
    assert images.shape == (800, 96, 96, 3)
    assert_same_as_imagehash(images)


def test_hex_strings_equal_imagehash():
    images = np.concatenate([random_images(200, 96, 96, seed=4),
                             np.full((2, 96, 96, 3), 7, np.uint8)])
    expected = [str(imagehash.phash(Image.fromarray(image))) for image in images]
    hashes = phash(images)
    assert hashes.dtype == np.uint64 and hashes.shape == (len(images),)
    assert to_hex(hashes) == expected
    assert to_hex(hashes[0]) == expected[0]


def test_bit_order_is_most_significant_first():
    images = random_images(50, 96, 96, seed=5)
    bits = phash_bits(images)
    weights = np.uint64(1) << np.arange(63, -1, -1, dtype=np.uint64)
    packed = (bits.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    assert np.array_equal(phash(images), packed)


def test_hamming_equals_imagehash_difference():
    images = random_images(120, 96, 96, seed=6)
    images[60:] = images[:60] // 2 + 40  # related pictures: small distances too
    reference = [imagehash.phash(Image.fromarray(image)) for image in images]
    hashes = phash(images)
    rng = np.random.default_rng(7)
    first, second = rng.integers(0, len(images), (2, 300))
    expected = [reference[i] - reference[j] for i, j in zip(first, second)]
    assert hamming(hashes[first], hashes[second]).tolist() == expected
    table = hamming(hashes[:, None], hashes[None, :])  # broadcasting
    assert table.shape == (120, 120) and (np.diag(table) == 0).all()
    assert table[3, 70] == reference[3] - reference[70]


def test_hamming_without_numpy_bitwise_count(monkeypatch):
    hashes = phash(random_images(40, 96, 96, seed=8))
    expected = hamming(hashes[:, None], hashes[None, :])
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    assert np.array_equal(hamming(hashes[:, None], hashes[None, :]), expected)
    assert hamming(np.uint64(0), np.uint64(2**64 - 1)) == 64


def test_chunks_and_threads_do_not_change_the_hashes(monkeypatch):
    import codabench_kit.cleaning.phash as phash_module

    images = random_images(101, 64, 80, seed=9)
    expected = phash(images)
    assert np.array_equal(phash(images, chunk_size=7, workers=1), expected)
    assert np.array_equal(phash(images, chunk_size=10, workers=3), expected)
    monkeypatch.setattr(phash_module, "_blas_controller", lambda: None)  # no threadpoolctl
    assert np.array_equal(phash(images, chunk_size=10, workers=3), expected)


def test_empty_and_invalid_input():
    assert phash(np.zeros((0, 96, 96, 3), np.uint8)).shape == (0,)
    assert phash_bits(np.zeros((0, 96, 96, 3), np.uint8)).shape == (0, 64)
    with pytest.raises(TypeError, match="uint8"):
        phash(np.zeros((2, 96, 96, 3), np.float32))
    with pytest.raises(ValueError, match="shaped"):
        phash(np.zeros((96, 96), np.uint8))
