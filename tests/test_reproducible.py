"""Reproducible builds: the same data, seed and options give, on CPU, a byte-identical zip."""

import hashlib
import json
import os
import subprocess
import sys
import zipfile

import pytest

from codabench_kit.packaging.package import split_manifest


def test_the_manifest_in_the_zip_holds_nothing_time_or_path_dependent():
    manifest = {
        "created": "2026-11-22T06:00:00+00:00", "seed": 3,
        "data": {"source": "/home/me/data/training_set.npz", "fingerprint": "sha256:ab"},
        "training": {"seconds": 12.3, "history": {"scratch": {"loss": [1.0]}}},
        "robustness": {"seconds": 1.5, "clean": 0.5},
        "ensemble": {"members": [{"run": "/tmp/x/a.run", "metrics": {}}], "same_split": True},
    }
    inside, beside = split_manifest(manifest)
    assert inside == {
        "seed": 3, "data": {"source": "training_set.npz", "fingerprint": "sha256:ab"},
        "training": {"history": {"scratch": {"loss": [1.0]}}},
        "robustness": {"clean": 0.5},
        "ensemble": {"members": [{"run": "a.run", "metrics": {}}], "same_split": True},
    }
    assert beside == {
        "created": "2026-11-22T06:00:00+00:00", "training": {"seconds": 12.3},
        "robustness": {"seconds": 1.5},
        "data": {"source": "/home/me/data/training_set.npz"},
        "ensemble": {"runs": ["/tmp/x/a.run"]},
    }
    assert manifest["created"] and manifest["training"]["seconds"]  # left as it was


def test_a_demo_source_and_a_missing_robustness_report_stay():
    inside, beside = split_manifest({"data": {"source": "demo(seed=3)"}, "robustness": None,
                                     "training": {"seconds": 1.0}})
    assert inside == {"data": {"source": "demo(seed=3)"}, "robustness": None, "training": {}}
    assert beside == {"training": {"seconds": 1.0}}


def test_the_fingerprint_uuid_is_derived_from_the_content(tmp_path):
    pytest.importorskip("tensorflow")
    from tensorflow.core.protobuf import fingerprint_pb2

    from codabench_kit.packaging.export import normalise_fingerprint

    def written(uuid, checksum=7):
        folder = tmp_path / f"{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        fingerprint = fingerprint_pb2.FingerprintDef(saved_model_checksum=checksum, uuid=uuid)
        (folder / "fingerprint.pb").write_bytes(fingerprint.SerializeToString())
        normalise_fingerprint(folder)
        return (folder / "fingerprint.pb").read_bytes()

    assert written("123") == written("456")  # TensorFlow's random uuids
    assert written("123") != written("123", checksum=8)
    normalised = fingerprint_pb2.FingerprintDef.FromString(written("789"))
    assert normalised.uuid.isdigit() and normalised.saved_model_checksum == 7


TINY = ["--demo-size", "12", "--epochs", "2", "--set", "cnn.width=8", "--set", "head.dense=16",
        "--plugins", "cnn,flips,augmix", "--no-validate"]


def build(out, seed):
    """``cbk build`` in its own process, as a user runs it twice."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-m", "codabench_kit", "build", *TINY,
                           "--seed", str(seed), "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return hashlib.sha256(out.read_bytes()).hexdigest()


@pytest.mark.slow
def test_same_seed_same_zip_bytes_other_seed_other_zip(tmp_path):
    """Three tiny demo builds (about 30 s each on 2 CPU cores), in separate folders."""
    first = build(tmp_path / "a" / "sub.zip", seed=5)
    again = build(tmp_path / "b" / "other-name.zip", seed=5)
    if first != again:
        with zipfile.ZipFile(tmp_path / "a" / "sub.zip") as a, \
                zipfile.ZipFile(tmp_path / "b" / "other-name.zip") as b:
            differ = [n for n in a.namelist() if n not in b.namelist() or a.read(n) != b.read(n)]
        pytest.fail(f"same seed, different zips ({first} != {again}); entries that "
                    f"differ: {differ}")
    assert build(tmp_path / "c" / "sub.zip", seed=6) != first
    record = json.loads((tmp_path / "b" / "other-name.build.json").read_text())
    assert record["sha256"] == again and record["zip"] == "other-name.zip"
    assert record["created"] and record["training"]["seconds"] >= 0
