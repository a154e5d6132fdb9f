"""Checks shared by the loaders of user-supplied dataset files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from quant.errors import DatasetError


def data_dir(name: str, root: str | os.PathLike | None, expected: str) -> Path:
    """The directory `root` as a Path, or a DatasetError telling the user what to provide."""
    if root is None:
        raise DatasetError(
            f"{name}: no data directory given (--data-root, or root= in Python); pass a "
            f"directory holding {expected}. plasticore never downloads datasets."
        )
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise DatasetError(f"{path}: not a directory; {name} expects it to hold {expected}")
    return path


def check_labels(path: Path, labels: np.ndarray, num_classes: int) -> None:
    """Reject labels outside [0, num_classes), naming the first offending index and value."""
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise DatasetError(
            f"{path}: label out of range: {bad.size} labels outside 0..{num_classes - 1}, "
            f"first is {labels[i]} at index {i}"
        )
