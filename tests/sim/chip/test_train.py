import json
from dataclasses import replace

import numpy as np
import pytest

from plasticore.cli import main
from quant.errors import ConfigError
from quant.spec import load_spec
from sim.chip.params import at_width, initial_weights, load_params, save_params
from sim.chip.train import LOG, PARAMS, ChipTrainConfig, train_chip
from sim.data import Dataset, load_dataset

SPEC = load_spec("configs/digits.toml")


@pytest.fixture(scope="module")
def small():
    """The first 300 training and 100 test digits: seconds per epoch in the golden model."""
    d = load_dataset("digits")
    return Dataset(
        "digits",
        d.x_train[:300],
        d.y_train[:300],
        d.x_test[:100],
        d.y_test[:100],
        d.num_classes,
        d.task,
        d.input_shape,
    )


def test_resume_continues_bit_exactly(tmp_path, small):
    config = ChipTrainConfig(epochs=3, seed=4)
    straight = train_chip(SPEC, config, progress=False, dataset=small)
    first = train_chip(SPEC, replace(config, epochs=1), tmp_path, progress=False, dataset=small)
    assert first.history[0] == replace(straight.history[0], seconds=first.history[0].seconds)
    resumed = train_chip(SPEC, config, tmp_path, resume=True, progress=False, dataset=small)
    for a, b in zip(straight.core.weights, resumed.core.weights, strict=True):
        assert np.array_equal(a, b)
    assert straight.core.lfsr_state == resumed.core.lfsr_state
    assert straight.core.counters == resumed.core.counters
    assert [e.test_error for e in straight.history] == [e.test_error for e in resumed.history]
    log = json.loads((tmp_path / LOG).read_text())
    assert len(log["epochs"]) == 3
    with pytest.raises(ConfigError, match="different settings"):
        train_chip(SPEC, replace(config, seed=5), tmp_path, resume=True, dataset=small)
    with pytest.raises(ConfigError, match="another spec"):
        train_chip(replace(SPEC, seed=9), config, tmp_path, resume=True, dataset=small)


def test_params_file_refuses_garbage(tmp_path):
    (tmp_path / PARAMS).write_bytes(b"not numpy")
    with pytest.raises(ConfigError, match="not a plasticore parameter file"):
        load_params(tmp_path / PARAMS, SPEC)
    save_params(tmp_path / "p.npz", SPEC, initial_weights(SPEC), 7, {"a": 1})
    weights, lfsr, meta = load_params(tmp_path / "p.npz", SPEC)
    assert lfsr == 7 and meta == {"a": 1}
    assert all(np.array_equal(a, b) for a, b in zip(weights, initial_weights(SPEC), strict=True))


def test_at_width_keeps_the_real_network():
    weights = initial_weights(SPEC, seed=1)
    wide, wide_w = at_width(SPEC, weights, 16)
    shift = min(SPEC.lr_shifts)  # extra bits become fraction bits, down to a zero shift
    assert wide.lr_shifts == tuple(s - shift for s in SPEC.lr_shifts)
    assert wide.thresholds == tuple(t << shift for t in SPEC.thresholds)
    assert all(np.array_equal(w << shift, v) for w, v in zip(weights, wide_w, strict=True))
    narrow, narrow_w = at_width(SPEC, weights, 4)
    assert narrow.weight_bits == 4 and narrow.lr_shifts == tuple(s + 4 for s in SPEC.lr_shifts)
    assert all(np.abs(w).max() <= 1 for w in narrow_w)  # ±16 at 8 bits is ±1 at 4


@pytest.mark.parametrize(
    ("spec_changes", "init", "bound"),
    [({}, "zero", 0.2), ({"rule": "lfp", "lr_shifts": (8, 8)}, "random", 0.2)],
)
def test_on_chip_learning_learns_digits(spec_changes, init, bound):
    """One online epoch over the 1437 training digits. Measured test error: DRTP from zero
    weights 0.144, LFP from random weights 0.114 (seed 0); chance is 0.9."""
    spec = replace(SPEC, **spec_changes)
    result = train_chip(spec, ChipTrainConfig(epochs=1, init=init), progress=False)
    assert result.final.test_error < bound


def test_cli_chip_train_prints_errors_and_counters(tmp_path, capsys):
    code = main(
        [
            "chip",
            "train",
            "--spec",
            "configs/digits.toml",
            "--epochs",
            "1",
            "--quiet",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "test error %" in out and "weight_writes" in out
    assert (tmp_path / PARAMS).exists()


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--spec", "nope.toml"], "cannot read spec"),
        (["--spec", "configs/mnist.toml"], "has 784 inputs; data 'digits' has 64"),
        (["--spec", "configs/digits.toml", "--init", "ones"], "init must be one of"),
        (["--spec", "configs/digits.toml", "--epochs", "0"], "epochs must be >= 1"),
    ],
)
def test_cli_chip_errors_are_one_line(args, phrase, capsys):
    assert main(["chip", "train", "--quiet", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and phrase in err[0]
