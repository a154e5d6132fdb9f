"""Training loop: minibatches, Adam/SGD, error and loss, alignment angles, checkpoints.

Every source of randomness (network init, feedback tensors, shuffling, dropout) comes
from `TrainConfig.seed` through explicit generators. The shuffling/dropout generator's
state is checkpointed with the network, the rule and the optimizer at the end of each
epoch, so a run interrupted and resumed ends with exactly the weights of an
uninterrupted run.
"""

import dataclasses
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from quant.atomic import atomic_write, atomic_write_json, output_dir
from quant.errors import ConfigError
from sim.clipping import adaptive_clip_
from sim.data import Dataset, load_dataset
from sim.models import Network, NetworkConfig
from sim.models.snn import SNNConfig, SpikingNetwork, validate_lif
from sim.rules import REWARDS, RULES, SNN_RULES, LearningRule, make_rule, make_snn_rule

OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "onecycle")
NEURONS = ("none", "lif")  # "lif": a spiking network (sim/models/snn.py), SNN_RULES
CHECKPOINT = "checkpoint.pt"
LOG = "log.json"


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Invalid values raise `ConfigError` naming the field."""

    rule: str = "drtp"
    topology: str = "FC_500_FC_10"
    data: str = "mnist5k"
    data_root: str | None = None
    epochs: int = 10
    batch_size: int = 60
    lr: float = 1.5e-4
    optimizer: str = "adam"
    momentum: float = 0.0
    grad_clip: float = 0.0  # adaptive gradient clipping λ (sim/clipping.py); 0: off
    lr_schedule: str = "constant"  # "onecycle": one cycle peaking at lr over the run (LFP A.7.5)
    dropout: float = 0.0
    conv_trainable: bool = True
    hidden_activation: str = "tanh"
    init: str | None = None  # None: the rule's default (LFP needs nonzero biases)
    seed: int = 0
    track_alignment: bool = True
    activation_noise: float = 0.0  # std of noise on hidden activations while training
    reward: str = "softmax_ce"  # LFP only: initial reward (LFP paper, Table 2)
    epsilon: float = 1e-6  # LFP only: stabiliser of Eqs. 8-9
    reward_norm: bool = False  # LFP, SNN surrogate BP: each layer's reward/gradient to max 1
    # Dual propagation (DP, DP⊤): the rules validate these when built.
    dp_alpha: float = 0.5  # α: weight of s⁺ in the state sent up
    dp_beta: float = 0.5  # β: nudging strength (inside the loss)
    dp_sweeps: int = 1  # up-and-down sweeps of the inference schedule
    dp_loss: str = "mse"  # "mse" (least squares) or "ce" (softmax cross-entropy)
    dp_damping: float = 1.0  # DP at α ∈ {0, 1}: damped fixed point (App. F); 0: undamped
    # Updated / fixed random feedback (URFB, FRFB): hinge loss and connectivity masks.
    hinge_mu: float = 1.0  # μ: weight of the wrong-class terms of the hinge loss
    connectivity: float = 1.0  # fraction of W and R connections kept (0.5: the paper's masks)
    # Target propagation (DTP, FW-DTP).
    target_step: float = 0.01  # β of the output target τ_L = h_L − β ∂L/∂h_L
    feedback_init: str = (
        "uniform"  # FW-DTP feedback: uniform (U(−0.01, 0.01)), orthogonal, he_uniform
    )
    feedback_scale: float = 1.0  # multiplies the drawn feedback matrices
    feedback_steps: int = 5  # DTP: feedback training steps per minibatch
    feedback_noise: float = 1e-2  # DTP: σ of the reconstruction loss's input noise
    feedback_lr: float = 0.05  # DTP: SGD step of the feedback training
    # Spiking networks (LFP paper A.6): neuron="lif" builds a SpikingNetwork.
    neuron: str = "none"  # "none" (rate units) or "lif" (snnTorch Leaky, trained by SNN_RULES)
    beta: float = 0.9  # LIF only: membrane decay β (Eq. A.3)
    threshold: float = 1.0  # LIF only: firing threshold θ
    time_steps: int = 15  # LIF only: window T of the constant-current input encoding

    def __post_init__(self) -> None:
        if self.neuron not in NEURONS:
            raise ConfigError(f"neuron must be one of {NEURONS}, got {self.neuron!r}")
        validate_lif(self.beta, self.threshold, self.time_steps)
        if self.neuron == "lif":
            if self.rule not in SNN_RULES:
                raise ConfigError(
                    f"rule: unknown SNN rule {self.rule!r}; choose one of {', '.join(SNN_RULES)}"
                )
            defaults = {
                "dropout": 0.0,
                "activation_noise": 0.0,
                "conv_trainable": True,
                "hidden_activation": "tanh",
                "reward": "softmax_ce",
            }
            for name, default in defaults.items():
                if getattr(self, name) != default:
                    raise ConfigError(
                        f"{name} does not apply with neuron='lif' (LIF neurons, Eq. A.4 reward)"
                    )
            if self.epsilon <= 0:
                raise ConfigError(f"epsilon must be > 0 with neuron='lif', got {self.epsilon}")
            self.snn_config((1,))
        if self.neuron == "none" and self.rule not in RULES:
            raise ConfigError(f"rule: unknown rule {self.rule!r}; choose one of {', '.join(RULES)}")
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a finite number > 0, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        if not (self.grad_clip >= 0 and math.isfinite(self.grad_clip)):
            raise ConfigError(f"grad_clip must be a finite number >= 0, got {self.grad_clip}")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.reward not in REWARDS:
            raise ConfigError(f"reward must be one of {', '.join(REWARDS)}, got {self.reward!r}")
        if not (self.epsilon >= 0 and math.isfinite(self.epsilon)):
            raise ConfigError(f"epsilon must be a finite number >= 0, got {self.epsilon}")
        if not 0 <= self.seed < 2**62:
            raise ConfigError(f"seed must be in [0, 2**62), got {self.seed}")
        # Topology, dropout, activation and init are validated by NetworkConfig.
        if self.neuron == "none":
            self.network_config((1,))

    def snn_config(self, input_shape: tuple[int, ...]) -> SNNConfig:
        """The spiking network of `neuron="lif"`; PyTorch's default init unless one is named."""
        return SNNConfig(
            topology=self.topology,
            input_shape=input_shape,
            beta=self.beta,
            threshold=self.threshold,
            time_steps=self.time_steps,
            init=self.init or "torch_default",  # type: ignore[arg-type]
        )

    def network_config(
        self, input_shape: tuple[int, ...], regression: bool = False
    ) -> NetworkConfig:
        """Regression uses tanh outputs; classification the rule's own output activation."""
        return NetworkConfig(
            topology=self.topology,
            input_shape=input_shape,
            hidden_activation=self.hidden_activation,
            output_activation="tanh" if regression else RULES[self.rule].output_activation,
            dropout=self.dropout,
            conv_trainable=self.conv_trainable,
            init=self.init or RULES[self.rule].default_init,  # type: ignore[arg-type]
            activation_noise=self.activation_noise,
        )


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float  # running mean over the epoch's minibatches, before each update
    train_error: float  # likewise; error rate for classification, MSE for regression
    test_loss: float
    test_error: float
    angles: tuple[float, ...] | None  # mean per hidden block over the epoch's minibatches
    seconds: float


