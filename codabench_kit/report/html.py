"""The build report: one self-contained HTML page beside the zip, and its pictures.

``<name>.report.html`` (every picture embedded as a ``data:`` URI, no script, nothing
fetched) and ``<name>.report/`` (the same pictures as PNG files) beside ``<name>.zip``:
the data and its class counts, what cleaning removed (with the removed images), the
training curves, the confusion matrices and per-class precision/recall/F1 on the clean
and augmented test sets, the robustness table and chart, the TTA gain, and gradient
saliency maps of misclassified test images.

Like the robustness chart, the report is written only after the zip is published and
never overwrites: the folder is filled under a temporary name and renamed, then the page
is written (see :func:`codabench_kit.packaging.bundle.write_new_file`).
"""

from __future__ import annotations

import base64
import html
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from codabench_kit.evaluation.heldout_sets import HeldoutSets
from codabench_kit.packaging.bundle import ensure_absent, write_new_file
from codabench_kit.packaging.paths import SubmissionPaths
from codabench_kit.report.saliency import Saliency

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;
margin:0;background:#f4f5f7;color:#1d2330;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px 32px 48px;background:#fff}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:20px;margin:36px 0 10px;
padding-top:10px;border-top:2px solid #e3e6ec}h3{font-size:15px;margin:18px 0 6px}
nav{font-size:14px;margin:10px 0 0}nav a{margin-right:14px;color:#1f5fa8}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px}
th,td{border:1px solid #d8dce3;padding:3px 9px;text-align:right}
th{background:#eef1f6}td.l,th.l{text-align:left}th[colspan]{text-align:center}
.kpi{display:flex;gap:14px;flex-wrap:wrap;margin:14px 0}
.kpi div{background:#eef4fb;border-radius:6px;padding:8px 14px;min-width:150px}
.kpi b{display:block;font-size:22px}.muted{color:#667085;font-size:13px}
img{max-width:100%;height:auto;border:1px solid #e3e6ec}
.row{display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start}
figure{margin:8px 0}figcaption{font-size:12px;color:#475467;max-width:496px}
.note{background:#fff8e6;border-left:4px solid #f0b429;padding:6px 12px;font-size:14px}
"""
SECTIONS = (("data", "Data"), ("cleaning", "Cleaning"), ("training", "Training"),
            ("confusion", "Confusion matrices"), ("per-class", "Per-class scores"),
            ("robustness", "Robustness"), ("tta", "TTA gain"), ("saliency", "Saliency"))


@dataclass
class ReportInputs:
    """What the report shows. ``manifest``: the build's (see ``cbk build``)."""

    manifest: dict
    images: np.ndarray | None = None
    """The data before cleaning (rows of ``removed`` index it); for the removed grid."""
    labels: np.ndarray | None = None
    removed: list = field(default_factory=list)
    """``(row, cleaner, reason)`` per removed image."""
    kept_counts: list[int] | None = None
    """Images per class after cleaning."""
    saliency: Saliency | None = None


def write_build_report(zip_path: Path, manifest: dict, *, dataset, outcome, heldout: HeldoutSets,
                       classifier, progress: Callable[[str], None] = lambda s: None) -> Path:
    """The report of a finished ``cbk build`` (call it after the zip is published);
    returns the HTML page's path."""
    from codabench_kit.backend import import_keras
    from codabench_kit.report.saliency import misclassified_saliency

    saliency = misclassified_saliency(classifier, heldout,
                                      backend=import_keras().backend.backend())
    progress(f"report: saliency maps of {len(saliency.examples)} misclassified test images"
             if saliency.examples else f"report: no saliency maps ({saliency.note})")
    kept = np.bincount(np.asarray(dataset.labels)[outcome.index],
                       minlength=int(dataset.num_classes))
    return write_report(zip_path, ReportInputs(
        manifest=manifest, images=dataset.images, labels=dataset.labels,
        removed=list(outcome.removed), kept_counts=[int(v) for v in kept], saliency=saliency))


def write_report(zip_path: Path, inputs: ReportInputs) -> Path:
    """Write the report of ``inputs`` beside ``zip_path``; returns the HTML page's path.
    Refuses existing paths; leaves nothing half-written."""
    paths = SubmissionPaths(zip_path)
    page, folder = paths.report, paths.report_dir
    ensure_absent(page)
    ensure_absent(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial",
                                    dir=folder.parent))
    try:
        pictures = _draw(inputs, partial)
        text = render_html(inputs, pictures, folder.name)
        ensure_absent(folder)
        os.rename(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    try:
        write_new_file(page, lambda temporary: temporary.write_text(text, encoding="utf-8"))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # no pictures without their page
        raise
    return page


def _draw(inputs: ReportInputs, folder: Path) -> dict[str, bytes]:
    """Save every picture into ``folder``; return ``{file name: PNG bytes}``."""
    from codabench_kit.report import figures
    from codabench_kit.report.removed_grid import removed_grid
    from codabench_kit.report.chart import draw_chart

    m = inputs.manifest
    names = list(m.get("class_names") or [])
    drawn = {}
    counts = (m.get("data") or {}).get("class_counts")
    if counts:
        drawn["class_counts.png"] = figures.class_counts_chart(
            names or [str(i) for i in range(len(counts))], counts, inputs.kept_counts)
    history = (m.get("training") or {}).get("history") or {}
    drawn["training_curves.png"] = figures.training_curves_chart(history)
    metrics = m.get("metrics") or {}
    for split, title in (("clean_test", "clean test set"),
                         ("augmented_test", "augmented test set")):
        if split in metrics:
            matrix = metrics[split]["confusion_matrix"]
            drawn[f"confusion_{split.split('_')[0]}.png"] = figures.confusion_chart(
                matrix, names or [str(i) for i in range(len(matrix))],
                f"Confusion matrix, {title} ({metrics[split]['n']} images)")
    if m.get("robustness"):
        drawn["robustness.png"] = draw_chart(m["robustness"])
    for k, example in enumerate(inputs.saliency.examples if inputs.saliency else []):
        drawn[f"saliency_{k + 1}.png"] = figures.saliency_panel(example.image, example.heat)
    for name, image in drawn.items():
        image.save(folder / name, format="PNG")
    if inputs.removed and inputs.images is not None:
        removed_grid(inputs.images, inputs.labels, names, inputs.removed,
                     folder / "removed.png")
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.png"))}


# --- HTML ----------------------------------------------------------------------------

def esc(value) -> str:
    return html.escape(str(value), quote=True)


def _number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else esc(value)


def _image(pictures: dict[str, bytes], name: str, alt: str, folder: str,
           width: int | None = None) -> str:
    if name not in pictures:
        return f'<p class="note">{esc(alt)}: no picture</p>'
    data = base64.b64encode(pictures[name]).decode("ascii")
    style = f' style="max-width:{width}px"' if width else ""
    return (f'<figure{style}><img src="data:image/png;base64,{data}" alt="{esc(alt)}">'
            f'<figcaption>{esc(alt)} ({esc(folder + "/" + name)})</figcaption></figure>')


def _table(header, rows, left: int = 1) -> str:
    """``rows`` of already-escaped cells (strings); the first ``left`` columns left-aligned."""
    head = "".join(f'<th class="l">{h}</th>' if i < left else f"<th>{h}</th>"
                   for i, h in enumerate(header or ()))
    body = "".join("<tr>" + "".join(f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def _shade(value) -> str:
    """A cell's background by accuracy: red (0.5 or less) to yellow (0.75) to green (1)."""
    if value is None or value != value:
        return ""
    return f' style="background:hsl({240 * max(0.0, min(0.5, value - 0.5)):.0f},65%,85%)"'


def per_class_scores(matrix) -> list[tuple[float, float, float, int]]:
    """``(precision, recall, F1, support)`` per class from a confusion matrix (rows: true)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    hits = np.diag(matrix)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(hits), where=total > 0)
    return [(float(p), float(r), float(f), int(n))
            for p, r, f, n in zip(precision, recall, f1, support)]


def render_html(inputs: ReportInputs, pictures: dict[str, bytes], folder: str) -> str:
    """The page: every text escaped, every picture a ``data:`` URI."""
    m = inputs.manifest
    name = folder[:-len(".report")] if folder.endswith(".report") else folder
    metrics = m.get("metrics") or {}
    kpis = []
    for split, label in (("clean_test", "clean test accuracy"),
                         ("augmented_test", "augmented test accuracy")):
        if split in metrics:
            kpis.append(f"<div>{esc(label)}<b>{_number(metrics[split]['accuracy'])}</b>"
                        f"<span class=muted>macro F1 {_number(metrics[split]['macro_f1'])}"
                        f"</span></div>")
    components = m.get("components") or {}
    used = ", ".join(f"{kind}: {'+'.join(c['name'] for c in items)}"
                     for kind, items in components.items() if items)
    training = m.get("training") or {}
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc('cbk build report: ' + name)}</title>",
        f"<style>{STYLE}</style></head><body><main>",
        f"<h1>Build report: {esc(name)}.zip</h1>",
        f'<p class="muted">{esc(m.get("created", ""))} &middot; cbk '
        f'{esc(m.get("cbk_version", "?"))} &middot; seed {esc(m.get("seed", "?"))} &middot; '
        f'{esc(used)} &middot; keras on {esc(training.get("backend", "?"))}, '
        f'{esc(training.get("device", "?"))}</p>',
        f'<div class="kpi">{"".join(kpis)}</div>',
        "<nav>" + "".join(f'<a href="#{key}">{esc(title)}</a>' for key, title in SECTIONS)
        + "</nav>",
        _data_section(m, inputs, pictures, folder),
        _cleaning_section(m, inputs, pictures, folder),
        _training_section(m, pictures, folder),
        _confusion_section(metrics, pictures, folder),
        _per_class_section(m, metrics),
        _robustness_section(m.get("robustness"), pictures, folder),
        _tta_section(metrics.get("tta_gain")),
        _saliency_section(inputs.saliency, list(m.get("class_names") or []), pictures, folder),
        _libraries(m.get("libraries") or {}),
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _section(key: str, body: str) -> str:
    title = dict(SECTIONS)[key]
    return f'<section id="{key}"><h2>{esc(title)}</h2>{body}</section>'


def _data_section(m, inputs, pictures, folder) -> str:
    data, split, heldout = m.get("data") or {}, m.get("split") or {}, m.get("heldout") or {}
    names = list(m.get("class_names") or [])
    facts = [("source", data.get("source")), ("fingerprint", data.get("fingerprint")),
             ("image shape", " x ".join(str(v) for v in m.get("image_shape", []))),
             ("classes", m.get("num_classes")), ("images", data.get("images")),
             ("after cleaning", data.get("after_cleaning")),
             ("split", f"{split.get('train')} train, {split.get('validation')} validation, "
                       f"{split.get('test')} test"),
             ("held-out augmented test set", f"{heldout.get('policy')}: "
                                             f"{heldout.get('images')} images, seed "
                                             f"{heldout.get('seed')}")]
    counts = data.get("class_counts") or []
    kept = inputs.kept_counts
    rows = [[esc(names[i] if i < len(names) else i), esc(c)]
            + ([esc(kept[i])] if kept else []) for i, c in enumerate(counts)]
    body = (_table(None, [[esc(k), esc(v)] for k, v in facts], left=2)
            + '<h3>Class counts</h3><div class="row"><div>'
            + _table(["class", "images"] + (["after cleaning"] if kept else []), rows)
            + "</div>" + _image(pictures, "class_counts.png", "Images per class", folder)
            + "</div>")
    return _section("data", body)


def _cleaning_section(m, inputs, pictures, folder) -> str:
    reports = m.get("cleaning") or []
    rows = [[esc(r["name"]),
             esc(", ".join(f"{n} {why}" for why, n in r.get("reasons", {}).items()) or "-"),
             esc(r["seen"]), esc(r["removed"]), esc(r.get("added", 0)),
             esc("yes" if r.get("weighted") else "no")] for r in reports]
    body = (_table(["cleaner", "reasons", "seen", "removed", "rows added", "class weights"],
                   rows, left=2) if rows else '<p class="note">No cleaner ran.</p>')
    if inputs.removed:
        body += (f"<h3>Removed images ({len(inputs.removed)})</h3>"
                 + _image(pictures, "removed.png", "Removed images, by reason", folder))
    else:
        body += "<p>Nothing was removed.</p>"
    return _section("cleaning", body)


def _training_section(m, pictures, folder) -> str:
    training = m.get("training") or {}
    history = training.get("history") or {}
    rows = []
    for phase, values in history.items():
        if isinstance(values, dict) and values:
            epochs = max(len(v) for v in values.values())
            last = {k: (v[-1] if v else None) for k, v in values.items()}
            rows.append([esc(phase), esc(epochs)] + [_number(last.get(k)) for k in
                        ("loss", "accuracy", "val_loss", "val_accuracy")])
    facts = (f"{esc(training.get('weights', '?'))} weights, batch size "
             f"{esc(training.get('batch_size', '?'))}, {esc(training.get('precision', '?'))} "
             f"precision, {_number(training.get('seconds'), 1)} s")
    body = (f"<p>{facts}</p>"
            + _table(["phase", "epochs", "loss", "accuracy", "val loss", "val accuracy"], rows)
            + '<p class="muted">Last epoch of each phase.</p>'
            + _image(pictures, "training_curves.png", "Training curves", folder))
    return _section("training", body)


def _confusion_section(metrics, pictures, folder) -> str:
    body = ('<p class="muted">Rows: true class; columns: predicted class; shade: share of '
            'the true class.</p><div class="row">'
            + _image(pictures, "confusion_clean.png", "Clean test set", folder)
            + _image(pictures, "confusion_augmented.png", "Augmented test set", folder)
            + "</div>")
    return _section("confusion", body)


def _per_class_section(m, metrics) -> str:
    names = list(m.get("class_names") or [])
    scores = {split: per_class_scores(metrics[split]["confusion_matrix"])
              for split in ("clean_test", "augmented_test") if split in metrics}
    if not scores:
        return _section("per-class", '<p class="note">No test metrics.</p>')
    n = max(len(v) for v in scores.values())
    groups = "".join(f'<th colspan="4">{esc(split.replace("_", " "))}</th>' for split in scores)
    header = ["class"] + ["precision", "recall", "F1", "support"] * len(scores)
    rows = []
    for i in range(n):
        row = [esc(names[i] if i < len(names) else i)]
        for split in scores:
            p, r, f, support = scores[split][i]
            row += [_number(p), _number(r), f"<b>{_number(f)}</b>", esc(support)]
        rows.append(row)
    macro = ["<b>macro</b>"]
    for split in scores:
        s = metrics[split]
        macro += [_number(s["macro_precision"]), _number(s["macro_recall"]),
                  f"<b>{_number(s['macro_f1'])}</b>", esc(s["n"])]
    table = _table(header, rows + [macro]).replace("<table>", f"<table><tr><th></th>{groups}</tr>",
                                                     1)
    return _section("per-class", table)


def _robustness_section(report, pictures, folder) -> str:
    if not report:
        return _section("robustness", '<p class="note">No robustness report.</p>')
    header = ["corruption"] + [f"severity {s}" for s in report["severities"]] + ["mean"]
    table = _shade_table(header, report)
    held = report.get("heldout_families") or []
    if held:
        heldout = (f"<p>Held out (no augmenter of this build simulates them, so these "
                   f"figures are about corruptions the model never saw): "
                   f"<b>{esc(', '.join(held))}</b>, mean "
                   f"<b>{_number(report.get('heldout_mean'))}</b>.</p>")
    elif report.get("families"):
        heldout = ('<p class="note">No family is held out: training simulated every one, '
                   'so this table measures corruptions the model trained on.</p>')
    else:
        heldout = ""
    body = (f"<p>Accuracy on {esc(report['n'])} clean test images per corruption and "
            f"severity (seed {esc(report['seed'])}): clean {_number(report['clean'])}, "
            f"{esc(report.get('mixed_policy', 'mixed'))} held-out {_number(report['mixed'])}, "
            f"all corruptions {_number(report.get('corrupted_mean'))}.</p>"
            + heldout + table + _image(pictures, "robustness.png", "Accuracy vs severity", folder,
                                  width=820))
    return _section("robustness", body)


def _shade_table(header, report) -> str:
    head = "".join(f'<th class="l">{esc(h)}</th>' if i == 0 else f"<th>{esc(h)}</th>"
                   for i, h in enumerate(header))
    body = []
    families = report.get("families") or {"": report.get("corruptions")
                                          or list(report["accuracy"])}
    held = set(report.get("heldout_families") or ())
    width = len(header)
    for family, names in families.items():
        if family:
            mark = " (held out)" if family in held else ""
            body.append(f'<tr><td class="l" colspan="{width}"><b>{esc(family)}</b>'
                        f'{esc(mark)}</td></tr>')
        body += _corruption_rows(report, names)
    means = [*report.get("severity_mean", []), report.get("corrupted_mean")]
    body.append('<tr><td class="l"><b>all corruptions</b></td>'
                + "".join(f"<td{_shade(v)}><b>{_number(v)}</b></td>" for v in means) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _corruption_rows(report, names) -> list[str]:
    rows = []
    for name in names:
        values = [*report["accuracy"][name], report["mean"][name]]
        rows.append(f'<tr><td class="l">{esc(name)}</td>'
                    + "".join(f"<td{_shade(v)}>{_number(v)}</td>" for v in values) + "</tr>")
    return rows


def _tta_section(gain) -> str:
    if not gain:
        return _section("tta", '<p class="note">No TTA (no-tta): nothing to compare.</p>')
    rows = [[esc(split.replace("_", " ")), _number(gain[split]["with"]),
             _number(gain[split]["without"]),
             f"<span{_gain_colour(gain[split]['gain'])}>{gain[split]['gain']:+.3f}</span>"]
            for split in ("clean_test", "augmented_test") if split in gain]
    aug = gain.get("augmented_test", {}).get("gain", 0.0)
    verdict = "it helps" if aug > 0 else "it hurts" if aug < 0 else "it does not help"
    body = (f"<p>Accuracy with TTA <b>{esc(gain.get('strategy'))}</b> and without (the "
            f"classifier alone): on the augmented test set {esc(verdict)}.</p>"
            + _table(["test set", "with TTA", "without", "gain"], rows))
    return _section("tta", body)


def _gain_colour(value: float) -> str:
    return ' style="color:#137333"' if value > 0 else ' style="color:#b3261e"' if value < 0 \
        else ""


def _saliency_section(saliency, names, pictures, folder) -> str:
    if saliency is None:
        return _section("saliency", '<p class="note">Saliency maps were not computed.</p>')
    body = f'<p class="muted">{esc(saliency.method)}.</p>' if saliency.method else ""
    if not saliency.examples:
        return _section("saliency", body + f'<p class="note">{esc(saliency.note)}</p>')

    def cls(i):
        return names[i] if 0 <= i < len(names) else str(i)

    figures = []
    for k, e in enumerate(saliency.examples):
        caption = (f"{e.split} test image #{e.index}: true {cls(e.true)}, predicted "
                   f"{cls(e.predicted)} ({e.confidence:.0%})"
                   + (f", corruptions {e.corruption}" if e.corruption else ""))
        figure = _image(pictures, f"saliency_{k + 1}.png", caption, folder)
        figures.append(figure)
    return _section("saliency", body + '<div class="row">' + "".join(figures) + "</div>")


def _libraries(libraries: dict) -> str:
    text = ", ".join(f"{k} {v}" for k, v in sorted(libraries.items()))
    return f'<p class="muted" style="margin-top:36px">Libraries: {esc(text)}</p>'
