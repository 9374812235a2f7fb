"""What ``cbk build`` is asked to do: :class:`BuildConfig`, the one source of the build's
defaults (the command line and ``cbk.toml`` read theirs from it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codabench_kit.cleaning.run import MAX_REMOVED_SHARE
from codabench_kit.evaluation.heldout import DEFAULT_POLICY


@dataclass
class BuildConfig:
    data: str | None = None
    """Training file (.npz) or class-folder tree; ``None`` uses the built-in demo data."""
    plugins: list[str] = field(default_factory=list)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``--set`` values: component or recipe section -> option -> value."""
    file_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The same from ``cbk.toml``; ``settings`` win."""
    out: str | None = None
    submissions_dir: str = "submissions"
    seed: int = 0
    weights: str | None = "none"
    """The backbone's weights: ``imagenet``, ``none`` or a weights file path."""
    epochs: int = 30
    """Most epochs of fine-tuning (or of training from scratch)."""
    head_epochs: int = 5
    """Most epochs of head-only training on a frozen pretrained backbone."""
    patience: int = 8
    """Early stopping: epochs without validation gain."""
    batch_size: int = 64
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    demo_per_class: int = 200
    max_removed_share: float = MAX_REMOVED_SHARE
    validate: bool = True
    keep_run: str | None = None
    """Also keep the trained run (weights, recipe, held-out sets) in this folder."""
    heldout_policy: str = DEFAULT_POLICY
    """How the held-out augmented test set is drawn (see
    :func:`codabench_kit.evaluation.heldout.parse_policy`)."""
    holdout_families: list[str] = field(default_factory=list)
    """Corruption families to keep out of training and test on; empty: every family no
    augmenter simulates (see :mod:`codabench_kit.evaluation.families`)."""


DEFAULTS = BuildConfig()
"""The build's defaults, for the command line's options and ``cbk init``."""


@dataclass
class BuildResult:
    zip_path: Path | None
    """The published submission; ``None`` when this backend cannot export (see run_path)."""
    manifest: dict
    run_path: Path | None = None
