"""The build report: the HTML writer on fake results, a tiny real build, and headless
Chromium rendering the page (skipped, with the reason, when no Chromium is installed)."""

import base64
import io
import re
import shutil
import subprocess
import time

import numpy as np
import pytest
from click.testing import CliRunner

from codabench_kit.errors import OutputExistsError
from codabench_kit.evaluation.corruptions import FAMILIES
from codabench_kit.evaluation.heldout import CORRUPTIONS
from codabench_kit.packaging.manifest import RunManifest
from codabench_kit.packaging.paths import SubmissionPaths
from codabench_kit.report.html import ReportInputs, per_class_scores, write_report
from codabench_kit.report.saliency import Saliency, SaliencyExample

NAMES = ["basophil", "eosinophil", "erythroblast", "ig <b>&amp;</b>", "lymphocyte",
         "monocyte", "neutrophil", "platelet"]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
EXPECTED_SECTIONS = [("data", "Data"), ("cleaning", "Cleaning"), ("training", "Training"),
            ("confusion", "Confusion matrices"), ("per-class", "Per-class scores"),
            ("robustness", "Robustness"), ("tta", "TTA gain"), ("saliency", "Saliency")]
"""What a reader of the report sees, in order: (anchor, heading) of each section."""


def sections_of(text):
    """The (anchor, heading) of the page's sections, and of its navigation links."""
    sections = re.findall(r'<section id="([^"]*)"><h2>([^<]*)</h2>', text)
    nav = re.search(r"<nav>(.*?)</nav>", text, re.S)
    links = re.findall(r'<a href="#([^"]*)">([^<]*)</a>', nav.group(1)) if nav else []
    return sections, links


def report_files(zip_path):
    """The report's page and picture folder beside ``zip_path``."""
    paths = SubmissionPaths(zip_path)
    return paths.report, paths.report_dir


