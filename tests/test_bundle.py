import hashlib
import zipfile

import pytest

from codabench_kit.errors import OutputExistsError
from codabench_kit.packaging.bundle import publish, tree_entries, write_zip


def test_zip_is_byte_identical_for_equal_inputs(tmp_path):
    (tmp_path / "art" / "variables").mkdir(parents=True)
    (tmp_path / "art" / "saved_model.pb").write_bytes(b"pb")
    (tmp_path / "art" / "variables" / "v.data").write_bytes(b"\x00" * 100)
    entries = {"model.py": b"class Model: pass\n", **tree_entries(tmp_path / "art", "artifact")}
    write_zip(tmp_path / "a.zip", entries)
    write_zip(tmp_path / "b.zip", dict(reversed(list(entries.items()))))
    digest = [hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.zip", "b.zip")]
    assert digest[0] == digest[1]
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        assert archive.namelist() == ["artifact/saved_model.pb", "artifact/variables/v.data",
                                      "model.py"]
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {(i.create_system, i.external_attr >> 16) for i in archive.infolist()} == {
            (3, 0o100644)}


def test_zip_ignores_the_files_dates_and_modes(tmp_path):
    import os

    for folder, mode, when in (("a", 0o600, 1_000_000_000), ("b", 0o755, 1_700_000_000)):
        path = tmp_path / folder / "saved_model.pb"
        path.parent.mkdir()
        path.write_bytes(b"same bytes")
        path.chmod(mode)
        os.utime(path, (when, when))
        write_zip(tmp_path / f"{folder}.zip", tree_entries(tmp_path / folder, "artifact"))
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_publish_never_overwrites(tmp_path):
    final = tmp_path / "sub.zip"
    final.write_bytes(b"precious")
    temporary = tmp_path / ".sub.zip.partial"
    temporary.write_bytes(b"new")
    with pytest.raises(OutputExistsError, match="left as it is"):
        publish(temporary, final)
    assert final.read_bytes() == b"precious"
    other = tmp_path / "other.zip"
    publish(temporary, other)
    assert other.read_bytes() == b"new" and not temporary.exists()


def test_write_new_file_leaves_nothing_when_the_writer_fails(tmp_path):
    from codabench_kit.packaging.bundle import write_new_file

    def broken(partial):
        partial.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_new_file(tmp_path / "chart.png", broken)
    assert list(tmp_path.iterdir()) == []
    write_new_file(tmp_path / "chart.png", lambda partial: partial.write_bytes(b"png"))
    assert [p.name for p in tmp_path.iterdir()] == ["chart.png"]
    with pytest.raises(OutputExistsError):
        write_new_file(tmp_path / "chart.png", lambda partial: partial.write_bytes(b"new"))
    assert (tmp_path / "chart.png").read_bytes() == b"png"
