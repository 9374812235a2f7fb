"""Every file cbk writes beside a submission zip, named from the zip's path in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from codabench_kit.packaging.bundle import ensure_absent


@dataclass(frozen=True)
class SubmissionPaths:
    """``sub.zip`` and what stands beside it: ``sub.heldout.npz``, ``sub.build.json``,
    ``sub.robustness.png``, ``sub.report.html`` with ``sub.report/``, ``sub.log`` and,
    when a run is kept there, ``sub.run/``."""

    zip: Path

    def __post_init__(self):
        object.__setattr__(self, "zip", Path(self.zip))

    def _beside(self, suffix: str) -> Path:
        return self.zip.with_name(self.zip.stem + suffix)

    @property
    def heldout(self) -> Path:
        """The test sets and the shipped model's predictions (``cbk validate --data``)."""
        return self._beside(".heldout.npz")

    @property
    def build_record(self) -> Path:
        """When, how long and from where: what the zip leaves out to stay reproducible."""
        return self._beside(".build.json")

    @property
    def chart(self) -> Path:
        """The robustness chart (accuracy per corruption and severity)."""
        return self._beside(".robustness.png")

    @property
    def report(self) -> Path:
        """The HTML build report."""
        return self._beside(".report.html")

    @property
    def report_dir(self) -> Path:
        """The report's PNG files."""
        return self._beside(".report")

    @property
    def log(self) -> Path:
        """The build's progress lines with their times (written by the CLI)."""
        return self._beside(".log")

    @property
    def run(self) -> Path:
        """The trained run, when the build keeps it (``--keep-run``, or no TensorFlow here)."""
        return self._beside(".run")

    def outputs(self) -> tuple[Path, ...]:
        """Every path a build may write, the zip first (not the run: it has its own flag)."""
        return (self.zip, self.heldout, self.build_record, self.chart, self.report,
                self.report_dir, self.log)

    def ensure_absent(self) -> None:
        """Refuse, before any work, if any of :meth:`outputs` exists: cbk never overwrites."""
        for path in self.outputs():
            ensure_absent(path)
