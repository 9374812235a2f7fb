"""`cbk history`: the local leaderboard, read from the zips' manifests and build records."""

import hashlib
import json
import os
import zipfile

import pytest
from click.testing import CliRunner

from codabench_kit.cli import cli
from codabench_kit.errors import HistoryError
from codabench_kit.packaging.history import read_history, read_submission, table_lines


def manifest(backbone="cnn", augmented=0.5, clean=0.8, **extra):
    return {
        "seed": 0,
        "components": {
            "backbone": [{"name": backbone, "provider": "backbones",
                          "options": {"variant": "v3small"} if backbone == "mobilenet" else {}}],
            "augmenter": [{"name": "flips", "provider": "augmenters", "options": {}},
                          {"name": "augmix", "provider": "augmenters", "options": {}}],
            "tta": [{"name": "flip-tta", "provider": "tta", "options": {}}],
            "cleaner": [{"name": "dedupe", "provider": "cleaners", "options": {}}],
        },
        "metrics": {"clean_test": {"accuracy": clean}, "augmented_test": {"accuracy": augmented}},
        **extra,
    }


def write_submission(folder, name, content, *, created="2026-11-22T10:15:00+00:00"):
    """A zip holding ``manifest.json`` (``content``: a dict, or raw bytes) and, when
    ``created`` is given, the build record beside it, as a build writes them."""
    path = folder / name
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.py", "class Model: pass\n")
        archive.writestr("manifest.json", data)
    if created:
        record = {"zip": name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                  "created": created}
        path.with_name(path.stem + ".build.json").write_text(json.dumps(record))
    return path


def test_rows_are_sorted_by_augmented_accuracy_then_clean(tmp_path):
    write_submission(tmp_path, "a.zip", manifest(augmented=0.40, clean=0.90))
    write_submission(tmp_path, "b.zip", manifest("mobilenet", augmented=0.70, clean=0.75))
    write_submission(tmp_path, "c.zip", manifest(augmented=0.40, clean=0.95))
    write_submission(tmp_path, "d.zip", {**manifest(), "metrics": {}})  # no accuracy: last
    history = read_history(tmp_path)
    assert [row.zip for row in history.submissions] == ["b.zip", "c.zip", "a.zip", "d.zip"]
    best = history.submissions[0]
    assert best.backbone == "mobilenet(v3small)"
    assert best.components == {"backbone": ["mobilenet"], "augmenter": ["flips", "augmix"],
                               "tta": ["flip-tta"], "cleaner": ["dedupe"]}
    assert (best.clean_accuracy, best.augmented_accuracy) == (0.75, 0.70)
    assert best.created == "2026-11-22T10:15:00+00:00" and best.created_from == "build record"
    assert history.skipped == []


def test_equal_accuracies_list_the_newest_first(tmp_path):
    write_submission(tmp_path, "earlier.zip", manifest(), created="2026-11-20T08:00:00+00:00")
    write_submission(tmp_path, "later.zip", manifest(), created="2026-11-22T08:00:00+00:00")
    assert [row.zip for row in read_history(tmp_path).submissions] == ["later.zip", "earlier.zip"]


def test_foreign_and_broken_zips_are_skipped_with_the_reason(tmp_path):
    write_submission(tmp_path, "good.zip", manifest())
    (tmp_path / "text.zip").write_text("not a zip at all")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("README.md", "someone else's zip")
    write_submission(tmp_path, "badjson.zip", b"{not json", created=None)
    write_submission(tmp_path, "foreign.zip", {"name": "another tool"}, created=None)
    write_submission(tmp_path, "list.zip", b"[1, 2]", created=None)
    (tmp_path / "notes.txt").write_text("ignored: not a zip name")
    (tmp_path / ".cbk-x.zip.partial").write_bytes(b"a build in progress")
    history = read_history(tmp_path)
    assert [row.zip for row in history.submissions] == ["good.zip"]
    reasons = {s.zip: s.reason for s in history.skipped}
    assert sorted(reasons) == ["badjson.zip", "foreign.zip", "list.zip", "other.zip",
                               "text.zip"]
    assert "not a readable zip" in reasons["text.zip"]
    assert "no manifest.json at its root" in reasons["other.zip"]
    assert "not valid JSON" in reasons["badjson.zip"]
    assert "expected 'components' and 'metrics'; received keys name" in reasons["foreign.zip"]
    assert "expected a JSON object; received list" in reasons["list.zip"]
    lines = table_lines(history)
    assert any(line.startswith("skipped text.zip: not a readable zip") for line in lines)


def test_the_date_comes_from_the_record_then_the_manifest_then_the_file(tmp_path):
    """Each zip also holds the dates of lower precedence (a manifest date, a file time),
    so the row's date shows which source won."""
    in_manifest = "2026-01-02T03:04:05+00:00"
    recorded = write_submission(tmp_path, "recorded.zip", manifest(created=in_manifest))
    dated = write_submission(tmp_path, "dated.zip", manifest(created=in_manifest), created=None)
    bare = write_submission(tmp_path, "bare.zip", manifest(), created=None)
    # A record written for other bytes (the zip was replaced) is not believed.
    stale = write_submission(tmp_path, "stale.zip", manifest())
    with zipfile.ZipFile(stale, "a") as archive:
        archive.writestr("extra.txt", "changed after the build")
    for path in (recorded, dated, bare, stale):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    rows = {row.zip: row for row in read_history(tmp_path).submissions}
    assert {name: (row.created, row.created_from) for name, row in rows.items()} == {
        "recorded.zip": ("2026-11-22T10:15:00+00:00", "build record"),
        "dated.zip": (in_manifest, "manifest"),
        "bare.zip": ("2023-11-14T22:13:20+00:00", "file time"),
        "stale.zip": ("2023-11-14T22:13:20+00:00", "file time"),
    }
    assert rows["recorded.zip"].sha256 == hashlib.sha256(recorded.read_bytes()).hexdigest()
    lines = table_lines(read_history(tmp_path))
    assert any("2023-11-14 22:13*" in line and "bare.zip" in line for line in lines)
    assert any("2026-01-02 03:04 " in line and "dated.zip" in line for line in lines)
    assert "* date of the file: no build record beside the zip" in lines