@dataclass
class TrainResult:
    config: TrainConfig
    network: Network
    rule: LearningRule
    history: list[EpochRecord]

    @property
    def final(self) -> EpochRecord:
        return self.history[-1]


def minibatch_bounds(samples: int, batch_size: int, batchnorm: bool) -> list[int]:
    """Start of every minibatch, then `samples`. With BatchNorm a trailing minibatch of one
    sample (no batch statistics) joins the one before it."""
    bounds = [*range(0, samples, batch_size), samples]
    if batchnorm and len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        del bounds[-2]
    return bounds


def _has_batchnorm(net: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())


def _check_outputs(config: TrainConfig, outputs: int, dataset: Dataset) -> None:
    if outputs != dataset.num_classes:
        raise ConfigError(
            f"topology {config.topology!r} has {outputs} outputs but dataset "
            f"{dataset.name!r} has {dataset.num_classes} "
            f"{'targets' if dataset.task == 'regression' else 'classes'}"
        )


def build(config: TrainConfig, dataset: Dataset) -> tuple[Network, LearningRule]:
    """Network and rule for `dataset`; output width is checked against the dataset."""
    if config.neuron == "lif":
        if dataset.task != "classification":
            raise ConfigError("neuron='lif' supports classification datasets only")
        snn = SpikingNetwork(config.snn_config(dataset.input_shape), seed=config.seed)
        _check_outputs(config, snn.num_outputs, dataset)
        snn_options = {name: getattr(config, name) for name in SNN_RULES[config.rule].options}
        return snn, make_snn_rule(config.rule, snn, seed=config.seed + 1, **snn_options)  # type: ignore[return-value]
    if dataset.task == "regression" and config.rule == "lfp":
        raise ConfigError("rule 'lfp' maximises a classification reward; it needs class labels")
    net_config = config.network_config(dataset.input_shape, dataset.task == "regression")
    net = Network(net_config, seed=config.seed)
    _check_outputs(config, net.num_outputs, dataset)
    options = {name: getattr(config, name) for name in RULES[config.rule].options}
    return net, make_rule(config.rule, net, seed=config.seed + 1, **options)


