"""``cbk build`` as a library: :func:`run_build` with a :class:`BuildConfig`."""

from codabench_kit.build.config import BuildConfig, BuildResult
from codabench_kit.build.run import run_build

__all__ = ["BuildConfig", "BuildResult", "run_build"]
