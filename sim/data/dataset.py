"""The `Dataset` container every loader returns, validated once so consumers can trust it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quant.errors import ConfigError

TASKS = ("classification", "regression")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split held in memory.

    Inputs are float32 arrays of shape (N, *input_shape); images are (N, C, H, W) in [0, 1].
    Classification targets are int64 labels in [0, num_classes); regression targets are
    float32 arrays of shape (N, num_classes), `num_classes` then counting outputs.
    Equality is identity (``eq=False``): element-wise array comparison has no single truth
    value.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    task: str
    input_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"Dataset.name: expected a non-empty string, got {self.name!r}")
        if self.task not in TASKS:
            raise ConfigError(f"Dataset.task: expected one of {TASKS}, got {self.task!r}")
        if (
            isinstance(self.num_classes, bool)
            or not isinstance(self.num_classes, int | np.integer)
            or self.num_classes < 1
        ):
            raise ConfigError(
                f"Dataset.num_classes: expected a positive integer, got {self.num_classes!r}"
            )
        if not isinstance(self.input_shape, tuple) or not all(
            isinstance(d, int) and d > 0 for d in self.input_shape
        ):
            raise ConfigError(
                f"Dataset.input_shape: expected a tuple of positive ints, got {self.input_shape!r}"
            )
        for split in ("train", "test"):
            self._check_split(split)

    def _check_split(self, split: str) -> None:
        x_field, y_field = f"x_{split}", f"y_{split}"
        x, y = getattr(self, x_field), getattr(self, y_field)
        for field, arr in ((x_field, x), (y_field, y)):
            if not isinstance(arr, np.ndarray):
                raise ConfigError(
                    f"Dataset.{field}: expected a numpy array, got {type(arr).__name__}"
                )
        if x.dtype != np.float32:
            raise ConfigError(f"Dataset.{x_field}: expected dtype float32, got {x.dtype}")
        if x.shape[1:] != self.input_shape:
            raise ConfigError(
                f"Dataset.{x_field}: expected shape (N, {', '.join(map(str, self.input_shape))}) "
                f"from input_shape, got {x.shape}"
            )
        if self.task == "classification":
            if y.dtype != np.int64 or y.ndim != 1:
                raise ConfigError(
                    f"Dataset.{y_field}: classification labels must be int64 of shape (N,), "
                    f"got {y.dtype} of shape {y.shape}"
                )
            if y.size and (y.min() < 0 or y.max() >= self.num_classes):
                raise ConfigError(
                    f"Dataset.{y_field}: labels must lie in [0, {self.num_classes}), "
                    f"got range [{y.min()}, {y.max()}]"
                )
        elif y.dtype != np.float32 or y.shape[1:] != (self.num_classes,):
            raise ConfigError(
                f"Dataset.{y_field}: regression targets must be float32 of shape "
                f"(N, {self.num_classes}), got {y.dtype} of shape {y.shape}"
            )
        if len(x) != len(y):
            raise ConfigError(
                f"Dataset.{y_field}: {len(y)} targets for {len(x)} inputs in {x_field}"
            )
