"""Data: IDX files, named data sets, the user's arrays, binarization, noise and mini-batches."""

from .batching import iterate_minibatches
from .binarize import binarize
from .dataset import DATASETS, Dataset, load, load_dataset
from .idx import read_idx, write_idx
from .noise import NOISE_KINDS, corrupt
from .split import split_indices

__all__ = [
    "DATASETS",
    "NOISE_KINDS",
    "Dataset",
    "binarize",
    "corrupt",
    "iterate_minibatches",
    "load",
    "load_dataset",
    "read_idx",
    "split_indices",
    "write_idx",
]
