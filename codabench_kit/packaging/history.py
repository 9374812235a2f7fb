"""``cbk history``: the local leaderboard of the submissions built into a folder.

One row per submission zip, read from the ``manifest.json`` inside it (components,
seed, clean and augmented-test accuracy) and from the build record beside it
(``<name>.build.json``: when it was built; see
:func:`codabench_kit.packaging.package.split_manifest`), best augmented-test accuracy
first. A zip without a build record takes its date from an older manifest's
``created`` or, failing that, from the file's modification time. Zips that cbk cannot
read (not a zip, no manifest, a manifest of another tool) are listed as skipped with the
reason; nothing here trains, imports TensorFlow or writes a file.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from codabench_kit.errors import HistoryError
from codabench_kit.packaging.paths import SubmissionPaths

MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 16 * 1024**2
"""A bigger ``manifest.json`` is not one cbk wrote; it is skipped unread."""


@dataclass(frozen=True)
class Submission:
    """One row of the leaderboard."""

    zip: str
    created: str | None
    """ISO 8601 date of the build, UTC; ``None`` when nothing tells it."""
    created_from: str
    """Where ``created`` comes from: ``build record``, ``manifest`` or ``file time``."""
    backbone: str
    components: dict[str, list[str]]
    """Names per kind: ``backbone``, ``augmenter``, ``tta``, ``cleaner``."""
    clean_accuracy: float | None
    augmented_accuracy: float | None
    seed: int | None = None
    ensemble: int | None = None
    """Members of an ensemble; ``None`` for a single model."""
    sha256: str = ""


@dataclass(frozen=True)
class Skipped:
    zip: str
    reason: str


@dataclass
class History:
    directory: Path
    submissions: list[Submission] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"dir": str(self.directory),
                "submissions": [asdict(s) for s in self.submissions],
                "skipped": [asdict(s) for s in self.skipped]}


class UnreadableSubmission(HistoryError):
    """One zip of the folder is not a submission cbk can list (it is skipped)."""


def read_history(directory: str | Path) -> History:
    """Every ``*.zip`` of ``directory`` (not its subfolders), best augmented-test
    accuracy first (see :func:`ranked`); unreadable zips go to ``skipped``.

    Raises :class:`HistoryError` when ``directory`` is missing or not a folder."""
    directory = Path(directory)
    if not directory.exists():
        raise HistoryError(f"expected a folder of submission zips; {directory} does not "
                           f"exist (build one with `cbk build`, or pass --dir)")
    if not directory.is_dir():
        raise HistoryError(f"expected a folder of submission zips; received the file "
                           f"{directory} (pass its folder with --dir)")
    history = History(directory)
    for path in sorted(directory.glob("*.zip")):
        if path.name.startswith(".") or not path.is_file():
            continue  # a build's partial file, or a folder named *.zip
        try:
            history.submissions.append(read_submission(path))
        except UnreadableSubmission as exc:
            history.skipped.append(Skipped(path.name, str(exc)))
    history.submissions = ranked(history.submissions)
    return history


def ranked(rows: list[Submission]) -> list[Submission]:
    """Best augmented-test accuracy first; ties: best clean accuracy, then newest, then
    by name. A missing accuracy ranks last."""
    def worst_last(value):
        return -value if value is not None else math.inf

    rows = sorted(rows, key=lambda row: row.zip)
    rows.sort(key=lambda row: row.created or "", reverse=True)  # stable: names stay ordered
    rows.sort(key=lambda row: (worst_last(row.augmented_accuracy),
                               worst_last(row.clean_accuracy)))
    return rows


def read_submission(path: str | Path) -> Submission:
    """The leaderboard row of one zip; :class:`UnreadableSubmission` says why not."""
    path = Path(path)
    manifest = read_manifest(path)
    components = manifest.get("components")
    metrics = manifest.get("metrics")
    if not isinstance(components, dict) or not isinstance(metrics, dict):
        raise UnreadableSubmission(
            f"{MANIFEST} is not a cbk manifest: expected 'components' and 'metrics'; "
            f"received keys {_some(sorted(manifest))}")
    names = {kind: _names(components.get(kind)) for kind in
             ("backbone", "augmenter", "tta", "cleaner")}
    digest = _sha256(path)
    created, created_from = _created(path, manifest, digest)
    ensemble = manifest.get("ensemble")
    return Submission(
        zip=path.name, created=created, created_from=created_from,
        backbone=_backbone(components.get("backbone")), components=names,
        clean_accuracy=_accuracy(metrics, "clean_test"),
        augmented_accuracy=_accuracy(metrics, "augmented_test"),
        seed=manifest.get("seed") if isinstance(manifest.get("seed"), int) else None,
        ensemble=(len(ensemble.get("members") or []) if isinstance(ensemble, dict) else None),
        sha256=digest)


def read_manifest(path: Path) -> dict:
    """The parsed ``manifest.json`` of the zip at ``path``."""
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo(MANIFEST)
            except KeyError:
                raise UnreadableSubmission(
                    f"no {MANIFEST} at its root: not a cbk submission") from None
            if info.file_size > MAX_MANIFEST_BYTES:
                raise UnreadableSubmission(
                    f"{MANIFEST} holds {info.file_size} bytes, more than a cbk manifest "
                    f"({MAX_MANIFEST_BYTES})")
            data = archive.read(info)
    except zipfile.BadZipFile as exc:
        raise UnreadableSubmission(f"not a readable zip ({exc})") from None
    except (OSError, RuntimeError, NotImplementedError, zlib.error, EOFError) as exc:
        # RuntimeError: encrypted; NotImplementedError: unknown compression
        raise UnreadableSubmission(f"{MANIFEST} cannot be read: {exc}") from None
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnreadableSubmission(f"{MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise UnreadableSubmission(f"{MANIFEST} is not a cbk manifest: expected a JSON "
                                   f"object; received {type(manifest).__name__}")
    return manifest


def _some(keys: list[str], most: int = 8) -> str:
    shown = ", ".join(keys[:most]) or "none"
    return shown + (f" and {len(keys) - most} more" if len(keys) > most else "")


def _names(specs) -> list[str]:
    if not isinstance(specs, list):
        return []
    return [str(s.get("name")) for s in specs if isinstance(s, dict) and s.get("name")]


def _backbone(specs) -> str:
    """``cnn``, or with its variant: ``mobilenet(v3small)``."""
    if not isinstance(specs, list) or not specs or not isinstance(specs[0], dict):
        return "?"
    spec = specs[0]
    options = spec.get("options") if isinstance(spec.get("options"), dict) else {}
    variant = options.get("variant")
    return f"{spec.get('name', '?')}({variant})" if variant else str(spec.get("name", "?"))


def _accuracy(metrics: dict, split: str) -> float | None:
    value = metrics.get(split, {}).get("accuracy") if isinstance(metrics.get(split), dict) else None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        return None
    return float(value)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise UnreadableSubmission(f"cannot be read: {exc}") from None
    return digest.hexdigest()


def _created(path: Path, manifest: dict, digest: str) -> tuple[str | None, str]:
    """The build date: the build record's (when it describes these very bytes), an
    older manifest's ``created``, or the zip's modification time."""
    record_path = SubmissionPaths(path).build_record
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        record = None
    if (isinstance(record, dict) and isinstance(record.get("created"), str)
            and record.get("sha256") in (None, digest)):
        return record["created"], "build record"
    if isinstance(manifest.get("created"), str):  # older zips kept the date inside
        return manifest["created"], "manifest"
    try:
        modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    except OSError:
        return None, "unknown"
    return modified.isoformat(timespec="seconds"), "file time"


def table_lines(history: History) -> list[str]:
    """The leaderboard as a fixed-width table (none without submissions), then one
    line per skipped zip."""
    lines = []
    if history.submissions:
        rows = [("#", "date (UTC)", "zip", "backbone", "augmenters", "tta", "clean",
                 "augmented")]
        for rank, row in enumerate(history.submissions, 1):
            backbone = row.backbone + (f" x{row.ensemble}" if row.ensemble else "")
            rows.append((str(rank), _short_date(row.created, row.created_from), row.zip,
                         backbone, ",".join(row.components["augmenter"]) or "-",
                         ",".join(row.components["tta"]) or "-",
                         _percent(row.clean_accuracy), _percent(row.augmented_accuracy)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        right = {0, 6, 7}
        lines = ["  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                           for i, (cell, w) in enumerate(zip(r, widths))).rstrip()
                 for r in rows]
    if any(row.created_from == "file time" for row in history.submissions):
        lines.append("* date of the file: no build record beside the zip")
    for skipped in history.skipped:
        lines.append(f"skipped {skipped.zip}: {skipped.reason}")
    return lines


def _short_date(created: str | None, source: str) -> str:
    if not created:
        return "?"
    try:
        moment = datetime.fromisoformat(created)
    except ValueError:
        return created
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return f"{moment:%Y-%m-%d %H:%M}" + ("*" if source == "file time" else "")


def _percent(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"
