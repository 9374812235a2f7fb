"""The wheel installs plugins and templates inside the codabench_kit namespace."""

import json
import os
import subprocess
import sys
import zipfile

import pytest

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_contents(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True)
    wheel = next(tmp_path.glob("codabench_kit-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(archive.read(n).decode() for n in names
                            if n.endswith("entry_points.txt"))
    source = ROOT / "codabench_kit"
    packages = sorted(p.parent.relative_to(ROOT).as_posix() for p in source.rglob("__init__.py"))
    for package in packages:  # every package of the source tree, the pipeline's folders too
        assert f"{package}/__init__.py" in names, package
    for expected in ("codabench_kit/cli/group.py", "codabench_kit/build/run.py",
                     "codabench_kit/plugins/backbones.py",
                     "codabench_kit/plugins/augmenters/__init__.py",
                     "codabench_kit/plugins/augmenters/policies.py", "codabench_kit/templates/model.py",
                     "codabench_kit/validation/ingest.py", "codabench_kit/validation/sandbox_exec.py",
                     "codabench_kit/templates/plugin/pyproject.toml.tmpl",
                     "codabench_kit/templates/plugin/kinds/augmenter.py.tmpl"):
        assert expected in names
    tops = {name.split("/")[0] for name in names}
    assert all(top == "codabench_kit" or top.endswith(".dist-info") for top in tops), tops
    # The built-ins are registered by cbk itself (DEFAULT_PLUGINS), not as entry points.
    assert "[codabench_kit]" not in entry_points
    assert "cbk = codabench_kit.cli:main" in entry_points

    # Installed from the wheel (not the source tree), the plugins load and list.
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(site), str(wheel)], check=True)
    code = ("import json, codabench_kit, codabench_kit.plugins.backbones as b, "
            "codabench_kit.templates as t; print(json.dumps([codabench_kit.__file__, "
            "b.__file__, t.__file__]))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    files = json.loads(subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                                      capture_output=True, text=True, check=True).stdout)
    assert all(f.startswith(str(site)) for f in files), files
    listing = subprocess.run([sys.executable, "-m", "codabench_kit", "plugins", "--json"],
                             env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    names = {c["name"] for c in json.loads(listing.stdout)["components"]}
    assert {"cnn", "mobilenet", "effnet", "augmix", "dedupe", "flip-tta"} <= names
