"""Datasets for the learning-rule experiments, all offline and deterministic.

Synthetic (DRTP paper) and package-bundled sets are built in memory; MNIST, Fashion-MNIST
and CIFAR-10 are read from files the user supplies, never downloaded.
"""

from sim.data.dataset import Dataset
from sim.data.registry import DATASET_NAMES, load_dataset

__all__ = ["DATASET_NAMES", "Dataset", "load_dataset"]
