"""CIFAR-10 in its "python version" layout, supplied by the user.

Batches are pickles, and unpickling runs code chosen by whoever wrote the file: load only
files from a trusted source (the official archive).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from quant.errors import DatasetError
from sim.data._files import check_labels, data_dir
from sim.data.dataset import Dataset

SUBDIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
IMAGE_SHAPE = (3, 32, 32)
ROW_SIZE = 3 * 32 * 32
NUM_CLASSES = 10
EXPECTED = (
    f"{', '.join(TRAIN_BATCHES)} and {TEST_BATCH} (directly or under {SUBDIR}/), "
    "the python batches of the official CIFAR-10 archive"
)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch as float32 (N, 3, 32, 32) images in [0, 1] and int64 (N,) labels.

    Each row of b"data" holds the red plane, then green, then blue, each 32x32 row-major,
    so a plain reshape gives channel-first images.
    """
    if not path.is_file():
        raise DatasetError(f"{path}: missing file; expected {EXPECTED}")
    try:
        with path.open("rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except Exception as exc:  # a malformed pickle can raise almost any exception type
        raise DatasetError(f"{path}: cannot unpickle: {type(exc).__name__}: {exc}") from exc
    if not isinstance(batch, dict):
        raise DatasetError(f"{path}: expected a pickled dict, got {type(batch).__name__}")
    for key in (b"data", b"labels"):
        if key not in batch:
            raise DatasetError(f"{path}: missing key {key!r}; keys present: {list(batch)}")
    data = batch[b"data"]
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == ROW_SIZE
    ):
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(
            f"{path}: wrong data shape: b'data' must be a uint8 array of shape (N, {ROW_SIZE}), "
            f"got {got}"
        )
    labels = np.asarray(batch[b"labels"])
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(
            f"{path}: b'labels' must be a flat list of integers, got {labels.dtype} "
            f"of shape {labels.shape}"
        )
    if len(labels) != len(data):
        raise DatasetError(
            f"{path}: length mismatch: {len(data)} images in b'data', {len(labels)} labels"
        )
    check_labels(path, labels, NUM_CLASSES)
    images = (data.reshape(-1, *IMAGE_SHAPE) / 255.0).astype(np.float32)
    return images, labels.astype(np.int64)


def load_cifar10(root: str | os.PathLike | None) -> Dataset:
    """Load data_batch_1..5 and test_batch from `root` or `root/cifar-10-batches-py`."""
    directory = data_dir("cifar10", root, EXPECTED)
    if (directory / SUBDIR).is_dir():
        directory = directory / SUBDIR
    train = [read_batch(directory / name) for name in TRAIN_BATCHES]
    x_test, y_test = read_batch(directory / TEST_BATCH)
    return Dataset(
        name="cifar10",
        x_train=np.concatenate([x for x, _ in train]),
        y_train=np.concatenate([y for _, y in train]),
        x_test=x_test,
        y_test=y_test,
        num_classes=NUM_CLASSES,
        task="classification",
        input_shape=IMAGE_SHAPE,
    )
