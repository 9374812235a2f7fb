"""Speed of the vectorised pHash against imagehash called per image, at AN2DL size.

Run: ``python -m pytest benchmarks/test_phash_speed.py --benchmark-columns=mean,rounds``.
imagehash runs on the first 1,000 of the 13,759 images and its time is scaled per image
(it costs the same for every 96x96 image); the vectorised hash runs on all 13,759. Both
sides use their fastest round for the ratio, which is kept in ``extra_info``. Figures from
one run compare with each other; absolute times on shared machines do not.
"""

import time

import numpy as np
import pytest

AN2DL_IMAGES = 13_759
IMAGEHASH_IMAGES = 1_000

# The speed-up the vectorised hash must keep over imagehash per image (a regression
# guard, not the goal). Measured here (2 cores, Pillow 13.0, imagehash 4.3.2): imagehash
# about 10,000 images/s on one core, the vectorised hash 47,000-65,000 images/s on two,
# a ratio of 6-7 on a quiet machine and down to about 3.5 while another process keeps a
# core busy (the two-thread side loses more). A 20x goal assumed imagehash at about
# 2,000 images/s; at 10,000 images/s it would need about 200,000 images/s here.
MIN_RATIO = 3.0

imagehash = pytest.importorskip("imagehash")
Image = pytest.importorskip("PIL.Image")


def imagehash_loop(images):
    return [imagehash.phash(Image.fromarray(image)) for image in images]


def best_time(function, *args, rounds=3):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def test_imagehash_per_image_1000(benchmark, an2dl_sized):
    hashes = benchmark.pedantic(imagehash_loop, args=(an2dl_sized[0][:IMAGEHASH_IMAGES],),
                                rounds=3, warmup_rounds=1)
    assert len(hashes) == IMAGEHASH_IMAGES


def test_vectorised_phash_an2dl_size(benchmark, an2dl_sized):
    from codabench_kit.cleaning.phash import phash, to_hex

    images = an2dl_sized[0]
    hashes = benchmark.pedantic(phash, args=(images,), rounds=5, warmup_rounds=1)
    assert hashes.shape == (AN2DL_IMAGES,) and hashes.dtype == np.uint64

    subset = images[:IMAGEHASH_IMAGES]
    expected = [str(h) for h in imagehash_loop(subset)]
    assert to_hex(hashes[:IMAGEHASH_IMAGES]) == expected  # identical on every compared image

    imagehash_per_image = best_time(imagehash_loop, subset) / IMAGEHASH_IMAGES
    vectorised_per_image = benchmark.stats.stats.min / AN2DL_IMAGES
    ratio = imagehash_per_image / vectorised_per_image
    benchmark.extra_info.update({
        "images": AN2DL_IMAGES,
        "imagehash_images_timed": IMAGEHASH_IMAGES,
        "hashes_compared": IMAGEHASH_IMAGES,
        "imagehash_images_per_s": round(1 / imagehash_per_image),
        "vectorised_images_per_s": round(1 / vectorised_per_image),
        "speed_ratio": round(ratio, 1),
    })
    assert ratio >= MIN_RATIO, (
        f"vectorised pHash only {ratio:.1f}x faster than imagehash per image "
        f"({1 / vectorised_per_image:,.0f} vs {1 / imagehash_per_image:,.0f} images/s)")
