"""Speed of the data stages that run before training, at AN2DL size.

Run: ``python -m pytest benchmarks --benchmark-only``. Figures from one run compare
with each other; absolute times on shared machines do not.
"""


AN2DL_IMAGES = 13_759


def test_demo_generation(benchmark):
    from codabench_kit.data import demo_dataset

    data = benchmark.pedantic(demo_dataset, kwargs={"seed": 1, "per_class": 200}, rounds=3)
    assert data.images.shape == (1600, 96, 96, 3)


def test_dedupe_an2dl_size(benchmark, an2dl_sized):
    from codabench_kit.plugins.cleaners import find_exact_duplicates

    images, labels = an2dl_sized
    result = benchmark.pedantic(find_exact_duplicates, args=(images, labels), rounds=3)
    assert result.keep.shape == (AN2DL_IMAGES,)


def test_heldout_corruption_750(benchmark, an2dl_sized):
    from codabench_kit.evaluation.heldout import make_augmented_test_set

    images = an2dl_sized[0][:750]
    out, _ = benchmark.pedantic(make_augmented_test_set, args=(images,), rounds=1)
    assert out.shape == images.shape
