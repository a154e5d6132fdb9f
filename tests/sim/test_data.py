"""Tests for sim.data: offline datasets, IDX and CIFAR-10 file parsing, and their errors."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from quant.errors import ConfigError, DatasetError
from sim.data import DATASET_NAMES, Dataset, load_dataset

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@pytest.fixture(scope="module")
def classification() -> Dataset:
    return load_dataset("drtp_classification", seed=0)


@pytest.fixture(scope="module")
def regression() -> Dataset:
    return load_dataset("drtp_regression", seed=0)


@pytest.fixture(scope="module")
def mnist5k() -> Dataset:
    return load_dataset("mnist5k", seed=0)


def assert_same(a: Dataset, b: Dataset) -> None:
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def assert_stratified(ds: Dataset) -> None:
    train = np.bincount(ds.y_train, minlength=ds.num_classes)
    test = np.bincount(ds.y_test, minlength=ds.num_classes)
    proportional = (train + test) * len(ds.y_test) / (len(ds.y_train) + len(ds.y_test))
    assert np.all(np.abs(test - proportional) <= 1), (test, proportional)


def test_dataset_names() -> None:
    assert DATASET_NAMES == (
        "drtp_classification",
        "drtp_regression",
        "digits",
        "mnist5k",
        "mnist",
        "fashion_mnist",
        "cifar10",
    )


def test_drtp_classification_shapes(classification: Dataset) -> None:
    ds = classification
    assert (ds.task, ds.num_classes, ds.input_shape) == ("classification", 10, (256,))
    assert ds.x_train.shape == (25_000, 256) and ds.x_test.shape == (5_000, 256)
    assert ds.y_train.shape == (25_000,) and ds.y_test.shape == (5_000,)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert set(np.unique(ds.y_train)) == set(range(10))
    assert set(np.unique(ds.y_test)) == set(range(10))


def test_drtp_classification_keeps_raw_feature_scale(classification: Dataset) -> None:
    std = classification.x_train.std(axis=0)
    # 128 noise features are N(0, 1); informative ones are spread by class_sep = 4.5.
    assert np.sum(np.abs(std - 1) < 0.05) >= 128
    assert std.max() > 3


def test_drtp_classification_seeded(classification: Dataset) -> None:
    assert_same(classification, load_dataset("drtp_classification", seed=0))
    other = load_dataset("drtp_classification", seed=1)
    assert not np.array_equal(classification.x_train, other.x_train)


def test_drtp_regression_shapes(regression: Dataset) -> None:
    ds = regression
    assert (ds.task, ds.num_classes, ds.input_shape) == ("regression", 10, (256,))
    assert ds.x_train.shape == (5_000, 256) and ds.x_test.shape == (1_000, 256)
    assert ds.y_train.shape == (5_000, 10) and ds.y_test.shape == (1_000, 10)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.float32
    means = ds.x_train.mean(axis=1)
    assert means.min() < -2.5 and means.max() > 2.5 and np.abs(means).max() < np.pi + 0.5
    # Each example's entries have unit variance around their own mean.
    assert np.allclose(ds.x_train.std(axis=1).mean(), 1.0, atol=0.02)


def test_drtp_regression_targets_closed_form(regression: Dataset) -> None:
    phases = [-np.pi / 2 + j * np.pi / 9 for j in range(10)]
    for x, y in ((regression.x_train, regression.y_train), (regression.x_test, regression.y_test)):
        mean = x.astype(np.float64).sum(axis=1) / x.shape[1]
        expected = np.stack([np.cos(mean + phi) for phi in phases], axis=1)
        np.testing.assert_allclose(y, expected, rtol=0, atol=1e-6)


def test_drtp_regression_seeded(regression: Dataset) -> None:
    assert_same(regression, load_dataset("drtp_regression", seed=0))
    other = load_dataset("drtp_regression", seed=1)
    assert not np.array_equal(regression.x_train, other.x_train)
    assert not np.array_equal(regression.x_test, other.x_test)


def test_digits() -> None:
    ds = load_dataset("digits", seed=0)
    assert (ds.task, ds.num_classes, ds.input_shape) == ("classification", 10, (1, 8, 8))
    assert ds.x_train.shape == (1437, 1, 8, 8) and ds.x_test.shape == (360, 1, 8, 8)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert_stratified(ds)
    assert_same(ds, load_dataset("digits", seed=7))


def test_mnist5k(mnist5k: Dataset) -> None:
    ds = mnist5k
    assert (ds.task, ds.num_classes, ds.input_shape) == ("classification", 10, (1, 28, 28))
    assert ds.x_train.shape == (4000, 1, 28, 28) and ds.x_test.shape == (1000, 1, 28, 28)
    assert ds.y_train.shape == (4000,) and ds.y_test.shape == (1000,)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert_stratified(ds)


def test_mnist5k_split_ignores_seed(mnist5k: Dataset) -> None:
    assert_same(mnist5k, load_dataset("mnist5k", seed=3))


def test_unknown_name() -> None:
    with pytest.raises(ConfigError, match=r"valid names are.*drtp_classification.*cifar10"):
        load_dataset("imagenet")


def test_dataset_validation_names_field() -> None:
    x = np.zeros((4, 3), np.float32)
    y = np.zeros(4, np.int64)
    args = dict(name="t", x_train=x, y_train=y, x_test=x, y_test=y, num_classes=2)
    Dataset(**args, task="classification", input_shape=(3,))
    with pytest.raises(ConfigError, match=r"x_train.*float32"):
        Dataset(
            **{**args, "x_train": x.astype(np.float64)}, task="classification", input_shape=(3,)
        )
    with pytest.raises(ConfigError, match=r"x_test: expected shape \(N, 3\)"):
        Dataset(
            **{**args, "x_test": np.zeros((4, 4), np.float32)},
            task="classification",
            input_shape=(3,),
        )
    with pytest.raises(ConfigError, match=r"y_test.*5 targets for 4"):
        Dataset(
            **{**args, "y_test": np.zeros(5, np.int64)}, task="classification", input_shape=(3,)
        )
    with pytest.raises(ConfigError, match=r"y_train.*\[0, 2\)"):
        Dataset(**{**args, "y_train": y + 2}, task="classification", input_shape=(3,))
    with pytest.raises(ConfigError, match=r"y_train.*regression"):
        Dataset(**args, task="regression", input_shape=(3,))
    with pytest.raises(ConfigError, match="task"):
        Dataset(**args, task="ranking", input_shape=(3,))


# --- IDX files -------------------------------------------------------------------------


def idx_images(images: np.ndarray, magic: int = 0x803) -> bytes:
    n, rows, cols = images.shape
    return struct.pack(">IIII", magic, n, rows, cols) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray, magic: int = 0x801) -> bytes:
    return struct.pack(">II", magic, len(labels)) + labels.astype(np.uint8).tobytes()


def write_idx(root: Path, gz: bool = False, **override: bytes) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (12, 28, 28)),
        "train_labels": np.arange(12) % 10,
        "test_images": rng.integers(0, 256, (5, 28, 28)),
        "test_labels": np.array([9, 0, 3, 3, 1]),
    }
    for key, name in IDX_NAMES.items():
        if key in override:
            data = override[key]
        elif key.endswith("images"):
            data = idx_images(arrays[key])
        else:
            data = idx_labels(arrays[key])
        if gz:
            (root / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (root / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_loads(tmp_path: Path, gz: bool, name: str) -> None:
    arrays = write_idx(tmp_path, gz=gz)
    ds = load_dataset(name, root=tmp_path)
    assert ds.name == name and ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    assert ds.x_train.shape == (12, 1, 28, 28) and ds.x_test.shape == (5, 1, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    np.testing.assert_allclose(ds.x_train[:, 0] * 255, arrays["train_images"], atol=1e-4)
    np.testing.assert_allclose(ds.x_test[:, 0] * 255, arrays["test_images"], atol=1e-4)
    np.testing.assert_array_equal(ds.y_train, arrays["train_labels"])
    np.testing.assert_array_equal(ds.y_test, arrays["test_labels"])


def test_idx_root_none() -> None:
    with pytest.raises(DatasetError, match="no data directory given") as info:
        load_dataset("mnist")
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message and "never downloads" in message


def test_idx_root_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a directory") as info:
        load_dataset("mnist", root=tmp_path / "absent")
    assert "absent" in str(info.value)


def test_idx_missing_file(tmp_path: Path) -> None:
    write_idx(tmp_path)
    (tmp_path / IDX_NAMES["test_labels"]).unlink()
    with pytest.raises(DatasetError, match="missing file") as info:
        load_dataset("mnist", root=tmp_path)
    assert str(tmp_path / IDX_NAMES["test_labels"]) in str(info.value)


def expect_idx_error(root: Path, key: str, phrase: str, **override: bytes) -> str:
    write_idx(root, **override)
    with pytest.raises(DatasetError, match=phrase) as info:
        load_dataset("mnist", root=root)
    message = str(info.value)
    assert str(root / IDX_NAMES[key]) in message
    return message


def test_idx_bad_magic(tmp_path: Path) -> None:
    images = idx_images(np.zeros((12, 28, 28)), magic=0x801)
    expect_idx_error(tmp_path, "train_images", "bad magic number 0x00000801", train_images=images)


def test_idx_truncated_images(tmp_path: Path) -> None:
    images = idx_images(np.zeros((12, 28, 28)))[:1000]
    message = expect_idx_error(tmp_path, "train_images", "truncated", train_images=images)
    assert "12 images of 28x28 (9424 bytes), file has 1000 bytes" in message


def test_idx_truncated_header(tmp_path: Path) -> None:
    expect_idx_error(tmp_path, "test_images", "truncated", test_images=b"\x00\x00\x08")


def test_idx_truncated_labels(tmp_path: Path) -> None:
    labels = idx_labels(np.arange(12) % 10)[:-3]
    message = expect_idx_error(tmp_path, "train_labels", "truncated", train_labels=labels)
    assert "12 labels" in message


def test_idx_trailing_bytes(tmp_path: Path) -> None:
    labels = idx_labels(np.arange(5)) + b"\x00\x00"
    expect_idx_error(tmp_path, "test_labels", "2 unexpected trailing bytes", test_labels=labels)


def test_idx_wrong_image_size(tmp_path: Path) -> None:
    images = idx_images(np.zeros((5, 32, 32)))
    expect_idx_error(tmp_path, "test_images", "32x32, expected 28x28", test_images=images)


def test_idx_count_mismatch(tmp_path: Path) -> None:
    labels = idx_labels(np.arange(10))
    message = expect_idx_error(tmp_path, "train_labels", "count mismatch", train_labels=labels)
    assert "10 labels for 12 images" in message


def test_idx_label_out_of_range(tmp_path: Path) -> None:
    labels = idx_labels(np.array([0, 1, 12, 3, 4]))
    message = expect_idx_error(tmp_path, "test_labels", "label out of range", test_labels=labels)
    assert "12 at index 2" in message


def test_idx_corrupt_gzip(tmp_path: Path) -> None:
    write_idx(tmp_path, gz=True)
    path = tmp_path / f"{IDX_NAMES['train_images']}.gz"
    path.write_bytes(b"not gzip data")
    with pytest.raises(DatasetError, match="cannot read") as info:
        load_dataset("mnist", root=tmp_path)
    assert str(path) in str(info.value)


# --- CIFAR-10 python batches -------------------------------------------------------------

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_cifar(directory: Path, **override: object) -> dict[str, tuple[np.ndarray, list[int]]]:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    batches = {}
    for i, name in enumerate(BATCHES):
        data = rng.integers(0, 256, (4, 3072)).astype(np.uint8)
        labels = [(i + k) % 10 for k in range(4)]
        batches[name] = (data, labels)
        payload = override.get(name, {b"batch_label": b"x", b"data": data, b"labels": labels})
        with (directory / name).open("wb") as f:
            if isinstance(payload, bytes):
                f.write(payload)
            else:
                pickle.dump(payload, f)
    return batches


@pytest.mark.parametrize("nested", [False, True])
def test_cifar_loads_channel_first(tmp_path: Path, nested: bool) -> None:
    batches = write_cifar(tmp_path / "cifar-10-batches-py" if nested else tmp_path)
    ds = load_dataset("cifar10", root=tmp_path)
    assert ds.input_shape == (3, 32, 32) and ds.num_classes == 10
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    data, labels = batches["data_batch_2"]
    image = ds.x_train[4 + 1]  # second image of the second batch
    row = data[1].astype(np.float32) / 255
    np.testing.assert_allclose(image[0, 0, :], row[:32], atol=1e-7)  # red, first pixel row
    np.testing.assert_allclose(image[0, 1, 0], row[32], atol=1e-7)  # red, second pixel row
    np.testing.assert_allclose(image[1].ravel(), row[1024:2048], atol=1e-7)  # green
    np.testing.assert_allclose(image[2].ravel(), row[2048:], atol=1e-7)  # blue
    np.testing.assert_array_equal(ds.y_train[4:8], labels)
    np.testing.assert_array_equal(ds.y_test, batches["test_batch"][1])


def expect_cifar_error(root: Path, name: str, phrase: str, **override: object) -> None:
    write_cifar(root, **override)
    with pytest.raises(DatasetError, match=phrase) as info:
        load_dataset("cifar10", root=root)
    assert str(root / name) in str(info.value)


def test_cifar_root_none() -> None:
    with pytest.raises(DatasetError, match="never downloads") as info:
        load_dataset("cifar10")
    assert "data_batch_1" in str(info.value)


def test_cifar_missing_batch(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    (tmp_path / "data_batch_4").unlink()
    with pytest.raises(DatasetError, match="missing file") as info:
        load_dataset("cifar10", root=tmp_path)
    assert str(tmp_path / "data_batch_4") in str(info.value)


def test_cifar_malformed_pickle(tmp_path: Path) -> None:
    expect_cifar_error(tmp_path, "data_batch_3", "cannot unpickle", data_batch_3=b"garbage\x00")


def test_cifar_not_a_dict(tmp_path: Path) -> None:
    expect_cifar_error(tmp_path, "test_batch", "expected a pickled dict", test_batch=[1, 2])


def test_cifar_missing_key(tmp_path: Path) -> None:
    payload = {b"data": np.zeros((4, 3072), np.uint8)}
    expect_cifar_error(tmp_path, "data_batch_1", "missing key b'labels'", data_batch_1=payload)


def test_cifar_wrong_shape(tmp_path: Path) -> None:
    payload = {b"data": np.zeros((4, 1024), np.uint8), b"labels": [0, 1, 2, 3]}
    expect_cifar_error(tmp_path, "data_batch_5", "wrong data shape", data_batch_5=payload)


def test_cifar_length_mismatch(tmp_path: Path) -> None:
    payload = {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2]}
    expect_cifar_error(tmp_path, "test_batch", "length mismatch", test_batch=payload)


def test_cifar_label_out_of_range(tmp_path: Path) -> None:
    payload = {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 10, 2, 3]}
    expect_cifar_error(tmp_path, "data_batch_2", "label out of range", data_batch_2=payload)
