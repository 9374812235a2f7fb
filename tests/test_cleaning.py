import numpy as np
import pytest

from codabench_kit.cleaning import CleanResult, run_cleaners
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
    kept, reports = run_cleaners([("dedupe", dedupe(registry))], data)
    assert kept.tolist() == [0, *range(2, 10)]
    assert reports[0].to_dict() == {
        "name": "dedupe", "seen": 12, "removed": 3,
        "reasons": {"contaminant: same picture under 2 labels": 2, "exact duplicate": 1}}


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