def fake_inputs(seed: int = 0) -> ReportInputs:
    rng = np.random.default_rng(seed)
    n = len(NAMES)

    def confusion(hit):
        matrix = rng.integers(0, 3, (n, n))
        np.fill_diagonal(matrix, hit)
        return matrix.tolist()

    def metrics(matrix):
        scores = per_class_scores(matrix)
        return {"n": int(np.sum(matrix)), "accuracy": float(np.trace(matrix) / np.sum(matrix)),
                "macro_precision": float(np.mean([s[0] for s in scores])),
                "macro_recall": float(np.mean([s[1] for s in scores])),
                "macro_f1": float(np.mean([s[2] for s in scores])),
                "confusion_matrix": matrix}

    clean, augmented = confusion(20), confusion(11)
    severities = [1, 2, 3, 4, 5]
    accuracy = {name: [round(0.9 - 0.07 * s * (k + 1) / len(CORRUPTIONS), 3)
                       for s in severities] for k, name in enumerate(CORRUPTIONS)}
    robustness = {"n": 24, "seed": 7, "severities": severities, "corruptions": list(accuracy),
                  "clean": 0.9, "mixed": 0.7, "mixed_policy": "mixed:n=2",
                  "accuracy": accuracy, "mean": {k: float(np.mean(v)) for k, v in accuracy.items()},
                  "severity_mean": [float(v) for v in np.mean(list(accuracy.values()), axis=0)],
                  "corrupted_mean": float(np.mean(list(accuracy.values()))),
                  "families": {family: list(members) for family, members in FAMILIES.items()},
                  "heldout_families": ["microscopy"], "heldout_mean": 0.654}
    epochs = 6
    history = {"head": {"loss": [2.0, 1.5, 1.2], "accuracy": [0.3, 0.45, 0.55],
                        "val_loss": [1.8, 1.4, 1.3], "val_accuracy": [0.35, 0.5, 0.52]},
               "finetune": {"loss": list(np.linspace(1.1, 0.4, epochs)),
                            "accuracy": list(np.linspace(0.6, 0.9, epochs)),
                            "val_loss": list(np.linspace(1.2, 0.6, epochs)),
                            "val_accuracy": list(np.linspace(0.55, 0.82, epochs))}}
    manifest = RunManifest(
        cbk_version="0.test", created="2025-01-01T00:00:00+00:00", seed=3,
        components={"backbone": [{"name": "cnn"}], "augmenter": [{"name": "flips"}],
                    "tta": [{"name": "flip-tta"}], "cleaner": [{"name": "dedupe"}]},
        num_classes=n, class_names=NAMES, image_shape=[32, 32, 3],
        data={"source": "demo(seed=3) <i>not italic</i>", "fingerprint": "sha256:abc",
              "images": 200, "class_counts": [25] * n, "after_cleaning": 196},
        cleaning=[{"name": "dedupe", "seen": 200, "removed": 4, "added": 0,
                   "weighted": False, "reasons": {"duplicate of <row 1>": 4}}],
        split={"train": 140, "validation": 28, "test": 28},
        heldout={"seed": 7, "policy": "mixed:n=2", "ops_per_image": 2, "images": 28},
        training={"weights": "none", "batch_size": 16, "precision": "float32",
                  "history": history, "seconds": 12.3, "backend": "tensorflow",
                  "device": "CPU (tensorflow)"},
        metrics={"clean_test": metrics(clean), "augmented_test": metrics(augmented),
                 "tta_gain": {"strategy": "flip-tta",
                              "clean_test": {"with": 0.9, "without": 0.88, "gain": 0.02},
                              "augmented_test": {"with": 0.7, "without": 0.72,
                                                 "gain": -0.02}}},
        robustness=robustness,
        libraries={"python": "3.x", "numpy": np.__version__},
    ).to_dict()
    images = rng.integers(0, 256, (200, 32, 32, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(n), 25)
    removed = [(5, "dedupe", "duplicate of <row 1>"), (9, "dedupe", "duplicate of <row 1>"),
               (11, "dedupe", "duplicate of <row 1>"), (30, "dedupe", "duplicate of <row 1>")]
    examples = [SaliencyExample(image=images[i], heat=rng.random((32, 32)).astype("float32"),
                                split=("clean", "augmented")[i % 2], index=i, true=i % n,
                                predicted=(i + 1) % n, confidence=0.6,
                                corruption="blur@3+noise@2" if i % 2 else "")
                for i in range(4)]
    kept = [25] * n
    kept[0] = 21
    return ReportInputs(manifest=manifest, images=images, labels=labels, removed=removed,
                        kept_counts=kept, saliency=Saliency(examples=examples, method="fake"))


@pytest.fixture(scope="module")
def fake_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "fake.zip"
    page = write_report(out, fake_inputs())
    return out, page


def test_every_section_is_there_with_its_pictures_embedded(fake_report):
    out, page = fake_report
    html_path, folder = report_files(out)
    assert page == html_path and page.name == "fake.report.html" and folder.name == "fake.report"
    text = page.read_text(encoding="utf-8")
    assert sections_of(text) == (EXPECTED_SECTIONS, EXPECTED_SECTIONS)
    pngs = sorted(p.name for p in folder.iterdir())
    assert pngs == ["class_counts.png", "confusion_augmented.png", "confusion_clean.png",
                    "removed.png", "robustness.png", "saliency_1.png", "saliency_2.png",
                    "saliency_3.png", "saliency_4.png", "training_curves.png"]
    sources = re.findall(r'src="([^"]*)"', text)
    assert len(sources) == len(pngs)
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in sources}
    assert embedded == {(folder / name).read_bytes() for name in pngs}
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "flip-tta" in text and "+0.020" in text and "-0.020" in text
    assert "blur@3+noise@2" in text
    assert "<b>microscopy</b> (held out)" in text and "<b>noise</b></td>" in text
    assert "figures are about corruptions the model never saw): <b>microscopy</b>, mean " \
           "<b>0.654</b>" in text
    assert sorted(p.name for p in out.parent.iterdir()) == ["fake.report", "fake.report.html"]


def test_text_is_escaped_and_nothing_is_fetched(fake_report):
    _, page = fake_report
    text = page.read_text(encoding="utf-8")
    assert "ig &lt;b&gt;&amp;amp;&lt;/b&gt;" in text and "<b>&amp;</b>" not in text
    assert "&lt;i&gt;not italic&lt;/i&gt;" in text and "<i>" not in text
    assert "duplicate of &lt;row 1&gt;" in text
    assert "<script" not in text.lower()
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', text, re.I)
    assert not re.search(r"url\(|@import|<link", text, re.I)


def test_an_existing_report_is_never_overwritten(fake_report):
    out, page = fake_report
    before = page.read_bytes()
    with pytest.raises(OutputExistsError):
        write_report(out, fake_inputs(seed=1))
    assert page.read_bytes() == before


def test_no_saliency_says_why(tmp_path):
    inputs = fake_inputs()
    inputs.saliency = Saliency(method="m", note="not available on this backend (torch)")
    inputs.removed = []
    text = write_report(tmp_path / "x.zip", inputs).read_text(encoding="utf-8")
    assert "not available on this backend (torch)" in text
    assert "Nothing was removed." in text
    assert not (tmp_path / "x.report" / "removed.png").exists()


