import json
import math

import pytest
import torch

from quant.errors import ConfigError
from sim.data import load_dataset
from sim.train import CHECKPOINT, LOG, TrainConfig, make_scheduler, minibatch_bounds, train


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


SMALL = TrainConfig(
    rule="drtp",
    topology="FC_30_FC_10",
    data="digits",
    epochs=3,
    batch_size=32,
    lr=2e-3,
    dropout=0.1,
    seed=7,
)


class Interrupt(Exception):
    pass


def test_resume_after_interruption_gives_identical_weights(tmp_path, digits):
    straight = train(SMALL, progress=False, dataset=digits)

    def stop_after_two(record):
        if record.epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(SMALL, tmp_path, progress=False, dataset=digits, on_epoch_end=stop_after_two)
    assert len(json.loads((tmp_path / LOG).read_text())["epochs"]) == 2
    resumed = train(SMALL, tmp_path, resume=True, progress=False, dataset=digits)

    for a, b in zip(straight.network.parameters(), resumed.network.parameters(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(straight.rule.get_buffer("B0"), resumed.rule.get_buffer("B0"))
    strip = [(h.epoch, h.train_loss, h.test_error, h.angles) for h in straight.history]
    assert strip == [(h.epoch, h.train_loss, h.test_error, h.angles) for h in resumed.history]


def test_resume_extends_epochs_and_refuses_other_settings(tmp_path, digits):
    train(SMALL, tmp_path, progress=False, dataset=digits)
    more = TrainConfig(**{**SMALL.__dict__, "epochs": 4})
    assert len(train(more, tmp_path, resume=True, progress=False, dataset=digits).history) == 4
    other = TrainConfig(**{**SMALL.__dict__, "lr": 1e-3})
    with pytest.raises(ConfigError, match="differs in lr"):
        train(other, tmp_path, resume=True, progress=False, dataset=digits)


def test_log_is_strict_json_with_every_epoch(tmp_path, digits):
    config = TrainConfig(**{**SMALL.__dict__, "rule": "shallow", "epochs": 2})
    train(config, tmp_path, progress=False, dataset=digits)
    log = json.loads((tmp_path / LOG).read_text(), parse_constant=lambda c: pytest.fail(c))
    assert log["config"]["rule"] == "shallow"
    assert [e["epoch"] for e in log["epochs"]] == [1, 2]
    assert log["epochs"][0]["angles"] == [None]  # shallow has no hidden signal
    assert (tmp_path / CHECKPOINT).exists()
    assert not list(tmp_path.glob(".*tmp"))  # no half-written files left behind


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"lr": 0.0}, "lr must be"),
        ({"lr": -1e-3}, "lr must be"),
        ({"rule": "hebb"}, "unknown rule 'hebb'"),
        ({"topology": "FC_x_FC_10"}, "topology 'FC_x_FC_10'"),
        ({"epochs": 0}, "epochs must be"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"optimizer": "rmsprop"}, "optimizer must be"),
        ({"dropout": 1.5}, "dropout must be"),
    ],
)
def test_config_refuses_bad_values(change, phrase):
    with pytest.raises(ConfigError, match=phrase):
        TrainConfig(**{**SMALL.__dict__, **change})


def test_output_width_must_match_dataset(digits):
    config = TrainConfig(**{**SMALL.__dict__, "topology": "FC_30_FC_7"})
    with pytest.raises(ConfigError, match="7 outputs but dataset 'digits' has 10 classes"):
        train(config, progress=False, dataset=digits)


def test_drtp_and_bp_learn_digits(digits):
    """Measured (seed 0, 10 epochs): BP 5.0 %, DRTP 9.7 % test error; chance is 90 %."""
    errors = {}
    for rule in ("bp", "drtp"):
        config = TrainConfig(
            rule=rule,
            topology="FC_100_FC_10",
            data="digits",
            epochs=10,
            batch_size=20,
            lr=1e-3,
            track_alignment=False,
        )
        errors[rule] = train(config, progress=False, dataset=digits).final.test_error
    assert errors["bp"] < 0.10
    assert errors["drtp"] < 0.15


def test_drtp_aligns_with_bp_on_synthetic_classification():
    """DRTP paper Sec. 2.3: DRTP's modulatory signals end up within 90° of BP's."""
    data = load_dataset("drtp_classification", seed=0)
    config = TrainConfig(
        rule="drtp",
        topology="FC_500_FC_500_FC_10",
        data="drtp_classification",
        epochs=2,
        batch_size=50,
        lr=5e-4,
    )
    result = train(config, progress=False, dataset=data)
    assert len(result.final.angles) == 2
    assert all(not math.isnan(a) and a < 88.0 for a in result.final.angles)
    assert result.final.test_error < 0.2


def test_regression_uses_tanh_output_and_mse():
    data = load_dataset("drtp_regression", seed=0)
    config = TrainConfig(
        rule="sdfa",
        topology="FC_100_FC_100_FC_10",
        data="drtp_regression",
        epochs=3,
        batch_size=50,
        lr=5e-4,
    )
    result = train(config, progress=False, dataset=data)
    assert result.network.blocks[-1].activation == "tanh"
    assert result.history[-1].test_loss < result.history[0].test_loss


