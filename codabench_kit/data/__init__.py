"""Training data: the :class:`Dataset` every stage works on, how to load one, and a demo set."""

from codabench_kit.data.dataset import AN2DL_CLASS_NAMES, Dataset
from codabench_kit.data.demo import demo_dataset
from codabench_kit.data.loading import load_dataset

__all__ = ["AN2DL_CLASS_NAMES", "Dataset", "demo_dataset", "load_dataset"]
