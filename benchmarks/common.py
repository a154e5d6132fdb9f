"""What every benchmark shares: cached training runs, datasets loaded once, mean ± std."""

import dataclasses
import hashlib
import json
import math
import statistics
from collections.abc import Callable
from pathlib import Path

from quant.atomic import atomic_write_json
from sim.data import Dataset, load_dataset
from sim.train import TrainConfig, TrainResult, train


class Datasets:
    """Each (name, seed) loaded once per benchmark process."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], Dataset] = {}

    def get(self, config: TrainConfig) -> Dataset:
        seed = config.seed if config.data.startswith("drtp_") else 0
        key = (config.data, seed)
        if key not in self._cache:
            self._cache[key] = load_dataset(config.data, seed=seed, root=config.data_root)
        return self._cache[key]


def run_key(config: TrainConfig) -> str:
    """A stable file name for one configuration: every field that differs from its default,
    so any change reruns it while a newly added field (at its default) keeps old runs."""
    defaults = TrainConfig()
    changed = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if getattr(config, f.name) != getattr(defaults, f.name)
    }
    text = json.dumps(changed, sort_keys=True)
    return (
        f"{config.rule}_{config.data}_s{config.seed}_{hashlib.sha1(text.encode()).hexdigest()[:12]}"
    )


def summarise_run(result: TrainResult) -> dict:
    final = result.final
    return {
        "config": dataclasses.asdict(result.config),
        "test_error": final.test_error,
        "train_error": final.train_error,
        "seconds_per_epoch": statistics.mean(h.seconds for h in result.history),
        "angles": [None if math.isnan(a) else a for a in final.angles or ()],
        "test_error_per_epoch": [h.test_error for h in result.history],
    }


def cached_run(
    config: TrainConfig,
    work: Path,
    datasets: Datasets,
    analyse: Callable[[TrainResult, Dataset], dict] | None = None,
    tag: str = "",
) -> dict:
    """Train `config` unless `work` already holds its record: benchmarks resume.

    `analyse` adds measurements of the trained network (pruning curves, sparsity) to the
    record before it is stored; `tag` names that analysis in the cache key.
    """
    path = work / f"{run_key(config)}{tag}.json"
    if path.exists():
        return json.loads(path.read_text())
    dataset = datasets.get(config)
    result = train(config, progress=False, dataset=dataset)
    record = summarise_run(result)
    if analyse is not None:
        record.update(analyse(result, dataset))
    atomic_write_json(path, record)
    return record


def mean_std(values: list[float], digits: int = 2) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"
