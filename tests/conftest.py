import os
import sys
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# `cbk validate` runs submissions in the codabench target (a TF 2.17 venv, made once with
# pip) by default; the suite uses this interpreter, except tests/test_parity.py's slow test.
os.environ["CBK_TARGET"] = "current"

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_file(relative: str) -> Path:
    """A file in ../shared, or skip the test saying why (a user's machine has no ../shared)."""
    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f"needs {path} (real data beside the project); it is absent here")
    return path


@pytest.fixture
def install_plugin(tmp_path, monkeypatch):
    """Install a plugin module through a real ``codabench_kit`` entry point.

    Writes ``<module>.py`` and a ``<dist>.dist-info`` with ``entry_points.txt`` (what pip
    writes) into a folder put first on sys.path, so importlib.metadata finds it.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install(module: str, source: str, *, entry_name: str | None = None,
                dist: str | None = None) -> None:
        dist = dist or f"cbk-{module.replace('_', '-')}"
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(
            f"[codabench_kit]\n{entry_name or module} = {module}\n")
        sys.modules.pop(module, None)

    yield install


def installed_registry():
    """A registry of the installed plugins' components, built afresh. Tests take the
    ``registry`` fixture; this is for lists of names that parametrize tests at collection."""
    from codabench_kit.components.plugin_manager import get_plugin_manager
    from codabench_kit.components.registry import Registry

    return Registry.from_plugin_manager(get_plugin_manager())


@pytest.fixture(scope="module")
def registry():
    """The registry of the installed plugins, built once per test module (tests only read
    it; a test that installs a plugin builds its own)."""
    return installed_registry()


def require_keras_cv(name):
    """Fail (not skip) where keras-cv is missing: the test extra declares it."""
    try:
        import keras_cv  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"{name} needs keras-cv, a dependency of the test extra; install it with: "
                    f"pip install -e '.[test]' (import keras_cv raised {type(exc).__name__}: "
                    f"{exc})", pytrace=False)


@pytest.fixture
def build(registry):
    """``build(name, seed=0, **overrides)``: the augmenter with its registered options,
    overridden by ``overrides``; fails the test when it needs keras-cv and that is missing."""
    def build(name, seed=0, **overrides):
        component = registry.get(name, "augmenter")
        if component.metadata.get("requires") == "keras-cv":
            require_keras_cv(name)
        return component.create(seed=seed, **{**component.options, **overrides})

    return build


def run_augmenter(augment, images, labels):
    """``augment`` on numpy arrays; its output as numpy arrays."""
    import keras
    import numpy as np

    out_images, out_labels = augment(images, labels)
    return (np.asarray(keras.ops.convert_to_numpy(out_images)),
            np.asarray(keras.ops.convert_to_numpy(out_labels)))
