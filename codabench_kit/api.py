"""The public API for plugin authors: what a codabench-kit plugin imports, from one place.

::

    from codabench_kit.api import Augmenter, OptionError, check_unit, hookimpl

    @hookimpl
    def register_augmenters(register):
        register("my-aug", MyAug, description="...")   # options from MyAug's signature

Importing this module never imports TensorFlow or Keras: the classes that compute
import them when they run. The built-in plugins (``codabench_kit.plugins``) use this
module too, exactly as a third-party plugin would.
"""

from codabench_kit import hookimpl
from codabench_kit.cleaning.run import CleanResult
from codabench_kit.components.checks import check_choice, check_int, check_positive, check_unit
from codabench_kit.components.plugin_manager import get_plugin_manager
from codabench_kit.components.registry import Component, Register, Registry
from codabench_kit.data.dataset import Dataset
from codabench_kit.errors import (BuildError, CbkError, DataError, OptionError, PluginError,
                                  UnknownComponentError)
from codabench_kit.training.augmenter import Augmenter


def get_registry() -> Registry:
    """Every component of the installed plugins, built-ins included, by name (a new
    registry each call): ``get_registry().get("my-aug").create(seed=0)``."""
    return Registry.from_plugin_manager(get_plugin_manager())


__all__ = [
    "Augmenter", "BuildError", "CbkError", "CleanResult", "Component", "DataError",
    "Dataset", "OptionError", "PluginError", "Register", "Registry",
    "UnknownComponentError", "check_choice", "check_int", "check_positive", "check_unit",
    "get_plugin_manager",
    "get_registry", "hookimpl",
]
