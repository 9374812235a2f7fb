"""codabench-kit: from a competition's training file to a Codabench submission that runs.

The package root stays light: importing it never imports TensorFlow or Keras, so
``cbk --help`` and ``cbk plugins`` answer at once.
"""

import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "codabench_kit"
"""One name everywhere: pluggy marker project, entry-point group and import package."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["__version__", "hookimpl", "hookspec", "PROJECT_NAME"]