def test_saliency_of_a_small_model_highlights_what_it_looks_at():
    """A model that only reads the top-left pixel: its gradients are there and only there."""
    from codabench_kit.backend import import_keras
    from codabench_kit.evaluation.heldout_sets import HeldoutSets, TestSet
    from codabench_kit.report.saliency import misclassified_saliency

    keras = import_keras()
    inputs = keras.Input((8, 8, 3))
    corner = keras.layers.Lambda(lambda x: x[:, 0, 0, :] / 255.0)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(corner))
    images = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    probabilities = np.asarray(model.predict(images.astype("float32"), verbose=0))
    labels = 1 - probabilities.argmax(-1)  # every image misclassified
    heldout = HeldoutSets(clean=TestSet(images, labels, probabilities),
                          augmented=TestSet(images, labels, probabilities),
                          corruptions=np.array(["blur@1"] * 6), seed=0, policy="mixed:n=2",
                          ops_per_image=2)
    result = misclassified_saliency(model, heldout, backend=keras.backend.backend(), limit=4,
                                    samples=2)
    assert [(e.split, e.index) for e in result.examples] == [
        ("clean", 0), ("augmented", 0), ("clean", 1), ("augmented", 1)]
    assert result.examples[1].corruption == "blur@1"
    for example in result.examples:  # blurred, so the corner's neighbours glow a little
        assert example.heat.shape == (8, 8) and example.heat[0, 0] == pytest.approx(1.0)
        assert example.heat.argmax() == 0 and example.heat[4:, 4:].max() < 1e-3
    assert "not available" in misclassified_saliency(model, heldout, backend="torch").note


def find_browser():
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def test_headless_chromium_renders_the_report(fake_report, tmp_path):
    browser = find_browser()
    if browser is None:
        reason = f"no headless browser on PATH (looked for {', '.join(BROWSERS)})"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    from PIL import Image

    _, page = fake_report
    shot = tmp_path / "report.png"
    started = time.perf_counter()
    run = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1280,4000", f"--screenshot={shot}", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180)
    print(f"{browser} took {time.perf_counter() - started:.1f} s")
    assert shot.is_file(), f"exit {run.returncode}\n{run.stdout}\n{run.stderr}"
    with Image.open(io.BytesIO(shot.read_bytes())) as image:
        assert image.size == (1280, 4000)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 500  # charts and pictures, not a blank page
    assert max(count for count, _ in colours) < 0.9 * 1280 * 4000


@pytest.mark.slow
def test_a_tiny_build_writes_its_report(tmp_path):
    from codabench_kit.cli import cli
    from test_roundtrip import TINY

    out = tmp_path / "tiny.zip"
    args = list(TINY)  # and a cleaner that removes something from the demo data
    args[args.index("--plugins") + 1] += ",dedupe,outliers"
    result = CliRunner().invoke(cli, ["build", *args, "--set", "outliers.share=0.05",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output + str(result.exception)
    page, folder = report_files(out)
    assert f"report: {page}" in result.stderr
    text = page.read_text(encoding="utf-8")
    assert sections_of(text) == (EXPECTED_SECTIONS, EXPECTED_SECTIONS)
    names = {p.name for p in folder.iterdir()}
    assert {"class_counts.png", "training_curves.png", "confusion_clean.png",
            "confusion_augmented.png", "robustness.png"} <= names
    assert "flip-tta" in text and "outlier (IsolationForest)" in text and "removed.png" in names
    assert "<b>microscopy</b> (held out)" in text
    assert ("saliency_1.png" in names) == ("no misclassified test image" not in text)
    sources = re.findall(r'src="([^"]*)"', text)
    assert len(sources) == len(names) and all(s.startswith("data:image/png;base64,")
                                               for s in sources)


@pytest.mark.parametrize("existing", ["page", "folder"])
def test_build_refuses_an_existing_report_before_any_work(tmp_path, existing):
    from codabench_kit.cli import cli
    from test_roundtrip import TINY

    page, folder = report_files(tmp_path / "sub.zip")
    if existing == "page":
        page.write_text("precious")
    else:
        folder.mkdir()
    result = CliRunner().invoke(cli, ["build", *TINY, "--out", str(tmp_path / "sub.zip")])
    assert result.exit_code == 1 and "already exists" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [(page if existing == "page"
                                                           else folder).name]
