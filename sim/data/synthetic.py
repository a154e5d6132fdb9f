"""The two synthetic tasks of the DRTP paper (Frenkel et al., Section 4), generated on the fly."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_classification

from sim.data.dataset import Dataset

NUM_FEATURES = 256
NUM_OUTPUTS = 10

CLASSIFICATION_TRAIN = 25_000
CLASSIFICATION_TEST = 5_000
NUM_INFORMATIVE = 128
CLUSTERS_PER_CLASS = 5
CLASS_SEP = 4.5

REGRESSION_TRAIN = 5_000
REGRESSION_TEST = 1_000
#: Phase offsets phi_j = -pi/2 + j*pi/9, j = 0..9, spreading the ten targets over one period.
REGRESSION_PHASES = -np.pi / 2 + np.arange(NUM_OUTPUTS) * np.pi / 9


def drtp_classification(seed: int) -> Dataset:
    """256 features (128 informative, the rest N(0, 1) noise), 10 classes, 5 clusters each.

    Generated as 30k examples in one call (``random_state=seed``), the first 25k for
    training and the last 5k for testing, as the authors' reference generator does.
    Features are kept raw, not standardised, as in that generator, so accuracies stay
    comparable with the paper's. The scale is uneven: informative features sit on hypercube
    vertices at +-class_sep with random per-cluster covariance (standard deviations up to
    ~8), noise features are N(0, 1). Tanh units fed such inputs through large weights
    saturate early; a model that wants unit-scale inputs should standardise them with the
    training set's statistics itself.
    """
    x, y = make_classification(
        n_samples=CLASSIFICATION_TRAIN + CLASSIFICATION_TEST,
        n_features=NUM_FEATURES,
        n_informative=NUM_INFORMATIVE,
        n_redundant=0,
        n_repeated=0,
        n_classes=NUM_OUTPUTS,
        n_clusters_per_class=CLUSTERS_PER_CLASS,
        class_sep=CLASS_SEP,
        shuffle=True,
        random_state=seed,
    )
    x = x.astype(np.float32)
    y = y.astype(np.int64)
    n = CLASSIFICATION_TRAIN
    return Dataset(
        name="drtp_classification",
        x_train=x[:n],
        y_train=y[:n],
        x_test=x[n:],
        y_test=y[n:],
        num_classes=NUM_OUTPUTS,
        task="classification",
        input_shape=(NUM_FEATURES,),
    )


def _regression_split(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    means = rng.uniform(-np.pi, np.pi, size=(n, 1))
    x = (means + rng.standard_normal((n, NUM_FEATURES))).astype(np.float32)
    # Targets come from the stored float32 inputs so they match cos(mean(x) + phi_j) exactly.
    y = np.cos(x.mean(axis=1, dtype=np.float64)[:, None] + REGRESSION_PHASES)
    return x, y.astype(np.float32)


def drtp_regression(seed: int) -> Dataset:
    """Ten cosine targets y_j = cos(mean(x) + phi_j) of a 256-dim input.

    Each example's entries are N(m, 1) with its own m ~ U(-pi, pi), so mean(x) covers a full
    period and every target is a non-trivial function of the input. Train (5k) then test
    (1k) are drawn from one ``numpy.random.default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    x_train, y_train = _regression_split(rng, REGRESSION_TRAIN)
    x_test, y_test = _regression_split(rng, REGRESSION_TEST)
    return Dataset(
        name="drtp_regression",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=NUM_OUTPUTS,
        task="regression",
        input_shape=(NUM_FEATURES,),
    )
