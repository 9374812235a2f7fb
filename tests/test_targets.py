"""Target environments: made once, cached, atomically; a clear error when they cannot be
made (offline). The installer is faked here; tests/test_parity.py makes the real one."""

import sys
from pathlib import Path

import pytest

from codabench_kit.errors import TargetError
from codabench_kit.validation.targets import MARKER, TARGETS, get_target, target_python


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CBK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_unknown_target_names_the_known_ones():
    with pytest.raises(TargetError, match=r"unknown target 'tf1'; expected one of: "
                                          r"codabench, codabench-example, current"):
        get_target("tf1")


def test_codabench_pins_the_reported_image():
    assert {"tensorflow-cpu==2.17.0", "keras==3.4.1"} <= set(TARGETS["codabench"].pins)


def test_current_is_this_interpreter_and_installs_nothing(cache):
    def install(python, pins):
        raise AssertionError("nothing to install")

    assert target_python("current", install=install) == Path(sys.executable)
    assert not cache.exists()


def test_a_pinned_target_is_made_once_then_cached(cache):
    calls, lines = [], []

    def install(python, pins):
        assert python.is_file() and python.parent.parent.name.startswith(".codabench-")
        calls.append(pins)

    first = target_python("codabench", install=install, progress=lines.append)
    again = target_python("codabench", install=install, progress=lines.append)
    assert first == again and first.is_file()
    assert calls == [TARGETS["codabench"].pins] and len(lines) == 1
    venv = first.parent.parent
    assert (venv / MARKER).is_file()
    assert [p.name for p in venv.parent.iterdir()] == [venv.name]  # no scratch left


def test_a_failed_install_leaves_nothing_and_says_what_to_do(cache):
    def install(python, pins):
        raise TargetError("pip could not install tensorflow-cpu==2.17.0: "
                          "No matching distribution found")

    with pytest.raises(TargetError) as caught:
        target_python("codabench", install=install, progress=lambda line: None)
    message = str(caught.value)
    assert "cannot make the 'codabench' target" in message
    assert "No matching distribution found" in message
    assert "--target current" in message and "--python PATH" in message
    assert list((cache / "targets").iterdir()) == []
