"""On-chip learning in the golden model: online, one sample at a time, as the core learns.

`train_chip` streams a dataset's training split through `GoldenCore.learn` and measures
test error with inference only. With an output directory it writes, after every epoch,
`params.npz` (weights, LFSR state, history and counters in one file, so they cannot
disagree after an interruption) and a readable copy of the history in `log.json`;
`resume` continues bit-exactly from `params.npz`.
"""

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from quant.atomic import atomic_write_json, output_dir
from quant.counters import Counters
from quant.errors import ConfigError
from quant.spec import CoreSpec, spec_to_toml
from sim.chip.golden import GoldenCore
from sim.chip.params import (
    INITS,
    initial_kernels,
    initial_weights,
    load_kernels,
    load_params,
    save_params,
)
from sim.data import Dataset, load_dataset

PARAMS, LOG = "params.npz", "log.json"


@dataclass(frozen=True)
class ChipTrainConfig:
    """What to learn on chip and for how long; the spec says how."""

    data: str = "digits"
    data_root: str | None = None
    epochs: int = 3
    seed: int = 0
    init: str = "random"

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be in [0, 2^32), got {self.seed}")


@dataclass(frozen=True)
class ChipEpoch:
    epoch: int
    train_error: float  # online: each sample's prediction before its own update
    test_error: float
    seconds: float  # learning only, not the test pass
    learned: float = 1.0  # fraction of samples whose learning step ran (a gate skips some)
    counters: dict | None = None  # this epoch's counts by phase and kind (training only)


@dataclass
class ChipResult:
    spec: CoreSpec
    config: ChipTrainConfig
    core: GoldenCore
    history: list[ChipEpoch]

    samples_per_epoch: int

    @property
    def final(self) -> ChipEpoch:
        return self.history[-1]


def dataset_codes(spec: CoreSpec, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Train and test inputs as the core's integer codes; refused if the spec cannot take them."""
    if dataset.task != "classification":
        raise ConfigError(f"data {dataset.name!r}: on-chip learning needs class labels")
    features = int(np.prod(dataset.input_shape))
    if features != spec.inputs:
        raise ConfigError(
            f"spec {spec.name!r} has {spec.inputs} inputs; data {dataset.name!r} has {features}"
        )
    if dataset.num_classes != spec.classes:
        raise ConfigError(
            f"spec {spec.name!r} has {spec.classes} classes; "
            f"data {dataset.name!r} has {dataset.num_classes}"
        )
    return tuple(
        spec.input_codes(np.clip(x.reshape(len(x), -1), 0.0, 1.0))
        for x in (dataset.x_train, dataset.x_test)
    )


def test_error(core: GoldenCore, x: np.ndarray, y: np.ndarray) -> float:
    """Error of inference only, on a copy: evaluation does not touch the core's counters."""
    probe = GoldenCore(core.spec, core.weights, kernels=core.kernels)
    wrong = sum(probe.infer(xi).prediction != yi for xi, yi in zip(x, y, strict=True))
    return wrong / len(y)


def _resume(out: Path, spec: CoreSpec, config: ChipTrainConfig) -> tuple[GoldenCore, list]:
    weights, lfsr, meta = load_params(out / PARAMS, spec)
    try:
        saved = {k: v for k, v in meta["config"].items() if k != "epochs"}
        history = [ChipEpoch(**e) for e in meta["epochs"]]
        counters = Counters.from_dict(meta["counters"])
    except (KeyError, TypeError, AttributeError) as error:
        raise ConfigError(f"{out / PARAMS}: holds no chip training state ({error})") from error
    if saved != {k: v for k, v in asdict(config).items() if k != "epochs"}:
        raise ConfigError(f"{out}: written with different settings; use another --out")
    if len(history) > config.epochs:
        raise ConfigError(f"{out}: already holds {len(history)} epochs, more than {config.epochs}")
    kernels = load_kernels(out / PARAMS, spec) if spec.conv else None
    core = GoldenCore(spec, weights, lfsr, kernels)
    core.counters = counters
    return core, history


def train_chip(
    spec: CoreSpec,
    config: ChipTrainConfig,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    dataset: Dataset | None = None,
    weights: list[np.ndarray] | None = None,
    kernels: np.ndarray | None = None,
) -> ChipResult:
    """Learn on chip for `config.epochs` epochs from `weights` (default: `config.init`); a
    front end's fixed `kernels` default to `initial_kernels` of the seed, but must come
    with given weights, which are likely trained on other kernels."""
    if spec.rule == "none":
        raise ConfigError(f"spec {spec.name!r} has rule 'none': nothing to learn")
    if spec.conv and kernels is None:
        if weights is not None:
            raise ConfigError(
                f"kernels: spec {spec.name!r} has a convolutional front end; pass its kernels "
                "with the weights (sim.chip.params.load_kernels)"
            )
        kernels = initial_kernels(spec, config.seed)
    dataset = dataset or load_dataset(config.data, seed=config.seed, root=config.data_root)
    x_train, x_test = dataset_codes(spec, dataset)
    initial = weights or initial_weights(spec, config.init, config.seed)
    core = GoldenCore(spec, initial, kernels=kernels)
    history: list[ChipEpoch] = []
    out = output_dir(out_dir)
    if resume and out is not None and (out / PARAMS).exists():
        core, history = _resume(out, spec, config)
    for epoch in range(len(history) + 1, config.epochs + 1):
        order = np.random.default_rng([config.seed, epoch]).permutation(len(x_train))
        start = time.perf_counter()
        wrong = learned = 0
        before = core.counters.as_dict()
        for i in tqdm(order, desc=f"on-chip epoch {epoch}", disable=not progress, leave=False):
            label = int(dataset.y_train[i])
            forward = core.learn(x_train[i], label)
            wrong += forward.prediction != label
            learned += forward.learned
        seconds = time.perf_counter() - start
        n = len(order)
        tested = test_error(core, x_test, dataset.y_test)
        spent = {
            phase: {kind: count - before[phase][kind] for kind, count in kinds.items()}
            for phase, kinds in core.counters.as_dict().items()
        }
        record = ChipEpoch(epoch, wrong / n, tested, seconds, learned / n, spent)
        history.append(record)
        if progress:
            tqdm.write(
                f"epoch {epoch}: train error {record.train_error:.4f}  "
                f"test error {record.test_error:.4f}  learned {record.learned:.1%}  "
                f"({n / seconds:.0f} samples/s)"
            )
        if out is not None:
            meta = {
                "config": asdict(config),
                "epochs": [asdict(e) for e in history],
                "counters": core.counters.as_dict(),
            }
            save_params(out / PARAMS, spec, core.weights, core.lfsr_state, meta, core.kernels)
            atomic_write_json(out / LOG, {"spec": spec_to_toml(spec), **meta})
    return ChipResult(spec, config, core, history, len(x_train))