def make_optimizer(config: TrainConfig, net: Network) -> torch.optim.Optimizer:
    params = [p for p in net.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum)


def make_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Smith & Topin's one-cycle policy over the whole run (warm up to `lr` over 30 % of
    the steps, cosine down to lr/25e4), stepped once per minibatch; None for `constant`.
    Momentum is not cycled: the optimizer keeps the momentum it was given."""
    if config.lr_schedule == "constant":
        return None
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=config.lr,
        total_steps=config.epochs * steps_per_epoch,
        cycle_momentum=False,
    )


def targets(dataset: Dataset, labels: torch.Tensor) -> torch.Tensor:
    """One-hot targets for classification, the values themselves for regression."""
    if dataset.task == "classification":
        return F.one_hot(labels, dataset.num_classes).float()
    return labels


def batch_error(dataset: Dataset, output: torch.Tensor, labels: torch.Tensor) -> float:
    """Summed error of a batch: misclassifications, or squared error for regression."""
    if dataset.task == "classification":
        return float((output.argmax(1) != labels).sum())
    return float(((output - labels) ** 2).mean(1).sum())


@torch.no_grad()
def evaluate(
    rule: LearningRule, dataset: Dataset, x: torch.Tensor, y: torch.Tensor
) -> tuple[float, float]:
    """Mean loss and error over a whole split, in chunks, without dropout."""
    loss = error = 0.0
    rule.network.eval()
    for start in range(0, len(x), 1000):
        out = rule.network(x[start : start + 1000])
        labels = y[start : start + 1000]
        loss += rule.loss(out, targets(dataset, labels)).item() * len(labels)
        error += batch_error(dataset, out, labels)
    rule.network.train()
    return loss / len(x), error / len(x)


def _mean_angles(rows: list[tuple[float, ...]]) -> tuple[float, ...] | None:
    """Per-block mean over minibatches, ignoring undefined (nan) angles."""
    if not rows:
        return None
    table = np.array(rows, dtype=np.float64)
    defined = ~np.isnan(table)
    sums = np.where(defined, table, 0.0).sum(0)
    counts = defined.sum(0)
    return tuple(float(s / c) if c else math.nan for s, c in zip(sums, counts, strict=True))


def _tensors(dataset: Dataset) -> tuple[torch.Tensor, ...]:
    return tuple(
        torch.from_numpy(np.ascontiguousarray(a))
        for a in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test)
    )


def _config_dict(config: TrainConfig) -> dict:
    return dataclasses.asdict(config)


# Fields that may differ on resume: more epochs, or whether angles are measured.
RESUMABLE_CHANGES = ("epochs", "track_alignment")


def _load_checkpoint(path: Path, config: TrainConfig) -> dict:
    try:
        state = torch.load(path, weights_only=False)
        saved = dict(state["config"])
        history = state["history"]
    except Exception as error:  # any unreadable file: say which and why
        raise ConfigError(f"{path}: not a plasticore checkpoint ({error})") from error
    current = _config_dict(config)
    differing = [k for k in current if k not in RESUMABLE_CHANGES and saved.get(k) != current[k]]
    if differing:
        raise ConfigError(
            f"{path}: checkpoint was written by a different run (differs in "
            f"{', '.join(differing)}); use another --out directory or the same settings"
        )
    if len(history) > config.epochs:
        raise ConfigError(
            f"{path}: checkpoint already holds {len(history)} epochs, more than the "
            f"{config.epochs} asked for"
        )
    if config.lr_schedule == "onecycle" and saved.get("epochs") != config.epochs:
        raise ConfigError(
            f"{path}: the one-cycle schedule spans the run's {saved.get('epochs')} epochs; "
            "resume with the same --epochs"
        )
    return state


def train(
    config: TrainConfig,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    dataset: Dataset | None = None,
    on_epoch_end: Callable[[EpochRecord], None] | None = None,
    prepare: Callable[[torch.nn.Module], None] | None = None,
) -> TrainResult:
    """Train `config`; with `out_dir`, write `log.json` and `checkpoint.pt` every epoch.

    With `resume`, a checkpoint in `out_dir` from the same settings is continued (the
    epoch count may be raised); without one the run starts from scratch. `prepare` edits
    the freshly built network in place before the optimizer and a checkpoint see it (e.g.
    `quant.qat.quantize_linears`: QAT layers); it is not part of the config, so a resumed
    run must pass the same one.
    """
    dataset = dataset or load_dataset(config.data, seed=config.seed, root=config.data_root)
    net, rule = build(config, dataset)
    if prepare is not None:
        prepare(net)
    optimizer = make_optimizer(config, net)
    x_train, y_train, x_test, y_test = _tensors(dataset)
    bounds = minibatch_bounds(len(x_train), config.batch_size, _has_batchnorm(net))
    scheduler = make_scheduler(config, optimizer, len(bounds) - 1)
    generator = torch.Generator().manual_seed(config.seed + 2)
    history: list[EpochRecord] = []
    out = output_dir(out_dir)
    if resume and out is not None and (out / CHECKPOINT).exists():
        state = _load_checkpoint(out / CHECKPOINT, config)
        net.load_state_dict(state["network"])
        rule.load_state_dict(state["rule"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        history = [EpochRecord(**r) for r in state["history"]]

    for epoch in range(len(history) + 1, config.epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(len(x_train), generator=generator)
        loss_sum = error_sum = 0.0
        angles: list[tuple[float, ...]] = []
        bar = tqdm(
            range(len(bounds) - 1),
            desc=f"{config.rule} epoch {epoch}/{config.epochs}",
            disable=not progress,
            leave=False,
        )
        for b in bar:
            idx = order[bounds[b] : bounds[b + 1]]
            labels = y_train[idx]
            optimizer.zero_grad(set_to_none=True)
            result = rule.step(
                x_train[idx], targets(dataset, labels), generator, config.track_alignment
            )
            if config.grad_clip > 0:
                adaptive_clip_(net.parameters(), config.grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            loss_sum += result.loss * len(idx)
            error_sum += batch_error(dataset, result.output, labels)
            if result.angles is not None:
                angles.append(result.angles)
        test_loss, test_error = evaluate(rule, dataset, x_test, y_test)
        record = EpochRecord(
            epoch=epoch,
            train_loss=loss_sum / len(x_train),
            train_error=error_sum / len(x_train),
            test_loss=test_loss,
            test_error=test_error,
            angles=_mean_angles(angles),
            seconds=time.perf_counter() - start,
        )
        history.append(record)
        if progress:
            tqdm.write(
                f"epoch {epoch}: train error {record.train_error:.4f}  "
                f"test error {record.test_error:.4f}  test loss {record.test_loss:.4f}"
            )
        if out is not None:
            _save(out, config, net, rule, optimizer, scheduler, generator, history)
        if on_epoch_end is not None:
            on_epoch_end(record)
    return TrainResult(config, net, rule, history)


def _save(
    out: Path,
    config: TrainConfig,
    net: Network,
    rule: LearningRule,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    generator: torch.Generator,
    history: list[EpochRecord],
) -> None:
    records = [dataclasses.asdict(r) for r in history]
    state = {
        "config": _config_dict(config),
        "network": net.state_dict(),
        "rule": rule.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "generator": generator.get_state(),
        "history": records,
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(out / CHECKPOINT, lambda handle: handle.write(buffer.getvalue()))
    atomic_write_json(out / LOG, {"config": _config_dict(config), "epochs": _json_safe(records)})


def _json_safe(value):
    """NaN angles become null so the log is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
