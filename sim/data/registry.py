"""`load_dataset`: one entry point from a dataset name to a validated `Dataset`."""

from __future__ import annotations

import os
from collections.abc import Callable

from quant.errors import ConfigError
from sim.data.bundled import digits, mnist5k
from sim.data.cifar import load_cifar10
from sim.data.dataset import Dataset
from sim.data.idx import load_idx
from sim.data.synthetic import drtp_classification, drtp_regression

Loader = Callable[[int, str | os.PathLike | None], Dataset]

_LOADERS: dict[str, Loader] = {
    "drtp_classification": lambda seed, root: drtp_classification(seed),
    "drtp_regression": lambda seed, root: drtp_regression(seed),
    "digits": lambda seed, root: digits(),
    "mnist5k": lambda seed, root: mnist5k(),
    "mnist": lambda seed, root: load_idx("mnist", root),
    "fashion_mnist": lambda seed, root: load_idx("fashion_mnist", root),
    "cifar10": lambda seed, root: load_cifar10(root),
}

DATASET_NAMES: tuple[str, ...] = tuple(_LOADERS)


def load_dataset(name: str, *, seed: int = 0, root: str | os.PathLike | None = None) -> Dataset:
    """Load dataset `name`; identical arguments always give identical arrays.

    `seed` drives only the synthetic sets (drtp_*); digits and mnist5k use a fixed split
    and the file-based sets have no randomness. `root` is the directory of the user's files
    for mnist, fashion_mnist and cifar10 (nothing is ever downloaded) and is ignored
    otherwise.
    """
    loader = _LOADERS.get(name)
    if loader is None:
        raise ConfigError(
            f"dataset name: unknown dataset {name!r}; valid names are {', '.join(DATASET_NAMES)}"
        )
    return loader(seed, root)