def test_an_ensemble_shows_its_member_count(tmp_path):
    path = write_submission(tmp_path, "ens.zip", manifest(ensemble={
        "members": [{"run": "a.run"}, {"run": "b.run"}], "merge": "mean", "same_split": True}))
    row = read_submission(path)
    assert row.ensemble == 2
    assert "cnn x2" in table_lines(read_history(tmp_path))[1]


def test_a_missing_folder_or_a_file_is_an_error(tmp_path):
    with pytest.raises(HistoryError, match="does not exist"):
        read_history(tmp_path / "nope")
    (tmp_path / "file.zip").write_bytes(b"")
    with pytest.raises(HistoryError, match="received the file"):
        read_history(tmp_path / "file.zip")


def test_cli_table(tmp_path):
    write_submission(tmp_path, "low.zip", manifest(augmented=0.25, clean=0.5))
    write_submission(tmp_path, "high.zip", manifest("mobilenet", augmented=0.875, clean=0.9))
    result = CliRunner().invoke(cli, ["history", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    header, first, second = result.output.splitlines()
    assert header.split() == ["#", "date", "(UTC)", "zip", "backbone", "augmenters", "tta",
                              "clean", "augmented"]
    assert first.split() == ["1", "2026-11-22", "10:15", "high.zip", "mobilenet(v3small)",
                             "flips,augmix", "flip-tta", "0.900", "0.875"]
    assert second.split()[0:4] == ["2", "2026-11-22", "10:15", "low.zip"]


def test_cli_json(tmp_path):
    write_submission(tmp_path, "a.zip", manifest(augmented=0.25))
    write_submission(tmp_path, "b.zip", manifest(augmented=0.75))
    (tmp_path / "junk.zip").write_bytes(b"junk")
    result = CliRunner().invoke(cli, ["history", "--dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert [row["zip"] for row in payload["submissions"]] == ["b.zip", "a.zip"]
    assert payload["submissions"][0]["augmented_accuracy"] == 0.75
    assert payload["submissions"][0]["components"]["augmenter"] == ["flips", "augmix"]
    assert [s["zip"] for s in payload["skipped"]] == ["junk.zip"]
    assert payload["dir"] == str(tmp_path)


def test_cli_empty_and_missing_folders_say_so(tmp_path):
    result = CliRunner().invoke(cli, ["history", "--dir", str(tmp_path)])
    assert result.exit_code == 0
    assert result.output.strip() == f"no submission zips in {tmp_path}: build one with `cbk build`"
    (tmp_path / "junk.zip").write_bytes(b"junk")
    result = CliRunner().invoke(cli, ["history", "--dir", str(tmp_path)])
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == f"no readable submission zips in {tmp_path}"
    assert result.output.splitlines()[1].startswith("skipped junk.zip: not a readable zip")
    result = CliRunner().invoke(cli, ["history", "--dir", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "does not exist" in result.stderr and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_cli_default_folder_is_submissions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "submissions").mkdir()
    write_submission(tmp_path / "submissions", "a.zip", manifest())
    result = CliRunner().invoke(cli, ["history"])
    assert result.exit_code == 0, result.output
    assert "a.zip" in result.output


TINY = ["--demo-size", "12", "--epochs", "1", "--set", "cnn.width=8", "--set", "head.dense=16",
        "--plugins", "cnn,flips", "--no-validate"]


@pytest.mark.slow
def test_two_built_submissions_are_listed_best_first(tmp_path):
    """Two tiny demo builds (about 25 s each on 2 CPU cores), then the leaderboard."""
    for name, seed in (("first.zip", "1"), ("second.zip", "2")):
        result = CliRunner().invoke(cli, ["build", *TINY, "--seed", seed,
                                          "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output + str(result.exception)
    result = CliRunner().invoke(cli, ["history", "--dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["skipped"] == []
    rows = payload["submissions"]
    assert sorted(row["zip"] for row in rows) == ["first.zip", "second.zip"]
    built = {}
    for name in ("first.zip", "second.zip"):
        with zipfile.ZipFile(tmp_path / name) as archive:
            metrics = json.loads(archive.read("manifest.json"))["metrics"]
        built[name] = (metrics["augmented_test"]["accuracy"], metrics["clean_test"]["accuracy"])
    expected = sorted(built, key=lambda name: tuple(-v for v in built[name]))
    if built["first.zip"] == built["second.zip"]:
        expected = ["second.zip", "first.zip"]  # a tie: the newest first
    assert [row["zip"] for row in rows] == expected
    for row in rows:
        assert (row["augmented_accuracy"], row["clean_accuracy"]) == built[row["zip"]]
        assert row["created_from"] == "build record" and row["backbone"] == "cnn"
        assert row["components"]["augmenter"] == ["flips"]