def test_batchnorm_never_sees_a_minibatch_of_one(digits):
    assert minibatch_bounds(10, 3, batchnorm=True) == [0, 3, 6, 10]
    assert minibatch_bounds(10, 3, batchnorm=False) == [0, 3, 6, 9, 10]
    assert minibatch_bounds(9, 3, batchnorm=True) == [0, 3, 6, 9]
    config = TrainConfig(
        rule="lfp",
        topology="FC_8_BN_FC_10",
        data="digits",
        epochs=1,
        batch_size=718,
        lr=1e-3,
        optimizer="sgd",
    )  # 1437 = 2 * 718 + 1
    assert len(train(config, progress=False, dataset=digits).history) == 1


def test_resume_is_exact_for_lfp_with_batchnorm_and_momentum(tmp_path, digits):
    config = TrainConfig(
        rule="lfp",
        topology="FC_16_BN_FC_10",
        data="digits",
        epochs=3,
        batch_size=64,
        lr=1e-3,
        optimizer="sgd",
        momentum=0.9,
        seed=3,
    )
    straight = train(config, progress=False, dataset=digits)

    def stop_after_one(record):
        if record.epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(config, tmp_path, progress=False, dataset=digits, on_epoch_end=stop_after_one)
    resumed = train(config, tmp_path, resume=True, progress=False, dataset=digits)
    for a, b in zip(
        straight.network.state_dict().values(), resumed.network.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)  # weights, BN running statistics included


def test_resume_refuses_foreign_or_longer_checkpoints(tmp_path, digits):
    train(SMALL, tmp_path, progress=False, dataset=digits)
    fewer = TrainConfig(**{**SMALL.__dict__, "epochs": 2})
    with pytest.raises(ConfigError, match="already holds 3 epochs"):
        train(fewer, tmp_path, resume=True, progress=False, dataset=digits)
    (tmp_path / CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a plasticore checkpoint"):
        train(SMALL, tmp_path, resume=True, progress=False, dataset=digits)


def test_output_directory_that_is_a_file_is_refused(tmp_path, digits):
    target = tmp_path / "taken"
    target.write_text("")
    with pytest.raises(ConfigError, match="cannot use as output directory"):
        train(SMALL, target, progress=False, dataset=digits)


LIF = {"neuron": "lif", "rule": "lfp_window", "dropout": 0.0}


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({**LIF, "conv_trainable": False}, "conv_trainable does not"),
        ({**LIF, "hidden_activation": "relu"}, "hidden_activation"),
        ({**LIF, "epsilon": 0.0}, "epsilon must be > 0"),
        ({"seed": 2**62}, "seed must be in"),
        ({"topology": "FC_²_FC_10"}, "integer units"),
        ({"lr_schedule": "cosine"}, "lr_schedule must be one of"),
    ],
)
def test_more_refused_settings(change, phrase):
    with pytest.raises(ConfigError, match=phrase):
        TrainConfig(**{**SMALL.__dict__, **change})


def test_lfp_refuses_regression():
    data = load_dataset("drtp_regression", seed=0)
    config = TrainConfig(rule="lfp", topology="FC_8_FC_10", data="drtp_regression", epochs=1)
    with pytest.raises(ConfigError, match="needs class labels"):
        train(config, progress=False, dataset=data)


ONECYCLE = TrainConfig(
    **{**SMALL.__dict__, "lr_schedule": "onecycle", "optimizer": "sgd", "lr": 0.5, "dropout": 0.0}
)


def test_onecycle_schedule_resumes_exactly_and_cannot_be_stretched(tmp_path, digits):
    """The schedule's position is checkpointed: an interrupted one-cycle run resumes to the
    same weights; more epochs would move its peak, so a longer resume is refused."""
    straight = train(ONECYCLE, progress=False, dataset=digits)

    def stop_after_one(record):
        if record.epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(ONECYCLE, tmp_path, progress=False, dataset=digits, on_epoch_end=stop_after_one)
    resumed = train(ONECYCLE, tmp_path, resume=True, progress=False, dataset=digits)
    for a, b in zip(straight.network.parameters(), resumed.network.parameters(), strict=True):
        assert torch.equal(a, b)
    longer = TrainConfig(**{**ONECYCLE.__dict__, "epochs": 4})
    with pytest.raises(ConfigError, match="one-cycle schedule spans"):
        train(longer, tmp_path, resume=True, progress=False, dataset=digits)


def test_onecycle_warms_up_to_lr_then_anneals_and_keeps_momentum():
    """The documented cycle: lr/25 at the start, `lr` at 30 % of the steps, lr/25e4 at the
    end; the optimizer's momentum is left as configured."""
    config = TrainConfig(**{**ONECYCLE.__dict__, "epochs": 2, "momentum": 0.5})
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr, momentum=0.5)
    scheduler = make_scheduler(config, optimizer, steps_per_epoch=50)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(config.lr / 25)
    assert max(rates) == pytest.approx(config.lr) and rates.index(max(rates)) in (29, 30)
    assert rates[-1] == pytest.approx(config.lr / 25e4, rel=0.05)
    assert optimizer.param_groups[0]["momentum"] == 0.5
    assert make_scheduler(SMALL, optimizer, 50) is None
