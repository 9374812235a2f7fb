import numpy as np
import pytest

from codabench_kit.cleaning.run import CleanResult, run_cleaners
from codabench_kit.data import Dataset
from codabench_kit.errors import BuildError


def make_images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)


def dataset(images, labels):
    return Dataset(images=images, labels=np.asarray(labels, dtype=np.int64),
                   class_names=tuple(f"c{i}" for i in range(8)), source="test")


def dedupe(registry, **options):
    return registry.get("dedupe", "cleaner").create(**options)


def test_dedupe_keeps_first_copy_of_exact_duplicates(registry):
    images = make_images(5)
    images = np.concatenate([images, images[[1, 1, 3]]])  # rows 5, 6 copy 1; 7 copies 3
    labels = [0, 1, 2, 3, 4, 1, 1, 3]
    result = dedupe(registry)(images, np.asarray(labels))
    assert np.flatnonzero(~result.keep).tolist() == [5, 6, 7]
    assert set(result.reasons.values()) == {"exact duplicate"}


def test_dedupe_drops_every_copy_of_conflicting_and_repeated_pictures(registry):
    real = make_images(20)
    cartoon, poster = make_images(2, seed=1)
    images = np.concatenate([real, np.repeat(cartoon[None], 16, 0), np.repeat(poster[None], 12, 0)])
    labels = np.concatenate([np.arange(20) % 8, np.arange(16) % 8, np.full(12, 5)])
    result = dedupe(registry, max_copies=10)(images, labels)
    assert result.keep[:20].all()
    assert not result.keep[20:].any()
    assert result.reasons[20] == "contaminant: same picture under 8 labels"
    assert result.reasons[40] == "contaminant: same picture 12 times"


def test_run_cleaners_reports_and_chains(registry):
    images = make_images(10)
    images = np.concatenate([images, images[:2]])
    data = dataset(images, np.r_[np.arange(10) % 8, [0, 5]])  # copy of row 1 has label 5 vs 1
    outcome = run_cleaners([("dedupe", dedupe(registry))], data)
    assert outcome.index.tolist() == [0, *range(2, 10)]
    assert outcome.reports[0].to_dict() == {
        "name": "dedupe", "seen": 12, "removed": 3, "added": 0, "weighted": False,
        "reasons": {"contaminant: same picture under 2 labels": 2, "exact duplicate": 1}}
    assert sorted(row for row, _, _ in outcome.removed) == [1, 10, 11]


def test_cleaner_removing_too_much_stops_the_build():
    data = dataset(make_images(10), np.arange(10) % 8)

    def greedy(images, labels):
        return CleanResult(keep=np.arange(len(labels)) < 2)

    with pytest.raises(BuildError, match=r"would remove 8 of 10 images \(80%\), more than the "
                                         r"allowed 50%"):
        run_cleaners([("greedy", greedy)], data, max_removed_share=0.5)


def test_cleaner_returning_a_bad_mask():
    data = dataset(make_images(4), np.arange(4))
    with pytest.raises(BuildError, match=r"keep mask of shape \(3,\); expected \(4,\)"):
        run_cleaners([("bad", lambda x, y: CleanResult(keep=np.ones(3, bool)))], data)


def cleaner(registry, name, **options):
    return registry.get(name, "cleaner").create(**options)


def test_contaminants_by_phash_catch_reencoded_copies(registry):
    from dirty_data import cartoon, jpeg

    real = make_images(30, seed=2).repeat(12, axis=1).repeat(12, axis=2)  # 96x96 blocks
    copies = np.stack([cartoon() if i % 2 else jpeg(cartoon(), 90) for i in range(12)])
    images = np.concatenate([real, copies])
    labels = np.r_[np.arange(30) % 8, np.zeros(12, int)]
    result = cleaner(registry, "contaminants", min_copies=10)(images, labels)
    assert result.keep[:30].all() and not result.keep[30:].any()
    pixels = cleaner(registry, "contaminants", min_copies=10, by="pixels")(images, labels)
    assert pixels.keep[30:].all()  # 6 + 6 exact copies: below min_copies


@pytest.mark.parametrize("policy, kept_extra", [("drop", []), ("majority", [20, 21])])
def test_conflicts_policies(registry, policy, kept_extra):
    real = make_images(20, seed=3).repeat(12, axis=1).repeat(12, axis=2)
    images = np.concatenate([real, real[[0, 0, 0]]])  # three copies of row 0
    labels = np.r_[np.arange(20) % 8, [5, 5, 2]]       # row 0 is label 0: 5 wins 2:1:1
    result = cleaner(registry, "conflicts", policy=policy)(images, labels)
    kept = set(np.flatnonzero(result.keep).tolist())
    assert kept == set(range(1, 20)) | set(kept_extra)


def test_balance_methods_change_counts_or_weights(registry):
    labels = np.r_[np.zeros(6, int), np.ones(2, int)]
    data = dataset(make_images(8), labels)
    up = run_cleaners([("balance", cleaner(registry, "balance", method="oversample"))], data)
    assert np.bincount(data.labels[up.expanded_index()]).tolist() == [6, 6]
    assert up.reports[0].added == 4
    down = run_cleaners([("balance", cleaner(registry, "balance", method="downsample"))], data)
    assert np.bincount(data.labels[down.index]).tolist() == [2, 2]
    weighted = run_cleaners([("balance", cleaner(registry, "balance"))], data)
    assert weighted.weights.tolist() == pytest.approx([8 / 12] * 6 + [8 / 4] * 2)


def test_similar_drops_what_looks_like_the_example(registry, tmp_path):
    from PIL import Image

    from dirty_data import cartoon, jpeg

    Image.fromarray(cartoon()).save(tmp_path / "cartoon.png")
    real = make_images(20, seed=4).repeat(12, axis=1).repeat(12, axis=2)
    images = np.concatenate([real, [jpeg(cartoon(), 60)]])
    result = cleaner(registry, "similar", examples=[str(tmp_path / "cartoon.png")],
                     threshold=0.9)(images, np.arange(21) % 8)
    assert np.flatnonzero(~result.keep).tolist() == [20]
    assert "cartoon.png" in result.reasons[20]


def test_outliers_drop_the_odd_one(registry):
    from dirty_data import poster

    rng = np.random.default_rng(0)
    base = rng.integers(100, 140, (1, 96, 96, 3))
    images = np.clip(base + rng.integers(-8, 8, (99, 96, 96, 3)), 0, 255).astype(np.uint8)
    images = np.concatenate([images, [poster()]])
    result = cleaner(registry, "outliers", share=0.01)(images, np.arange(100) % 8)
    assert np.flatnonzero(~result.keep).tolist() == [99]


def test_bad_cleaner_options(registry):
    from codabench_kit.errors import OptionError

    with pytest.raises(OptionError, match="conflicts.policy expects one of drop, majority"):
        cleaner(registry, "conflicts", policy="vote")
    with pytest.raises(OptionError, match="similar.examples expects one or more image files"):
        cleaner(registry, "similar")
    with pytest.raises(OptionError, match="expects readable image files; received 'nope.png'"):
        cleaner(registry, "similar", examples=["nope.png"])
