"""MNIST-format IDX files (MNIST, Fashion-MNIST) supplied by the user, plain or gzipped.

The header is parsed here rather than by a download helper so that a bad file yields an
error naming that file and the defect, and so that nothing is ever fetched.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from quant.errors import DatasetError
from sim.data._files import check_labels, data_dir
from sim.data.dataset import Dataset

IMAGE_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABEL_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
IMAGE_HEADER = 16
LABEL_HEADER = 8
SIDE = 28
NUM_CLASSES = 10

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
EXPECTED = (
    ", ".join(name for pair in SPLIT_FILES.values() for name in pair)
    + " (each optionally gzipped, with a .gz suffix)"
)


def _locate(directory: Path, name: str) -> Path:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{directory / name}: missing file (looked for {name} and {name}.gz)")


def _read(path: Path) -> bytes:
    try:
        return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc


def _header(path: Path, data: bytes, size: int, magic: int, kind: str) -> tuple[int, ...]:
    if len(data) < size:
        raise DatasetError(
            f"{path}: truncated: an IDX {kind} header needs {size} bytes, file has {len(data)}"
        )
    fields = struct.unpack(f">{size // 4}I", data[:size])
    if fields[0] != magic:
        raise DatasetError(
            f"{path}: bad magic number 0x{fields[0]:08x}, expected 0x{magic:08x} (IDX {kind})"
        )
    return fields[1:]


def _check_size(path: Path, data: bytes, expected: int, promise: str) -> None:
    if len(data) < expected:
        raise DatasetError(
            f"{path}: truncated: header promises {promise} ({expected} bytes), "
            f"file has {len(data)} bytes"
        )
    if len(data) > expected:
        raise DatasetError(
            f"{path}: {len(data) - expected} unexpected trailing bytes: header promises "
            f"{promise} ({expected} bytes), file has {len(data)} bytes"
        )


def read_images(path: Path) -> np.ndarray:
    """Images as float32 (N, 1, 28, 28) in [0, 1]."""
    data = _read(path)
    count, rows, cols = _header(path, data, IMAGE_HEADER, IMAGE_MAGIC, "images")
    if (rows, cols) != (SIDE, SIDE):
        raise DatasetError(f"{path}: images are {rows}x{cols}, expected {SIDE}x{SIDE}")
    expected = IMAGE_HEADER + count * rows * cols
    _check_size(path, data, expected, f"{count} images of {rows}x{cols}")
    pixels = np.frombuffer(data, dtype=np.uint8, offset=IMAGE_HEADER)
    return (pixels.reshape(count, 1, rows, cols) / 255.0).astype(np.float32)


def read_labels(path: Path) -> np.ndarray:
    """Labels as int64 (N,), each checked to lie in 0..9."""
    data = _read(path)
    (count,) = _header(path, data, LABEL_HEADER, LABEL_MAGIC, "labels")
    _check_size(path, data, LABEL_HEADER + count, f"{count} labels")
    labels = np.frombuffer(data, dtype=np.uint8, offset=LABEL_HEADER).astype(np.int64)
    check_labels(path, labels, NUM_CLASSES)
    return labels


def _split(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = (_locate(directory, name) for name in SPLIT_FILES[split])
    images, labels = read_images(images_path), read_labels(labels_path)
    if len(images) != len(labels):
        raise DatasetError(
            f"{labels_path}: count mismatch: {len(labels)} labels for {len(images)} images "
            f"in {images_path}"
        )
    return images, labels


def load_idx(name: str, root: str | os.PathLike | None) -> Dataset:
    """Load the four standard IDX files of MNIST or Fashion-MNIST from directory `root`."""
    directory = data_dir(name, root, EXPECTED)
    x_train, y_train = _split(directory, "train")
    x_test, y_test = _split(directory, "test")
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=NUM_CLASSES,
        task="classification",
        input_shape=(1, SIDE, SIDE),
    )
